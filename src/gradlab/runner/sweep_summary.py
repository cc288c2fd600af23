"""After a Hydra multirun: one summary CSV row per job, the mean and spread over seeds, and their plots.

Configured once in `configs/base/run.yaml` as the Hydra callback `sweep_summary`; an experiment picks the
metrics it summarises in its own config (`hydra.callbacks.sweep_summary.metrics`, `.plot_metric`), and the run's
`objective` (what `gradlab search` optimises) is always one of them. Runs with every launcher (basic, joblib,
submitit), because it reads what the jobs wrote: `.hydra/overrides.yaml` and `metrics.json` in each job
directory. It writes into the sweep directory

- `summary.csv`: one row per job (overrides, status, metrics, error); a failed job is a row with its error;
- `summary.png`: the plot metric against the first swept parameter;
- `summary_seeds.csv` and `summary_seeds.png`, when a seed key is swept (`data.seed=0,1,2`): the jobs that
  differ only in seeds aggregated per metric (`gradlab.runner.seeds`), and the mean with its 95% interval
  against the swept parameter.

`write_search_summary` writes the same table and a search's plot for the trials of `gradlab search`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from gradlab.runner import run
from gradlab.runner.records import lookup, read_record, status_of
from gradlab.runner.seeds import STATS, aggregate_over_seeds, is_seed_key
from gradlab.runner.sweep_plots import plot_search, plot_seed_summary, plot_summary

SUMMARY_CSV, SUMMARY_PNG, BEST_YAML = "summary.csv", "summary.png", "best.yaml"
SEEDS_CSV, SEEDS_PNG = "summary_seeds.csv", "summary_seeds.png"


class Summary(NamedTuple):
    """What `write_summary` wrote: the per-job CSV, the seed aggregate CSV (None without a swept seed)."""

    csv: Path
    seeds_csv: Path | None
    failed: bool  # any job not ok


def _parse(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def latest_attempts(sweep_dir: Path) -> dict[int, Path]:
    """Job number -> its directory: `<sweep>/<n>`, or its latest retry `<sweep>/resume-<k>/<n>` (`gradlab resume`)."""
    roots = [sweep_dir, *sorted(sweep_dir.glob("resume-*"), key=lambda p: int(p.name.split("-")[1]))]
    return dict(sorted((int(p.name), p) for root in roots for p in root.iterdir() if p.is_dir() and p.name.isdigit()))


def collect_jobs(sweep_dir: Path) -> list[dict]:
    """For every job (its latest attempt): its number, its overrides as {key: value}, and its metrics (or None)."""
    jobs = []
    for job_dir in latest_attempts(sweep_dir).values():
        overrides_file = job_dir / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
        swept = {}
        for item in overrides or []:
            key, _, value = str(item).partition("=")
            swept[key.lstrip("+~")] = _parse(value)
        metrics = read_record(job_dir)
        jobs.append({"job": int(job_dir.name), "overrides": swept, "metrics": metrics,
                     "attempt": job_dir.parent.name if job_dir.parent != sweep_dir else ""})
    return jobs


def job_rows(jobs: list[dict], override_keys: list[str], metric_keys: list[str]) -> list[dict]:
    """The summary rows: job number, override values, true status, metric values, warnings, error."""
    rows = []
    for job in jobs:
        metrics = job["metrics"] or {"error": "no metrics.json (the job did not start)"}
        status = status_of(job["metrics"])
        error = metrics.get("error", "") or ("the job's process is gone; its record says running"
                                             if status == "crashed" else "")
        rows.append({
            "job": job["job"],
            "attempt": job.get("attempt", ""),
            **{k: job["overrides"].get(k) for k in override_keys},
            "status": status,
            **{k: lookup(metrics, k) for k in metric_keys},
            "warnings": "; ".join(metrics.get("warnings") or []),
            "error": error,
        })
    return rows


def write_csv(target: Path, header: list[str], rows: list[dict]) -> Path:
    """The rows as CSV with this header (also the summary of `gradlab search`)."""
    with open(target, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return target


def write_summary(sweep_dir: Path, metric_keys: list[str], plot_metric: str | None) -> Summary:
    """Write summary.csv and summary.png, and the seed aggregate when a seed key is swept."""
    jobs = collect_jobs(sweep_dir)
    override_keys = list(dict.fromkeys(k for job in jobs for k in job["overrides"]))
    varying = [k for k in override_keys if len({json.dumps(j["overrides"].get(k)) for j in jobs}) > 1]
    rows = job_rows(jobs, override_keys, metric_keys)
    target = write_csv(sweep_dir / SUMMARY_CSV, ["job", "attempt", *override_keys, "status", *metric_keys, "warnings",
                                                  "error"], rows)
    if plot_metric and rows:
        plot_summary(sweep_dir / SUMMARY_PNG, rows, varying or override_keys[:1], plot_metric)
    seeds_csv = None
    if any(is_seed_key(k) for k in varying) and metric_keys:
        swept = [k for k in varying if not is_seed_key(k)]
        aggregate = aggregate_over_seeds(rows, metric_keys, params=varying)
        seeds_csv = write_csv(sweep_dir / SEEDS_CSV, [*swept, "metric", "failed", "missing", *STATS], aggregate)
        if plot_metric:
            plot_seed_summary(sweep_dir / SEEDS_PNG, rows, aggregate, swept, plot_metric)
    return Summary(target, seeds_csv, any(row["status"] != "ok" for row in rows))


def write_search_summary(trials: list, search_dir: Path, metrics: list[str], params: list[str], *, study: str,
                         maximize: bool = False) -> dict | None:
    """The summary of a search (`gradlab search`) from its Optuna trials, trial n's run in <search_dir>/<n>:
    summary.csv (every trial: state, value, run status, parameters, `metrics` (the objective first), error),
    summary.png (the objective by trial and the searched space) and best.yaml; returns the best (or None)."""
    rows = []
    for t in trials:
        record = read_record(search_dir / str(t.number)) or {}
        cut = t.state.name == "FAIL" and "status" not in t.user_attrs  # the search died while it ran
        rows.append({"trial": t.number, "state": t.state.name, "value": t.value, "status": status_of(record or None),
                     **{k: t.params.get(k) for k in params}, **{k: lookup(record, k) for k in metrics},
                     "error": "running when the search stopped; marked FAIL on resume" if cut else
                     t.user_attrs.get("error", ""), "dir": str(search_dir / str(t.number))})
    write_csv(search_dir / SUMMARY_CSV, ["trial", "state", "value", "status", *params, *metrics, "error", "dir"], rows)
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    best = (max if maximize else min)(complete, key=lambda r: r["value"]) if complete else None
    if rows:
        as_jobs = [{**r, "job": r["trial"], metrics[0]: r["value"], "status": "ok" if r["state"] == "COMPLETE" else
                    "failed"} for r in rows]
        plot_search(search_dir / SUMMARY_PNG, as_jobs, params, metrics[0], maximize=maximize)
    summary = {"study": study, "objective": metrics[0], "direction": "maximize" if maximize else "minimize",
               "trials": {state: sum(r["state"] == state for r in rows) for state in ("COMPLETE", "FAIL")},
               "best": None if best is None else {
                   "trial": best["trial"], "value": best["value"], "params": {k: best[k] for k in params},
                   "dir": best["dir"], "rerun": f"gradlab rerun {best['dir']}"}}
    (search_dir / BEST_YAML).write_text(yaml.safe_dump(summary, sort_keys=False))
    return summary["best"]


class SweepSummary(Callback):
    """Hydra callback: on multirun end, write the summaries (module docstring) into the sweep directory."""

    def __init__(self, metrics: list[str] | None = None, plot_metric: str | None = None) -> None:
        self.metrics = list(metrics or [])
        self.plot_metric = plot_metric

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(OmegaConf.select(config, "hydra.sweep.dir")))
        if not sweep_dir.is_dir():
            return
        objective = OmegaConf.select(config, "objective", default=None)
        metric_keys = list(dict.fromkeys([*self.metrics, *(k for k in (self.plot_metric, objective) if k)]))
        summary = write_summary(sweep_dir, metric_keys, self.plot_metric)
        print(f"gradlab: sweep summary: {summary.csv}" + (" (some jobs failed)" if summary.failed else ""))
        if summary.seeds_csv:
            print(f"gradlab: mean and spread over seeds: {summary.seeds_csv}")
        if summary.failed:
            run.record_exit_code(run.EXIT_FAILED)
