"""A signal during a main job's start-up is held, then delivered once the run computes (process.hold_signals):
in this process, with the handlers and the held state restored afterwards."""

from __future__ import annotations

import logging
import os
import signal
import threading

import jax
import pytest

from gradlab.runner import process


@pytest.fixture
def holding():
    saved = {s: signal.getsignal(s) for s in process.EXIT_SIGNAL}
    process.hold_signals()
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)
    process._held.clear()
    process._holding.clear()
    process.SWEEP_STOP.signum = None


class _Ctx:
    log = logging.getLogger("held")
    cooperative = True

    def __init__(self):
        self.stop = threading.Event()


def test_a_signal_in_start_up_is_held_then_ends_the_run_once_it_computes(holding):
    os.kill(os.getpid(), signal.SIGTERM)  # while "importing": nothing is raised
    seen = {}

    def main(cfg, ctx):
        seen["received"] = process.signal_received()  # run_all reads it: no run starts
        ctx.stop.wait(timeout=30)  # as run_all's main does, until the run layer says stop
        return {"done": True}

    ctx = _Ctx()
    with process.signals_interrupt():
        assert process.signal_received() == signal.SIGTERM  # the set-up before the computation is not cut short
        with pytest.raises(process.Interrupted) as err:
            process.in_worker_thread(main, None, ctx)
    assert err.value.signum == signal.SIGTERM and seen == {"received": signal.SIGTERM} and ctx.stop.is_set()
    assert process.signal_received() is None  # cleared with the run


def test_without_a_held_signal_the_run_computes_and_a_later_signal_still_raises(holding):
    with process.signals_interrupt():
        assert process.in_worker_thread(lambda cfg, ctx: {"ok": 1}, None, _Ctx()) == {"ok": 1}
        with pytest.raises(process.Interrupted):
            os.kill(os.getpid(), signal.SIGINT)  # computing: raised at once, as without hold_signals
            for _ in range(1000):
                pass


def test_a_signal_held_before_a_sweep_job_stops_the_jobs_after_it(holding):
    """`run_all -m ...` interrupted while it starts: the first job ends interrupted with its report (it inherits the
    held signal), the later ones are recorded as not run (SWEEP_STOP), instead of each starting and stopping."""

    class Record:
        name = "held"

    jax.devices()  # XLA's threads exist here: supervise runs the job in this process instead of forking pytest
    os.kill(os.getpid(), signal.SIGINT)
    assert not process.SWEEP_STOP.is_set()
    assert process.supervise(Record(), lambda: 0) == 0  # this process runs JAX: the job runs here, unforked
    assert process.SWEEP_STOP.is_set() and process.SWEEP_STOP.signum == signal.SIGINT
