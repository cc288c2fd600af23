"""Resuming a sweep: the jobs that did not end `ok` run again, each into a new directory; the summary covers all.

    gradlab resume outputs/logreg/multirun/2026-11-26/09-13-41

Job `n` of a sweep lives in `<sweep>/<n>`; its k-th retry in `<sweep>/resume-<k>/<n>`, run from the job's own
saved overrides (`.hydra/overrides.yaml`: the same values, the same seed) as a single run under the run contract.
Nothing of an earlier attempt is touched. Afterwards summary.csv (and the seed summary) is written again from the
latest attempt of every job.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from gradlab.runner.records import read_record, status_of
from gradlab.runner.runs import RunError
from gradlab.runner.sweep_summary import latest_attempts, write_summary

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def resume(sweep_dir: Path) -> int:
    """Run again every job of `sweep_dir` whose latest attempt is not ok; rewrite the summary; the exit code."""
    sweep_dir = Path(sweep_dir)
    settings = sweep_dir / "multirun.yaml"
    if not settings.is_file():
        raise RunError(sweep_dir, "no multirun.yaml (not a sweep directory)")
    hydra = OmegaConf.load(settings).hydra
    experiment = str(hydra.job.config_name)
    attempts = latest_attempts(sweep_dir)
    todo = {n: d for n, d in attempts.items() if status_of(read_record(d)) != "ok"}
    if not todo:
        print(f"every job of {sweep_dir} ended ok: nothing to resume")
        return EXIT_OK
    target = sweep_dir / f"resume-{1 + sum(1 for _ in sweep_dir.glob('resume-*'))}"
    print(f"resuming {len(todo)} of {len(attempts)} jobs of {experiment} into {target}")
    interrupted = False
    for job, job_dir in todo.items():
        overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
        print(f"  job {job} (was {status_of(read_record(job_dir))}): {' '.join(overrides)}")
        command = [sys.executable, "-m", f"gradlab.experiments.{experiment}", f"hydra.run.dir={target / str(job)}",
                   *overrides]
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
    print(f"gradlab: sweep summary: {summary.csv}" + (" (some jobs failed)" if summary.failed else ""))
    return EXIT_INTERRUPTED if interrupted else (EXIT_FAILED if summary.failed else EXIT_OK)
