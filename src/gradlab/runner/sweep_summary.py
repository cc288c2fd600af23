"""After a Hydra multirun: one summary CSV row per job, and a plot of a chosen metric against the swept values.

Configured once in `configs/base/run.yaml` as the Hydra callback `sweep_summary`; an experiment picks the
metrics it summarises in its own config (`hydra.callbacks.sweep_summary.metrics`, `.plot_metric`). Runs with
every launcher (basic, joblib, submitit), because it reads what the jobs wrote: `.hydra/overrides.yaml` and
`metrics.json` in each job directory. A failed job is a row with status `failed` and its error.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from gradlab.runner import run
from gradlab.runner.records import lookup, read_record, status_of

SUMMARY_CSV, SUMMARY_PNG = "summary.csv", "summary.png"


def _parse(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def collect_jobs(sweep_dir: Path) -> list[dict]:
    """For every job directory: its number, its overrides as {key: value}, and its metrics (or None)."""
    jobs = []
    job_dirs = [p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    for job_dir in sorted(job_dirs, key=lambda p: int(p.name)):
        overrides_file = job_dir / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
        swept = {}
        for item in overrides or []:
            key, _, value = str(item).partition("=")
            swept[key.lstrip("+~")] = _parse(value)
        metrics = read_record(job_dir)
        jobs.append({"job": int(job_dir.name), "overrides": swept, "metrics": metrics})
    return jobs


def write_summary(sweep_dir: Path, metric_keys: list[str], plot_metric: str | None) -> tuple[Path, bool]:
    """Write summary.csv (and summary.png when there is a metric to plot); return (csv path, any job failed)."""
    jobs = collect_jobs(sweep_dir)
    override_keys = list(dict.fromkeys(k for job in jobs for k in job["overrides"]))
    varying = [k for k in override_keys if len({json.dumps(j["overrides"].get(k)) for j in jobs}) > 1]
    header = ["job", *override_keys, "status", *metric_keys, "warnings", "error"]
    rows = []
    for job in jobs:
        metrics = job["metrics"] or {"error": "no metrics.json (the job did not start)"}
        status = status_of(job["metrics"])
        error = metrics.get("error", "") or ("the job's process is gone; its record says running"
                                             if status == "crashed" else "")
        rows.append({
            "job": job["job"],
            **{k: job["overrides"].get(k) for k in override_keys},
            "status": status,
            **{k: lookup(metrics, k) for k in metric_keys},
            "warnings": "; ".join(metrics.get("warnings") or []),
            "error": error,
        })
    target = sweep_dir / SUMMARY_CSV
    with open(target, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    if plot_metric and rows:
        plot_summary(sweep_dir / SUMMARY_PNG, rows, varying or override_keys[:1], plot_metric)
    return target, any(row["status"] != "ok" for row in rows)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def plot_summary(target: Path, rows: list[dict], swept: list[str], metric: str) -> None:
    """The metric against the first swept parameter, one line per value of the others; failed jobs as x."""
    from gradlab.runner.plotting import figure

    fig, ax = figure()
    x_key = swept[0] if swept else "job"
    groups: dict[str, list[dict]] = {}
    for row in rows:
        label = ", ".join(f"{k}={row[k]}" for k in swept[1:]) or metric
        groups.setdefault(label, []).append(row)
    numeric_x = all(_number(row.get(x_key)) is not None for row in rows)
    categories = list(dict.fromkeys(str(row.get(x_key)) for row in rows))
    for label, members in groups.items():
        ok = [(r[x_key], _number(r[metric])) for r in members if r["status"] == "ok" and _number(r[metric]) is not None]
        xs = [float(x) if numeric_x else categories.index(str(x)) for x, _ in ok]
        order = sorted(range(len(xs)), key=xs.__getitem__)
        ax.plot([xs[i] for i in order], [ok[i][1] for i in order], "o-", label=label)
        for r in members:
            if r["status"] != "ok":
                x = float(r[x_key]) if numeric_x else categories.index(str(r[x_key]))
                ax.axvline(x, color="red", ls=":", lw=1)
                ax.plot([x], [ax.get_ylim()[0]], "rx", ms=9, label="failed job")
    values = [_number(r[metric]) for r in rows if _number(r[metric]) is not None]
    if numeric_x and len({float(r[x_key]) for r in rows}) > 2 and all(float(r[x_key]) > 0 for r in rows):
        spread = max(float(r[x_key]) for r in rows) / min(float(r[x_key]) for r in rows)
        if spread >= 100:
            ax.set_xscale("log")
    if values and all(v > 0 for v in values) and max(values) / min(values) >= 1e3:
        ax.set_yscale("log")
    if not numeric_x:
        ax.set_xticks(range(len(categories)), categories)
    ax.set(xlabel=x_key, ylabel=metric, title=f"Sweep: {metric} against {x_key}")
    if not all(math.isnan(v) for v in values):
        ax.legend()
    fig.savefig(target, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)


class SweepSummary(Callback):
    """Hydra callback: on multirun end, write summary.csv and summary.png into the sweep directory."""

    def __init__(self, metrics: list[str] | None = None, plot_metric: str | None = None) -> None:
        self.metrics = list(metrics or [])
        self.plot_metric = plot_metric

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(OmegaConf.select(config, "hydra.sweep.dir")))
        if not sweep_dir.is_dir():
            return
        metric_keys = list(dict.fromkeys(self.metrics + ([self.plot_metric] if self.plot_metric else [])))
        target, failed = write_summary(sweep_dir, metric_keys, self.plot_metric)
        print(f"gradlab: sweep summary: {target}" + (" (some jobs failed)" if failed else ""))
        if failed:
            run.record_exit_code(run.EXIT_FAILED)
