"""A sweep's job list and how each job ended, whatever the launcher: read from the sweep directory alone.

- `planned_jobs`: job number -> overrides, as Hydra's basic sweeper expands the sweep saved in `multirun.yaml`
  (the cartesian product of `hydra.sweeper.params` and `hydra.overrides.task`, a later value of a key replacing
  an earlier one, job n the n-th combination). A job that never started has no directory; it is still listed.
- `scheduler_jobs`: job number -> its submitit job (SLURM's `1001_3`, or a local pid), whose state the
  scheduler gives (`scheduler_state`: `sacct`'s, through submitit's public `Job.state`), read from the sweep's
  submitit folder (`hydra.launcher.submitit_folder`): each job's `<id>_submitted.pkl` holds the launcher's
  call, whose third argument is the job number. `wait=True` first waits until the scheduler says every job has ended.
- `job_status`: one status from the job's own record and the scheduler's state: the record wins where the job
  ended of itself (ok, failed); otherwise the scheduler's state (`node_fail`, `timeout`,
  `cancelled`, `out_of_memory`, `preempted`, ...), else `crashed` (a record whose process is gone), else `lost`.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from gradlab.runner.records import read_record, status_of

OWN_STATUSES = ("ok", "failed")  # a record that says its job ended of itself is believed
# SLURM's states for a job that ended without completing (sacct's STATE column; FAILED: a non-zero exit)
SLURM_ENDS = ("BOOT_FAIL", "CANCELLED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "TIMEOUT")


def sweep_settings(sweep_dir: Path) -> DictConfig | None:
    """The sweep's saved config, multirun.yaml (None if absent or unreadable)."""
    try:
        settings = OmegaConf.load(Path(sweep_dir) / "multirun.yaml")
    except (OSError, ValueError, Exception):  # noqa: BLE001 - a damaged file reads as no job list
        return None
    return settings if isinstance(settings, DictConfig) else None


def planned_jobs(sweep_dir: Path) -> dict[int, list[str]]:
    """Job number -> its overrides, expanded from multirun.yaml as Hydra's BasicSweeper does ({} for another
    sweeper, a job directory other than `<sweep>/<job number>`, or without multirun.yaml: then only the job
    directories tell the jobs)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    settings = sweep_settings(sweep_dir)
    if settings is None or not str(OmegaConf.select(settings, "hydra.sweeper._target_", default="")).endswith(
            "BasicSweeper"):
        return {}
    subdir = OmegaConf.to_container(settings.hydra.sweep, resolve=False).get("subdir")
    if str(subdir).strip() != "${hydra.job.num}":  # job n's directory is not <sweep>/<n>: the directories tell
        return {}
    params = settings.hydra.sweeper.get("params")
    params = {} if params is None else OmegaConf.to_container(params, resolve=False)
    arguments = [f"{k}={v}" for k, v in params.items()] + list(settings.hydra.overrides.task)
    choices: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(arguments):
        key = override.get_key_element()
        choices[key] = ([f"{key}={v}" for v in override.sweep_string_iterator()] if override.is_sweep_override()
                        else [f"{key}={override.get_value_element_as_str()}"])
    return {n: list(combination) for n, combination in enumerate(itertools.product(*choices.values()))}


def _submitit_job_class(settings: DictConfig) -> type | None:
    target = str(OmegaConf.select(settings, "hydra.launcher._target_", default=""))
    if "hydra_submitit_launcher" not in target:
        return None
    import submitit

    return submitit.SlurmJob if target.endswith("SlurmLauncher") else submitit.LocalJob


def submitit_folder(sweep_dir: Path, settings: DictConfig) -> str | None:
    """hydra.launcher.submitit_folder with hydra.sweep.dir read as this sweep directory (resolving the saved
    `${hydra.sweep.dir}` would make a new one from the clock)."""
    settings = OmegaConf.create(OmegaConf.to_container(settings, resolve=False))
    settings.hydra.sweep.dir = str(sweep_dir)
    try:
        folder = OmegaConf.select(settings, "hydra.launcher.submitit_folder")
    except Exception:  # noqa: BLE001 - an interpolation that needs a running Hydra: no scheduler information
        return None
    return None if folder is None else str(folder)


def scheduler_jobs(sweep_dir: Path, *, wait: bool = False, deadline_s: float | None = None) -> dict[int, Any]:
    """Job number -> its submitit job (`.job_id`: SLURM's `1001_3`, a local pid; `scheduler_state`), for a sweep
    run by a submitit launcher ({} for any other launcher).

    With `wait`, first waits (at most `deadline_s`) until every job has ended (`_ended`): a launcher stops at the
    first job that left no result, while the others may still be running.
    """
    settings = sweep_settings(sweep_dir)
    job_class = None if settings is None else _submitit_job_class(settings)
    folder = None if job_class is None else submitit_folder(Path(sweep_dir), settings)
    if folder is None:
        return {}
    jobs = {}
    for pickle in sorted(Path(folder.replace("%j", "*")).parent.glob("*/*_submitted.pkl")):
        job = job_class(folder=folder, job_id=pickle.name.removesuffix("_submitted.pkl"))
        try:
            number = int(job.submission().args[2])  # the launcher's call: (overrides, dir key, job number, ...)
        except Exception:  # noqa: BLE001 - an unreadable submission: not one of this sweep's jobs
            continue
        jobs[number] = job
    if wait:
        end = None if deadline_s is None else time.monotonic() + deadline_s
        while (not all(_ended(Path(sweep_dir) / str(n), job) for n, job in jobs.items())
               and (end is None or time.monotonic() < end)):
            time.sleep(1)
    return dict(sorted(jobs.items()))


def _ended(job_dir: Path, job: Any) -> bool:
    """Whether a submitit job has ended: SLURM's word (`Job.done`: a result file, or sacct's final state); a local
    job rebuilt from its folder has no process handle, so its record tells: ended unless it says running and its
    process is alive."""
    import submitit

    if isinstance(job, submitit.LocalJob):
        return job.paths.result_pickle.exists() or status_of(read_record(job_dir)) != "running"
    return job.done()


def scheduler_state(job: Any) -> str:
    """The scheduler's state of a job, its first word ('CANCELLED by 1000' -> 'CANCELLED'); '' if unknown."""
    try:
        state = str(job.state or "")
    except Exception:  # noqa: BLE001 - sacct missing or failing: nothing known
        return ""
    return state.split()[0].upper() if state.strip() else ""


def job_status(record_status: str, scheduler_state: str = "") -> str:
    """How a job ended (module docstring): ok or failed as its record says; else the scheduler's state lowercased
    (`NODE_FAIL` -> `node_fail`), also over a record saying `interrupted` (SLURM's SIGTERM at a time limit or a
    preemption is what interrupted it), except SLURM's `FAILED` (the non-zero exit of a run that recorded why);
    else `interrupted`, `crashed` or `running` as the record says; else `lost` (no record and nothing known)."""
    if record_status in OWN_STATUSES:
        return record_status
    if scheduler_state in SLURM_ENDS and not (record_status == "interrupted" and scheduler_state == "FAILED"):
        return scheduler_state.lower()
    if record_status in ("interrupted", "crashed", "running"):
        return record_status
    return "lost"
