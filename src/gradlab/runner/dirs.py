"""Run directories: each run, sweep and sweep job gets a directory of its own, claimed before anything is written.

A directory is claimed by creating the marker file `.gradlab-claim` in it exclusively (O_EXCL), so of several
processes started at once with the same `hydra.run.dir` exactly one wins; the others are refused. A directory
that holds anything else (an earlier run, the user's own files) is refused too: earlier outputs are never
overwritten and nothing but the run's own files ever lands in its directory.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gradlab.runner.config import ConfigError
from gradlab.runner.meta import process_identity

CLAIM_FILE = ".gradlab-claim"
EXIT_REFUSED = 2


class DirectoryTaken(Exception):
    """A run directory that another run holds, or that holds files that are not this run's."""


def unique_dir(base: str) -> str:
    """Create and return `base`, or `base-1`, `base-2`, ... if taken: two runs never share a directory.

    `os.mkdir` is atomic, so two processes started in the same second get two directories. Registered as the
    OmegaConf resolver `gradlab_unique_dir` (cached, so Hydra resolves it once per run, and sweep jobs, which
    copy the cache, see the same sweep directory).
    """
    try:
        Path(base).parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(10_000):
            candidate = base if attempt == 0 else f"{base}-{attempt}"
            try:
                os.mkdir(candidate)
                return candidate
            except FileExistsError:
                continue
    except OSError as err:
        refuse(f"cannot create the output directory {base!r}: {err.strerror}")
    refuse(f"could not create a fresh directory next to {base!r}")


if not OmegaConf.has_resolver("gradlab_unique_dir"):
    OmegaConf.register_new_resolver("gradlab_unique_dir", unique_dir, use_cache=True)


INSIDE = "one folder name (not empty, '.' or '..', no '/'): it must stay inside its folder"


def stays_inside(name: str) -> bool:
    """Whether `name` is one folder name, so that `parent / name` lies directly below `parent` whatever `parent` is.

    `..`, `../x`, `/tmp/x` leave the parent; `.` and the empty name are the parent itself; `a/b` stays inside but
    is refused too: `hydra.job.name` also names the log file in the run directory, where `a/b.log` cannot be
    opened, and one rule for every name is easier to state than one per name.
    """
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\0" not in name


def check_name(key: str, name: str) -> None:
    """ConfigError naming `key` unless the name `name`, which becomes a path below some folder, stays inside it."""
    if not stays_inside(name):
        raise ConfigError(key, name, INSIDE)


def check_names(key: str, names: Sequence[str]) -> None:
    """check_name for each of a list of names; `key` has a `{}` for the index (`runs[{}].id`)."""
    for index, name in enumerate(names):
        check_name(key.format(index), name)


def claim(directory: Path, *, allowed: tuple[str, ...] = ()) -> None:
    """Claim `directory` for this process: create it if needed, then the claim file exclusively.

    Raises DirectoryTaken if another run claimed it, or if it holds anything but the claim file and `allowed`
    names (a sweep job's directory already holds Hydra's `.hydra/` and log file when the job starts).
    A directory this process claimed before is accepted again.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():  # mkdir's FileExistsError would read "used by another run"
        raise DirectoryTaken(f"{str(directory)!r} is a file, not a folder: the run directory must be a folder")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / CLAIM_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        if _claimed_by_me(directory):
            return
        raise DirectoryTaken(f"{str(directory)!r} is already used by another run") from None
    except OSError as err:
        raise DirectoryTaken(f"cannot write in {str(directory)!r}: {err.strerror}") from None
    with os.fdopen(fd, "w") as handle:
        json.dump(process_identity(), handle)
    foreign = sorted(p.name for p in directory.iterdir() if p.name != CLAIM_FILE and p.name not in allowed)
    if foreign:
        (directory / CLAIM_FILE).unlink()
        raise DirectoryTaken(f"{str(directory)!r} already holds files that are not this run's ({', '.join(foreign[:3])}"
                             f"{', ...' if len(foreign) > 3 else ''})")


def _claimed_by_me(directory: Path) -> bool:
    try:
        holder = json.loads((directory / CLAIM_FILE).read_text())
    except (OSError, ValueError):
        return False
    me = process_identity()
    return all(holder.get(k) == me[k] for k in ("host", "pid", "pid_started"))


def refusal(message: str) -> str:
    """The one line every refusal of a directory prints."""
    return f"gradlab: error: {message}; pick a new directory, earlier outputs are never overwritten"


def refuse(message: str) -> None:
    """The refusal on stderr and exit code 2: how a Hydra callback refuses to start."""
    print(refusal(message), file=sys.stderr)
    sys.exit(EXIT_REFUSED)


class ClaimRunDirs(Callback):
    """Hydra callback: claim the run or sweep directory before Hydra writes anything into it."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check_job_name(config)
        self._claim(OmegaConf.select(config, "hydra.run.dir"))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check_job_name(config)
        subdir = OmegaConf.to_container(config.hydra.sweep, resolve=False).get("subdir", "")
        if "hydra.job.num" not in str(subdir) and "hydra.job.override_dirname" not in str(subdir):
            print(f"gradlab: config error: hydra.sweep.subdir={subdir!r} is not allowed: a pattern that differs per "
                  "job, containing ${hydra.job.num} (the default) or ${hydra.job.override_dirname}", file=sys.stderr)
            sys.exit(EXIT_REFUSED)
        self._claim(OmegaConf.select(config, "hydra.sweep.dir"))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """A sweep job's directory is `hydra.sweep.dir/<subdir>`; a subdir made of the job's overrides
        (${hydra.job.override_dirname}) holds their values, and a value with `../..` would put the job outside
        the sweep: refused before the job runs (Hydra has made the directory and its log by then)."""
        if OmegaConf.select(config, "hydra.mode") != RunMode.MULTIRUN:
            return
        job_dir = Path(str(config.hydra.runtime.output_dir)).resolve()
        sweep_dir = Path(str(OmegaConf.select(config, "hydra.sweep.dir"))).resolve()
        if sweep_dir not in job_dir.parents:
            subdir = OmegaConf.select(config, "hydra.sweep.subdir")
            print(f"gradlab: config error: hydra.sweep.subdir={subdir!r} is not allowed: a directory inside the "
                  f"sweep's {str(sweep_dir)!r} (an override value with '..' leads out of it)", file=sys.stderr)
            sys.exit(EXIT_REFUSED)

    @staticmethod
    def _check_job_name(config: DictConfig) -> None:
        """hydra.job.name becomes a folder of outputs/ and the log file's name: checked before the run directory
        is resolved (resolving it creates the directory)."""
        try:
            check_name("hydra.job.name", str(OmegaConf.select(config, "hydra.job.name")))
        except ConfigError as err:
            print(f"gradlab: {err}", file=sys.stderr)
            sys.exit(EXIT_REFUSED)

    @staticmethod
    def _claim(directory: Any) -> None:
        try:
            claim(Path(str(directory)))
        except DirectoryTaken as err:
            refuse(str(err))
