"""The forked child of a run: used only while no XLA thread pool exists in the parent (fork would copy its locks)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import jax
import pytest
from conftest import cores_of_every_thread

from gradlab.runner import process


class _Record:
    name = "test"


def test_a_process_where_jax_has_started_runs_the_experiment_without_forking():
    jax.devices()  # starts the CPU backend and its threads
    parent = os.getpid()
    assert process.supervise(_Record(), lambda: 7 if os.getpid() == parent else 99) == 7


class _SignalsItselfWhenCollected:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs (and its Interrupted is dropped) at one of these bytecodes
            time.sleep(0.001)


class _Ctx:
    stop = threading.Event()
    cooperative = False
    log = logging.getLogger("test")


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
def test_a_signal_whose_exception_a_finalizer_dropped_still_interrupts_the_run(monkeypatch):
    """SIGTERM while a finalizer runs (JAX runs many as it starts): Python prints the Interrupted and drops it; the
    run is interrupted all the same as soon as the main thread waits, not computed on to `ok`."""
    dropped = []
    monkeypatch.setattr(sys, "unraisablehook", dropped.append)
    with process.signals_interrupt():
        obj = _SignalsItselfWhenCollected()
        del obj
        assert [d.exc_type for d in dropped] == [process.Interrupted]  # the swallowing this test is about happened
        started = time.monotonic()
        with pytest.raises(process.Interrupted) as caught:
            process.in_worker_thread(lambda cfg, ctx: time.sleep(30), None, _Ctx)
    assert caught.value.signum == signal.SIGTERM
    assert time.monotonic() - started < 5
    process.raise_if_interrupted()  # the signal belonged to that run only


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="pinning to fewer cores needs two of them and Linux's sched_setaffinity")
def test_on_cores_puts_every_thread_on_that_many_cores_and_gives_them_all_back():
    allowed = os.sched_getaffinity(0)
    jax.devices()  # XLA's thread pools exist: they are pinned too, not only the calling thread
    started = threading.Event()
    seen: list[set[int]] = []

    def started_inside() -> None:  # a thread started in the block inherits the block's cores
        seen.append(os.sched_getaffinity(0))
        started.set()

    with process.on_cores(1) as cores:
        assert cores == {"used": [max(allowed)], "available": len(allowed)}
        assert cores_of_every_thread() == {frozenset(cores["used"])}
        assert process.cores_allowed() == allowed  # what a child that times nothing may use (the memory probe)
        threading.Thread(target=started_inside).start()
        started.wait(10)
    assert seen == [{max(allowed)}]
    assert cores_of_every_thread() == {frozenset(allowed)} and process.cores_allowed() == allowed
    with process.on_cores(len(allowed) + 5) as cores:  # more than there are: all of them
        assert cores["used"] == sorted(allowed) and cores_of_every_thread() == {frozenset(allowed)}
    with process.on_cores(None) as cores:
        assert cores is None and cores_of_every_thread() == {frozenset(allowed)}


def test_importing_gradlab_raises_the_collectors_thresholds_from_cpythons_defaults_only():
    """gradlab/__init__.py: from the interpreter's defaults (CPython 3.11's and 3.12's (700, 10, 10)) to
    (100_000, 50, 100); a program that set its own thresholds before importing gradlab keeps them."""
    def thresholds(code: str) -> tuple[int, ...]:
        out = subprocess.run([sys.executable, "-c", f"import gc; {code}; print(*gc.get_threshold())"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        return tuple(map(int, out.split()))

    default = thresholds("pass")
    expected = (100_000, 50, 100) if default == (700, 10, 10) else default
    assert thresholds("import gradlab") == expected
    assert thresholds("gc.set_threshold(5000, 20, 20); import gradlab") == (5000, 20, 20)
