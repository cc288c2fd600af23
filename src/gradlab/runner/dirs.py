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
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

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


def claim(directory: Path, *, allowed: tuple[str, ...] = ()) -> None:
    """Claim `directory` for this process: create it if needed, then the claim file exclusively.

    Raises DirectoryTaken if another run claimed it, or if it holds anything but the claim file and `allowed`
    names (a sweep job's directory already holds Hydra's `.hydra/` and log file when the job starts).
    A directory this process claimed before is accepted again.
    """
    directory = Path(directory)
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
        self._claim(OmegaConf.select(config, "hydra.run.dir"))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        subdir = OmegaConf.to_container(config.hydra.sweep, resolve=False).get("subdir", "")
        if "hydra.job.num" not in str(subdir) and "hydra.job.override_dirname" not in str(subdir):
            print(f"gradlab: config error: hydra.sweep.subdir={subdir!r} is not allowed: a pattern that differs per "
                  "job, containing ${hydra.job.num} (the default) or ${hydra.job.override_dirname}", file=sys.stderr)
            sys.exit(EXIT_REFUSED)
        self._claim(OmegaConf.select(config, "hydra.sweep.dir"))

    @staticmethod
    def _claim(directory: Any) -> None:
        try:
            claim(Path(str(directory)))
        except DirectoryTaken as err:
            refuse(str(err))
