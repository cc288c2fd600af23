"""Running one experiment in its own process, and ending it well: the parts of the run layer that deal with
processes and signals.

- `signals_interrupt`: SIGINT and SIGTERM raise `Interrupted` in the main thread, once; `raise_if_interrupted`
  raises it again where the first one was swallowed;
- `in_worker_thread`: the experiment computes in a worker thread, so that a signal is handled at once even
  while XLA runs a compiled call for minutes (a Python handler runs only between the main thread's bytecodes);
- `supervise`: the run in a forked child; a child that dies without writing its record (SIGKILL, the OOM
  killer, a native abort) is recorded `crashed` with its signal by this process, and a sweep goes on; a child
  whose supervising process is killed gets SIGTERM and records itself `interrupted`;
- `SWEEP_STOP`: set by a signal during a sweep, so the jobs not started yet are recorded as not run;
- `hold_signals`: for the main job, from its first line: a signal during start-up (imports, Hydra, the fork) is
  held and delivered once the run computes, so Ctrl-C at any moment ends the same way;
- `on_cores`: the run's threads (XLA's included) on a number of cores, for the run's duration.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from gradlab.runner.records import read_record

EXIT_FAILED = 1
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived while the run was computing."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_received: list[int] = []  # the signal that interrupted the run, kept after its exception is raised
_held: list[int] = []  # signals held since `hold_signals` (start-up), not yet delivered
_holding: list[bool] = []  # [True] while a held start-up has not reached the run's computation yet


def hold_signals() -> None:
    """Hold SIGINT and SIGTERM from now on (remember them, raise nothing) until the run computes.

    Called on the first line of the main job's script: without it, Ctrl-C while Python imports, Hydra composes
    or the run is forked ends in a KeyboardInterrupt traceback and no report. Held, the signal reaches the run
    as soon as it computes (`in_worker_thread`), where run_all stops, marks every run not started as not run
    and writes its report, exactly as for Ctrl-C later. The held list and this handler pass to a forked child.
    """
    def hold(signum: int, frame: Any) -> None:
        _held.append(signum)

    _holding[:] = [True]
    for s in EXIT_SIGNAL:
        signal.signal(s, hold)


def signal_received() -> int | None:
    """The signal that is ending this run (held since start-up or received since), or None."""
    return _received[0] if _received else None


@contextlib.contextmanager
def signals_interrupt():
    """SIGINT and SIGTERM raise Interrupted in the main thread; a second signal is ignored while recording.

    After `hold_signals`, a signal is only recorded until the computation starts (`in_worker_thread` raises it
    there): the run layer's set-up between here and the computation is never cut short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: Any) -> None:
        for s in EXIT_SIGNAL:  # the first signal ends the run; a second one must not break the record's writing
            signal.signal(s, signal.SIG_IGN)
        _received.append(signum)
        if not _holding:
            raise Interrupted(signum)

    _received[:] = _held[:1]  # a signal held during start-up is this run's: a second one is ignored
    previous = {s: signal.signal(s, signal.SIG_IGN if _received else on_signal) for s in EXIT_SIGNAL}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _received.clear()


def raise_if_interrupted() -> None:
    """Interrupted, again, for a signal whose exception was swallowed where it was raised.

    A Python handler runs at whichever bytecode the main thread is at: inside a finalizer or a weakref callback
    (JAX runs many while it starts) an exception is printed and dropped, and the run would compute on, with the
    signals now ignored, to `ok`. Checked while the main thread waits and before the final record.
    """
    if _received:
        raise Interrupted(_received[0])


def in_worker_thread(main: Callable[[Any, Any], dict], cfg: Any, ctx: Any) -> dict:
    """main(cfg, ctx) in a worker thread while the main thread waits, so that a signal is handled at once.

    (A Python signal handler runs only between bytecodes of the main thread, never inside a compiled XLA
    call that may last minutes.) Outside the main thread it is a plain call.
    """
    if threading.current_thread() is not threading.main_thread():
        return main(cfg, ctx)
    outcome: dict[str, Any] = {}
    done = threading.Event()  # waited on instead of Thread.join: a join interrupted by a signal marks the
                              # thread stopped while it still runs (CPython bpo-45274)

    def work() -> None:
        try:
            outcome["results"] = main(cfg, ctx)
        except BaseException as err:  # noqa: BLE001 - re-raised in the main thread
            outcome["error"] = err
        finally:
            done.set()

    threading.Thread(target=work, name=f"gradlab-{ctx.log.name}", daemon=True).start()
    _holding.clear()  # from now on a signal raises at once (or at the next check below)
    try:
        while not done.wait(timeout=0.2):
            raise_if_interrupted()
    except Interrupted:
        ctx.stop.set()
        if ctx.cooperative:  # it stops what it runs and records what it has (in ctx.partial)
            done.wait()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["results"]


