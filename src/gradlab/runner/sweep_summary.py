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
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from gradlab.runner import run
from gradlab.runner.records import lookup, read_record, status_of
from gradlab.runner.seeds import STATS, aggregate_over_seeds, is_seed_key
from gradlab.runner.sweep_jobs import OWN_STATUSES, job_status, planned_jobs, scheduler_jobs, scheduler_state
from gradlab.runner.sweep_plots import plot_search, plot_seed_summary, plot_summary

SUMMARY_CSV, SUMMARY_PNG, BEST_YAML = "summary.csv", "summary.png", "best.yaml"
SEEDS_CSV, SEEDS_PNG = "summary_seeds.csv", "summary_seeds.png"


class Summary(NamedTuple):
    """What `write_summary` wrote: the per-job CSV, the seed aggregate CSV (None without a swept seed)."""

    csv: Path
    seeds_csv: Path | None
    failed: bool  # any job not ok
    not_ok: list = []  # the rows of the jobs not ok
    jobs: int = 0  # how many jobs the sweep has


def _parse(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def latest_attempts(sweep_dir: Path) -> dict[int, Path]:
    """Job number -> its directory: `<sweep>/<n>`, or its latest retry `<sweep>/resume-<k>/<n>` (`gradlab resume`)."""
    roots = [sweep_dir, *sorted(sweep_dir.glob("resume-*"), key=lambda p: int(p.name.split("-")[1]))]
    return dict(sorted((int(p.name), p) for root in roots for p in root.iterdir() if p.is_dir() and p.name.isdigit()))


def job_overrides(job_dir: Path | None, planned: list[str]) -> list[str]:
    """A job's overrides: what it saved (.hydra/overrides.yaml), else what the sweep planned (it never started)."""
    overrides_file = None if job_dir is None else job_dir / ".hydra" / "overrides.yaml"
    saved = yaml.safe_load(overrides_file.read_text()) if overrides_file and overrides_file.exists() else None
    return [str(item) for item in (planned if saved is None else saved) or []]


def _overrides(job_dir: Path | None, planned: list[str]) -> dict:
    """A job's overrides as {key: value} (`job_overrides`)."""
    swept = {}
    for item in job_overrides(job_dir, planned):
        key, _, value = str(item).partition("=")
        swept[key.lstrip("+~")] = _parse(value)
    return swept


def collect_jobs(sweep_dir: Path, scheduler: dict[int, Any] | None = None) -> list[dict]:
    """Every job of the sweep, also one that never started (the job list in multirun.yaml, `planned_jobs`): its
    number, overrides as {key: value}, metrics (or None), latest attempt, status (`job_status`: its record, else
    the scheduler's state for its first attempt, else lost) and scheduler job id."""
    attempts, planned, scheduler = latest_attempts(sweep_dir), planned_jobs(sweep_dir), scheduler or {}
    jobs = []
    for number in sorted(set(planned) | set(attempts)):
        job_dir = attempts.get(number)
        metrics = None if job_dir is None else read_record(job_dir)
        first = job_dir is None or job_dir.parent == sweep_dir  # the scheduler ran the first attempt only
        ran, own = scheduler.get(number), status_of(metrics)
        state = scheduler_state(ran) if ran and first and own not in OWN_STATUSES else ""  # sacct only if needed
        jobs.append({"job": number, "overrides": _overrides(job_dir, planned.get(number, [])), "metrics": metrics,
                     "attempt": "" if first else job_dir.parent.name, "status": job_status(own, state),
                     "scheduler_job": ran.job_id if ran and first else "", "scheduler_state": state})
    return jobs


def _error(job: dict, status: str) -> str:
    """Why a job did not end ok, in words, where its record does not say (or the scheduler says more)."""
    if status == "crashed" and not (job["metrics"] or {}).get("error"):
        return "the job's process is gone; its record says running"
    if job.get("scheduler_state") and status == job["scheduler_state"].lower():
        return (f"the scheduler ended job {job['scheduler_job']} {job['scheduler_state']} "
                + ("before it wrote a record" if job["metrics"] is None else "while it ran"))
    if status == "lost":
        return "no record and no scheduler state: the job never started, or left nothing"
    return ""


def job_rows(jobs: list[dict], override_keys: list[str], metric_keys: list[str]) -> list[dict]:
    """The summary rows: job number, override values, true status, metric values, warnings, error."""
    rows = []
    for job in jobs:
        metrics = job["metrics"] or {}
        status = job.get("status") or status_of(job["metrics"])
        rows.append({
            "job": job["job"],
            "attempt": job.get("attempt", ""),
            "scheduler_job": job.get("scheduler_job", ""),
            **{k: job["overrides"].get(k) for k in override_keys},
            "status": status,
            **{k: lookup(metrics, k) for k in metric_keys},
            "warnings": "; ".join(metrics.get("warnings") or []),
            "error": "; ".join(e for e in (_error(job, status), metrics.get("error", "")) if e),
        })
    return rows


def write_csv(target: Path, header: list[str], rows: list[dict]) -> Path:
    """The rows as CSV with this header, keys outside it left out (also the summary of `gradlab search`)."""
    with open(target, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return target


def write_summary(sweep_dir: Path, metric_keys: list[str], plot_metric: str | None, *,
                  scheduler: dict[int, Any] | None = None) -> Summary:
    """Write summary.csv and summary.png, and the seed aggregate when a seed key is swept; every job of the sweep
    is a row, its scheduler job id a column when a scheduler ran it (`scheduler`: read from the sweep's submitit
    folder when not given)."""
    scheduler = scheduler_jobs(sweep_dir) if scheduler is None else scheduler
    jobs = collect_jobs(sweep_dir, scheduler)
    override_keys = list(dict.fromkeys(k for job in jobs for k in job["overrides"]))
    varying = [k for k in override_keys if len({json.dumps(j["overrides"].get(k)) for j in jobs}) > 1]
    rows = job_rows(jobs, override_keys, metric_keys)
    ids = ["scheduler_job"] if scheduler else []
    target = write_csv(sweep_dir / SUMMARY_CSV, ["job", "attempt", *ids, *override_keys, "status", *metric_keys,
                                                  "warnings", "error"], rows)
    if plot_metric and rows:
        plot_summary(sweep_dir / SUMMARY_PNG, rows, varying or override_keys[:1], plot_metric)
    seeds_csv = None
    if any(is_seed_key(k) for k in varying) and metric_keys:
        swept = [k for k in varying if not is_seed_key(k)]
        aggregate = aggregate_over_seeds(rows, metric_keys, params=varying)
        seeds_csv = write_csv(sweep_dir / SEEDS_CSV, [*swept, "metric", "failed", "missing", *STATS], aggregate)
        if plot_metric:
            plot_seed_summary(sweep_dir / SEEDS_PNG, rows, aggregate, swept, plot_metric)
    not_ok = [r for r in rows if r["status"] != "ok"]
    return Summary(target, seeds_csv, bool(not_ok), not_ok, len(rows))


def not_ok_line(summary: Summary, shown: int = 3) -> str:
    """One line naming the jobs that did not end ok and how: '2 of 5 jobs not ok: job 1 node_fail (1001_1), ...'."""
    named = [f"job {r['job']} {r['status']}" + (f" ({r['scheduler_job']})" if r.get("scheduler_job") else "")
             for r in summary.not_ok[:shown]]
    more = len(summary.not_ok) - shown
    return (f"{len(summary.not_ok)} of {summary.jobs} jobs not ok: " + ", ".join(named)
            + (f" and {more} more" if more > 0 else ""))


def summary_line(summary: Summary) -> str:
    """What a sweep prints at its end: where its summary is, and which jobs did not end ok."""
    return f"gradlab: sweep summary: {summary.csv}" + (f" ({not_ok_line(summary)})" if summary.failed else "")


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
    """Hydra callback: on multirun end, write the summaries (module docstring) into the sweep directory.

    A sweep that ends in an error (a submitit launcher stops at the first job that left no result: a lost node, a
    timeout, a cancellation) never reaches `on_multirun_end`; `launch` then calls `after_error`, which waits for the
    scheduler's other jobs and writes the same summary, every job with how it ended."""

    started: SweepSummary | None = None  # the sweep of this process that has started and not yet been summarised

    def __init__(self, metrics: list[str] | None = None, plot_metric: str | None = None) -> None:
        self.metrics = list(metrics or [])
        self.plot_metric = plot_metric
        self.config: DictConfig | None = None
        self.stopped_waiting = False  # Ctrl-C came while `write` waited for the scheduler's jobs

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.config = config
        SweepSummary.started = self

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        SweepSummary.started = None
        summary = self.write(config)
        if summary is not None and summary.failed:
            run.record_exit_code(run.EXIT_FAILED)

    def write(self, config: DictConfig, *, wait: bool = False, announce: bool = True) -> Summary | None:
        """Write the summaries of the sweep `config` (after waiting for its scheduler's jobs with `wait`), and
        with `announce` print where they are and which jobs did not end ok."""
        sweep_dir = Path(str(OmegaConf.select(config, "hydra.sweep.dir")))
        if not sweep_dir.is_dir():
            return None
        objective = OmegaConf.select(config, "objective", default=None)
        metric_keys = list(dict.fromkeys([*self.metrics, *(k for k in (self.plot_metric, objective) if k)]))
        self.stopped_waiting = False
        if wait:
            try:
                scheduler_jobs(sweep_dir, wait=True)
            except KeyboardInterrupt:  # Ctrl-C while the scheduler's jobs run: summarise them as they are now
                self.stopped_waiting = True
        summary = write_summary(sweep_dir, metric_keys, self.plot_metric)
        if announce:
            print(summary_line(summary))
        if summary.seeds_csv:
            print(f"gradlab: mean and spread over seeds: {summary.seeds_csv}")
        return summary


def sweep_error(err: Exception, full_error: bool = False) -> int | None:
    """For an error that ended a started sweep (a submitit launcher stops at the first job without a result):
    the summary written anyway (`after_error`), one line naming the jobs not ok, exit code 1. None for any other
    error and for bad input found before a job ran (a config error: `run.report_error` tells it, exit 2)."""
    if run.is_config_error(err):
        SweepSummary.started = None
        return None
    callback = SweepSummary.started
    try:
        line = after_error(err)
    except Exception as failure:  # noqa: BLE001 - the sweep's own error is still told, with why no summary
        if full_error:
            traceback.print_exception(err, file=sys.stderr)
        first = next((text for text in str(err).splitlines() if text.strip()), "")
        print(f"gradlab: error: {type(err).__name__}: {first}; no sweep summary: {type(failure).__name__}: "
              f"{failure}".splitlines()[0], file=sys.stderr)
        return run.EXIT_FAILED
    if line is None:
        return None
    if full_error:
        traceback.print_exception(err, file=sys.stderr)
    if callback.stopped_waiting:
        print(f"gradlab: interrupted while waiting for the scheduler's jobs (they go on; the summary has their "
              f"state now); {line}", file=sys.stderr)
        return run.EXIT_SIGNAL[signal.SIGINT]
    print(f"gradlab: {line}", file=sys.stderr)
    return run.EXIT_FAILED


def _a_job_ended_without_result(err: BaseException) -> bool:
    """submitit's UncompletedJobError: a job ended (lost node, timeout, ...) without a result file."""
    try:
        from submitit.core.utils import UncompletedJobError
    except ImportError:  # the launchers extra is not installed: no submitit job ran
        return False
    return isinstance(err, UncompletedJobError)


def after_error(err: BaseException) -> str | None:
    """The one line for an error that ended a sweep this process started before Hydra's `on_multirun_end`, after
    writing its summary (the scheduler's jobs waited for, every job a row with how it ended); None if no sweep had
    started. A job that ended without a result (submitit's UncompletedJobError) is told by the summary itself;
    any other error is named with its first line."""
    callback, SweepSummary.started = SweepSummary.started, None
    if callback is None or callback.config is None:
        return None
    summary = callback.write(callback.config, wait=True, announce=False)
    if summary is None:
        return None
    first = next((text for text in str(err).splitlines() if text.strip()), "")
    cause = (f"sweep {not_ok_line(summary)}" if _a_job_ended_without_result(err) and summary.failed else
             f"{type(err).__name__}" + (f": {first}" if first else "")
             + (f" ({not_ok_line(summary)})" if summary.failed else ""))
    return f"error: {cause}; sweep summary: {summary.csv}"
