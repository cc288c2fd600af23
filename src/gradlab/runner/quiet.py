"""The main job's machine, shared while its runs compute and held alone while one of them measures time.

`run_all` names a lock file in GRADLAB_MACHINE_LOCK for its runs. Each run holds a shared lock on it while it
computes (`computing`, taken by the run layer), and a timed section takes it exclusively (`alone`): the section
starts once every other run computing has ended, and a run that starts meanwhile waits until it is over (POSIX
`flock`). So a timed experiment compiles and warms up beside the others and times with the cores to itself.
Outside the main job (no variable) both are no-ops: a timed run started by hand is as alone as its user keeps it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator

LOCK_ENV = "GRADLAB_MACHINE_LOCK"
_fd: int | None = None  # this process's hold on the lock file (a file descriptor) while it computes


@contextlib.contextmanager
def computing() -> Iterator[None]:
    """A shared hold on the main job's machine for the block (waits while a timed section holds it alone)."""
    global _fd
    path = os.environ.get(LOCK_ENV)
    if not path or _fd is not None:  # outside the main job, or already held
        yield
        return
    _fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(_fd, fcntl.LOCK_SH)
        yield
    finally:
        fd, _fd = _fd, None
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def alone() -> Iterator[dict]:
    """The machine to this run for the block: {"waited_s": seconds until every other run had ended, "main_job"}.

    The shared hold is converted, which drops it while waiting (flock's conversion is not atomic), so two timed
    runs never wait on each other's shared hold; afterwards it is shared again (waiting if another timed run now
    holds it alone), so what follows never overlaps another run's timed section."""
    if _fd is None:
        yield {"waited_s": 0.0, "main_job": False}
        return
    started = time.perf_counter()
    fcntl.flock(_fd, fcntl.LOCK_EX)
    try:
        yield {"waited_s": time.perf_counter() - started, "main_job": True}
    finally:
        fcntl.flock(_fd, fcntl.LOCK_SH)