def supervise(record: Any, run: Callable[[], int]) -> int:
    """Run `run` in a forked child; record `crashed` (with the signal or exit code) if it dies unrecorded.

    `record` is the run's record (`path`, `name`, `meta`, `write(status, error, results, **extra)`).

    SIGINT and SIGTERM sent to this process are passed on to the child. Either stops a sweep: the jobs not yet
    started are recorded as not run; so does one held since start-up (`hold_signals`), which the child inherits.
    """
    if _held:
        SWEEP_STOP.set(_held[0])
    if _xla_started():  # XLA's thread pools exist: a forked child could wait forever on a lock one of them held
        logging.getLogger(record.name).warning("JAX had started in this process: the run is not isolated")
        return run()
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    gc.freeze()  # the child's collections skip what this process made: no copy-on-write of it, no time walking it
    pid = os.fork()
    if pid == 0:  # the child: run, then leave without unwinding the parent's state (Hydra, launchers)
        code = EXIT_FAILED
        try:
            _stop_with(parent)
            code = run()
        except SystemExit as err:
            code = err.code if isinstance(err.code, int) else EXIT_FAILED
        finally:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    gc.unfreeze()  # the parent collects its own objects again

    def on_signal(signum: int, frame: Any) -> None:
        SWEEP_STOP.set(signum)
        os.kill(pid, signum)  # the child ignores a second one (from the terminal, to the whole process group)

    previous = {s: signal.signal(s, on_signal) for s in EXIT_SIGNAL}
    try:
        while True:
            try:
                _, wait_status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    child = read_record(record.path.parent) or {}
    if child.get("status") not in (None, "running"):
        return os.waitstatus_to_exitcode(wait_status) if os.WIFEXITED(wait_status) else EXIT_FAILED
    if os.WIFSIGNALED(wait_status):
        how = f"killed by {signal.Signals(os.WTERMSIG(wait_status)).name}"
    else:
        how = f"exited with code {os.waitstatus_to_exitcode(wait_status)} without a record"
    print(f"gradlab: {record.name} crashed: the run's process was {how}", file=sys.stderr)
    record.meta.update({k: v for k, v in (child.get("meta") or {}).items() if k not in record.meta})
    results = {k: v for k, v in child.items() if k not in ("status", "experiment", "meta", "phase", "error")}
    record.write("crashed", f"the run's process was {how}", results, signal=how)
    return EXIT_FAILED


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _stop_with(parent: int) -> None:
    """SIGTERM to this child when `parent` dies (Linux): a user who kills the process they launched (kill -9 of
    its pid) stops the run, which then records itself interrupted, instead of leaving it computing unseen."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


_computed_here = False


def note_computing_here() -> None:
    """Called by the run layer before a run computes in this process: from then on JAX's backend (and XLA's thread
    pools) may exist here, and forking this process is unsafe."""
    global _computed_here
    _computed_here = True


def _xla_started() -> bool:
    """Whether XLA's backend (and its thread pools) may exist in this process, so that fork is unsafe.

    JAX's public API has no "is a backend initialised?" query. Two signs instead: a run computed here (the run
    layer says so), or, on Linux, a thread named by XLA's runtime (TSL names its threads `tf_...`, e.g.
    `tf_XLAEigen`, started with the first backend: `jax.devices()` is enough)."""
    if _computed_here:
        return True
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return False
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/comm") as comm:
                if comm.read().startswith("tf_"):
                    return True
        except OSError:
            continue  # the thread ended meanwhile
    return False


def _pin_threads(cores: set[int]) -> None:
    """Run every thread of this process on `cores` (sched_setaffinity applies to one thread at a time; a thread
    started later inherits its starter's set)."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(tid), cores)


_unpinned: set[int] | None = None  # while `on_cores` has this process on fewer cores: all it may use


def cores_allowed() -> set[int] | None:
    """The cores this process may use, those `on_cores` left out included (None: no sched_getaffinity)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    return _unpinned or os.sched_getaffinity(0)


@contextlib.contextmanager
def on_cores(count: int | None):
    """The block computes on `count` of the cores this process may use (the highest-numbered), every thread of
    it, then on all of them again; yields {"used": [core ids], "available": n}, or None where nothing is set
    (`count` None, or no sched_setaffinity: not Linux). A `count` above the cores available uses them all.

    Started before XLA's backend, its thread pools are sized for `count` cores (as under `taskset`); started
    after (a run in a process that already computed), the pools keep their threads, on those cores."""
    if count is None or not hasattr(os, "sched_setaffinity") or not os.path.isdir("/proc/self/task"):
        yield None
        return
    global _unpinned
    allowed = os.sched_getaffinity(0)
    used = set(sorted(allowed)[-count:])
    _pin_threads(used)
    _unpinned = allowed
    try:
        yield {"used": sorted(used), "available": len(allowed)}
    finally:
        _unpinned = None
        _pin_threads(allowed)


class _SweepStop:
    """Set when SIGINT/SIGTERM arrives during a sweep: the jobs not started yet are recorded as not run."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def set(self, signum: int) -> None:
        self.signum = self.signum or signum

    def is_set(self) -> bool:
        return self.signum is not None

    @property
    def reason(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


SWEEP_STOP = _SweepStop()
