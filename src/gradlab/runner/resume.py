"""Resuming a sweep: the jobs that did not end `ok` run again, each into a new directory; the summary covers all.

    gradlab resume outputs/logreg/multirun/2026-11-26/09-13-41

The jobs are the sweep's job list (multirun.yaml, `sweep_jobs.planned_jobs`), so a job that never started (a
lost node, a cancellation before it ran) is found too. Job `n` of a sweep lives in `<sweep>/<n>`; its k-th retry
in `<sweep>/resume-<k>/<n>`, run from the job's own saved overrides (`.hydra/overrides.yaml`: the same values, the
same seed; for a job that never started, its overrides from the job list) as a single run under the run contract.
Nothing of an earlier attempt is touched. Afterwards summary.csv (and the seed summary) is written again from the
latest attempt of every job.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

from gradlab.runner.runs import RunError
from gradlab.runner.sweep_jobs import planned_jobs, scheduler_jobs
from gradlab.runner.sweep_summary import collect_jobs, job_overrides, latest_attempts, summary_line, write_summary

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def resume(sweep_dir: Path) -> int:
    """Run again every job of `sweep_dir` whose latest attempt is not ok; rewrite the summary; the exit code."""
    sweep_dir = Path(sweep_dir)
    settings = sweep_dir / "multirun.yaml"
    if not settings.is_file():
        raise RunError(sweep_dir, "no multirun.yaml (not a sweep directory)")
    hydra = OmegaConf.load(settings).hydra
    experiment = str(hydra.job.config_name)
    attempts, planned = latest_attempts(sweep_dir), planned_jobs(sweep_dir)
    jobs = collect_jobs(sweep_dir, scheduler_jobs(sweep_dir))  # every job of the job list, also one never started
    todo = [job for job in jobs if job["status"] != "ok"]
    if not todo:
        print(f"every job of {sweep_dir} ended ok: nothing to resume")
        return EXIT_OK
    target = sweep_dir / f"resume-{1 + sum(1 for _ in sweep_dir.glob('resume-*'))}"
    print(f"resuming {len(todo)} of {len(jobs)} jobs of {experiment} into {target}")
    interrupted = False
    for job in todo:
        overrides = job_overrides(attempts.get(job["job"]), planned.get(job["job"], []))
        print(f"  job {job['job']} (was {job['status']}): {' '.join(overrides)}")
        command = [sys.executable, "-m", f"gradlab.experiments.{experiment}",
                   f"hydra.run.dir={target / str(job['job'])}", *overrides]
        proc = subprocess.Popen(command)
        try:
            proc.wait()
        except KeyboardInterrupt:  # the job got Ctrl-C too (same process group) and records itself interrupted
            proc.wait()
            interrupted = True
            break
    callback = OmegaConf.select(hydra, "callbacks.sweep_summary") or {}
    objective = OmegaConf.select(OmegaConf.load(settings), "objective", default=None)
    plot_metric = callback.get("plot_metric")
    metrics = list(dict.fromkeys([*(callback.get("metrics") or []), *(k for k in (plot_metric, objective) if k)]))
    summary = write_summary(sweep_dir, metrics, plot_metric)
    print(summary_line(summary))
    return EXIT_INTERRUPTED if interrupted else (EXIT_FAILED if summary.failed else EXIT_OK)
