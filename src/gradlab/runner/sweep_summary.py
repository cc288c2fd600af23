"""After a Hydra multirun: one summary CSV row per job, the mean and spread over seeds, and their plots.

Configured once in `configs/base/run.yaml` as the Hydra callback `sweep_summary`; an experiment picks the
metrics it summarises in its own config (`hydra.callbacks.sweep_summary.metrics`, `.plot_metric`), and the run's
`objective` (what an Optuna search minimises) is always one of them. Runs with every launcher and sweeper
(basic, joblib, submitit; Hydra's grid or Optuna), because it reads what the jobs wrote: `.hydra/overrides.yaml`
and `metrics.json` in each job directory. It writes into the sweep directory

- `summary.csv`: one row per job (overrides, status, metrics, error); a failed job is a row with its error;
- `summary.png`: the plot metric against the first swept parameter (for an Optuna search: every trial's
  objective with the best so far, and where in the searched space each trial fell);
- `summary_seeds.csv` and `summary_seeds.png`, when a seed key is swept (`data.seed=0,1,2`): the jobs that
  differ only in seeds aggregated per metric (`gradlab.runner.seeds`), and the mean with its 95% interval
  against the swept parameter.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from gradlab.runner import run
from gradlab.runner.records import lookup, read_record, status_of
from gradlab.runner.seeds import STATS, aggregate_over_seeds, is_seed_key

SUMMARY_CSV, SUMMARY_PNG = "summary.csv", "summary.png"
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
            **{k: job["overrides"].get(k) for k in override_keys},
            "status": status,
            **{k: lookup(metrics, k) for k in metric_keys},
            "warnings": "; ".join(metrics.get("warnings") or []),
            "error": error,
        })
    return rows


def _write_csv(target: Path, header: list[str], rows: list[dict]) -> Path:
    with open(target, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return target


def write_summary(sweep_dir: Path, metric_keys: list[str], plot_metric: str | None, *,
                  search: bool = False) -> Summary:
    """Write summary.csv and summary.png, and the seed aggregate when a seed key is swept.

    `search`: the jobs are the trials of a search (Optuna), so summary.png shows the search, not a line plot.
    """
    jobs = collect_jobs(sweep_dir)
    override_keys = list(dict.fromkeys(k for job in jobs for k in job["overrides"]))
    varying = [k for k in override_keys if len({json.dumps(j["overrides"].get(k)) for j in jobs}) > 1]
    rows = job_rows(jobs, override_keys, metric_keys)
    target = _write_csv(sweep_dir / SUMMARY_CSV, ["job", *override_keys, "status", *metric_keys, "warnings",
                                                  "error"], rows)
    if plot_metric and rows:
        if search:
            plot_search(sweep_dir / SUMMARY_PNG, rows, varying, plot_metric)
        else:
            plot_summary(sweep_dir / SUMMARY_PNG, rows, varying or override_keys[:1], plot_metric)
    seeds_csv = None
    if any(is_seed_key(k) for k in varying) and metric_keys:
        swept = [k for k in varying if not is_seed_key(k)]
        aggregate = aggregate_over_seeds(rows, metric_keys, params=varying)
        seeds_csv = _write_csv(sweep_dir / SEEDS_CSV, [*swept, "metric", "failed", "missing", *STATS], aggregate)
        if plot_metric:
            plot_seed_summary(sweep_dir / SEEDS_PNG, rows, aggregate, swept, plot_metric)
    return Summary(target, seeds_csv, any(row["status"] != "ok" for row in rows))


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


def _log_if_wide(values: list[float], ratio: float) -> bool:
    """Whether positive values spanning at least `ratio` (max/min) read better on a log axis."""
    return bool(values) and min(values) > 0 and max(values) / min(values) >= ratio


def _save(fig: Any, target: Path) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(target, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_seed_summary(target: Path, rows: list[dict], aggregate: list[dict], swept: list[str], metric: str) -> None:
    """The mean over seeds against the first swept parameter, its 95% interval as a band and every seed as a dot.

    One line per value of the other swept parameters; a group with failed seeds is marked with the count.
    """
    from gradlab.runner.plotting import figure

    fig, ax = figure()
    stats = [a for a in aggregate if a["metric"] == metric]
    x_key = swept[0] if swept else None
    numeric_x = x_key is not None and all(_number(a.get(x_key)) is not None for a in stats)
    categories = list(dict.fromkeys(str(a.get(x_key)) if x_key else "all seeds" for a in stats))

    def position(item: dict) -> float:
        if x_key is None:
            return 0.0
        return float(item[x_key]) if numeric_x else float(categories.index(str(item[x_key])))

    def label_of(item: dict) -> str:
        return ", ".join(f"{k}={item.get(k)}" for k in swept[1:]) or metric

    seed_values = [(label_of(r), position(r), _number(r.get(metric))) for r in rows if r["status"] == "ok"]
    seed_values = [(label, x, y) for label, x, y in seed_values if y is not None and math.isfinite(y)]
    log_y = _log_if_wide([y for _, _, y in seed_values], 1e3)
    floor = min((y for _, _, y in seed_values), default=1.0) / 2
    lines: dict[str, list[dict]] = {}
    for item in stats:
        lines.setdefault(label_of(item), []).append(item)
    for label, members in lines.items():
        members = sorted(members, key=position)
        xs = [position(a) for a in members]
        mean = [a["mean"] for a in members]
        low = [max(a["ci95_low"], floor) if log_y else a["ci95_low"] for a in members]
        high = [a["ci95_high"] for a in members]
        (line,) = ax.plot(xs, mean, "o-", label=f"{label}: mean" if len(lines) > 1 else "mean over seeds")
        alone = len(lines) == 1  # one line: its band and dots get a legend entry too
        if len(xs) > 1:
            ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2, lw=0,
                            label="95% interval of the mean" if alone else None)
        else:
            ax.errorbar(xs, mean, yerr=[[mean[0] - low[0]], [high[0] - mean[0]]], color=line.get_color(), capsize=4,
                        label="95% interval of the mean" if alone else None)
        dots = [(x, y) for name, x, y in seed_values if name == label]
        ax.plot([x for x, _ in dots], [y for _, y in dots], ".", color=line.get_color(), alpha=0.5, ms=5,
                label="one seed" if alone else None)
        for a in members:
            if a["failed"]:
                ax.annotate(f"{a['failed']} failed", (position(a), 0.02), xycoords=ax.get_xaxis_transform(),
                            color="red", ha="center", fontsize=8)
    if numeric_x and _log_if_wide([position(a) for a in stats], 100):
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    if not numeric_x:
        ax.set_xticks(range(len(categories)), categories)
    counts = sorted({a["n"] for a in stats})
    n_text = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    ax.set(xlabel=x_key or "", ylabel=metric,
           title=f"{metric}: mean over n={n_text} seeds (dots); band: 95% interval of the mean")
    ax.legend()
    _save(fig, target)


def plot_search(target: Path, rows: list[dict], swept: list[str], metric: str) -> None:
    """A search's trials (minimising `metric`): the objective of each with the best so far, and the searched space.

    Left: each trial's objective in trial order, the running best as a step line, failed trials as red x.
    Right: the trials in the plane of the first two searched parameters, coloured by objective, the best starred.
    """
    from gradlab.runner.plotting import figure

    fig, (ax, space) = figure(2, width=11.5, height=4.4)
    done = [(r, _number(r.get(metric))) for r in rows if r["status"] == "ok"]
    done = [(r, v) for r, v in done if v is not None and math.isfinite(v)]
    scored = {id(r) for r, _ in done}
    failed = [r for r in rows if id(r) not in scored]  # failed, or no finite objective: told to Optuna as failed
    values = [v for _, v in done]
    ax.plot([r["job"] for r, _ in done], values, "o", label="trial")
    if values:
        ax.step([r["job"] for r, _ in done], np.minimum.accumulate(values), where="post", color="black", lw=1,
                label="best so far")
    for r in failed:
        ax.plot([r["job"]], [0.02], "rx", ms=8, transform=ax.get_xaxis_transform(),
                label="failed trial" if r is failed[0] else None)
    if _log_if_wide(values, 1e3):
        ax.set_yscale("log")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set(xlabel="trial (job number)", ylabel=metric, title=f"{len(rows)} trials, {len(failed)} failed")
    ax.legend()
    best = min(done, key=lambda d: d[1]) if done else None
    if best is not None:
        where = ", ".join(f"{k}={_short(best[0].get(k))}" for k in swept)
        fig.suptitle(f"Search: best {metric} = {best[1]:.3g} (trial {best[0]['job']}) at {where}", fontsize=10)
    _draw_space(space, done, failed, swept, metric, best)
    _save(fig, target)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _draw_space(ax: Any, done: list, failed: list[dict], swept: list[str], metric: str, best: Any) -> None:
    """The searched parameters: a plane for two (colour: objective), the objective against one."""
    numeric = [k for k in swept if all(_number(r.get(k)) is not None for r, _ in done)]
    if not numeric or not done:
        ax.set_axis_off()
        return
    x_key = numeric[0]
    xs = [float(r[x_key]) for r, _ in done]
    values = [v for _, v in done]
    if len(numeric) >= 2:
        y_key = numeric[1]
        log_colour = _log_if_wide(values, 100)
        colour = [math.log10(v) for v in values] if log_colour else values
        points = ax.scatter(xs, [float(r[y_key]) for r, _ in done], c=colour, cmap="viridis_r", s=30)
        ax.figure.colorbar(points, ax=ax, label=f"log10 {metric}" if log_colour else metric)
        ax.plot([float(best[0][x_key])], [float(best[0][y_key])], "*", color="red", ms=14, label="best")
        ax.plot([float(r[x_key]) for r in failed if _number(r.get(x_key)) is not None],
                [float(r[y_key]) for r in failed if _number(r.get(x_key)) is not None], "rx", ms=8,
                label="failed trial" if failed else None)
        ax.set(ylabel=y_key, title="Where the trials fell (colour: objective, lower is better)")
    else:
        ax.plot(xs, values, "o")
        ax.plot([float(best[0][x_key])], [best[1]], "*", color="red", ms=14, label="best")
        if _log_if_wide(values, 1e3):
            ax.set_yscale("log")
        ax.set(ylabel=metric, title=f"{metric} against {x_key}")
    if _log_if_wide(xs, 100):
        ax.set_xscale("log")
    ax.set_xlabel(x_key)
    ax.legend()


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
        search = "optuna" in str(OmegaConf.select(config, "hydra.sweeper._target_", default="")).lower()
        plot_metric = (objective or self.plot_metric) if search else self.plot_metric
        metric_keys = list(dict.fromkeys([*self.metrics, *(k for k in (plot_metric, objective) if k)]))
        summary = write_summary(sweep_dir, metric_keys, plot_metric, search=search)
        print(f"gradlab: sweep summary: {summary.csv}" + (" (some jobs failed)" if summary.failed else ""))
        if summary.seeds_csv:
            print(f"gradlab: mean and spread over seeds: {summary.seeds_csv}")
        if summary.failed:
            run.record_exit_code(run.EXIT_FAILED)
