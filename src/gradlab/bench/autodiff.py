"""Timing the routes of `gradlab.problems.autodiff_cost` so that the numbers survive a busy machine.

Every function is compiled ahead of time (compile time apart, XLA's temporary memory read), then all of them
are timed together in `rounds` interleaved rounds: each round visits every function once, in a shuffled
order, and records the *minimum* of a few back-to-back calls (enough to span `min_window_s`; one for a slow
call). A competing process only ever adds time, so a minimum is the statistic least moved by it. Across
rounds, a time is the median of its round minima and its interval the [min, max] of them; every time of the
study (f, routes, empty calls, Jacobians, checkpointing) is this one statistic.

Nothing is predicted: every (size, route) the config lists is run. The machine's load is sampled before and
after (load average, the share of the cores busy, this process's share while it timed).
"""

from __future__ import annotations

import math
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gradlab.bench.timing import block, compile_timed, xla_cost

# --------------------------------------------------------------------------------------------------------
# Interleaved rounds


def timed_rounds(items: dict[Any, tuple[Callable, tuple]], rounds: int, min_window_s: float, max_calls: int,
                 seed: int = 0) -> tuple[dict[Any, list[float]], dict[Any, Any], dict]:  # fmt: skip
    """({key: [round minimum, ...]}, {key: output of its first call}, process/machine CPU share while timing).

    First every function runs once (its output kept, for the correctness checks) and, unless that took longer
    than the window, once more timed: that sets its calls per round k = clip(ceil(min_window_s / t), 1,
    max_calls). Then `rounds` rounds, each
    in a new shuffled order (a fixed-seed generator, so a run repeats its order); with k > 1 an untimed call
    comes first, so the timed ones find caches as their own previous call left them.
    """
    keys = list(items)
    outputs, calls = {}, {}
    for key in keys:
        fn, args = items[key]
        start = time.perf_counter()
        outputs[key] = block(fn(*args))
        seconds = time.perf_counter() - start
        if seconds < min_window_s:  # a first call slower than the window says k = 1 already (later ones are faster)
            start = time.perf_counter()
            block(fn(*args))
            seconds = time.perf_counter() - start
        calls[key] = int(min(max_calls, max(1, math.ceil(min_window_s / seconds))))
    minima: dict[Any, list[float]] = {key: [] for key in keys}
    order = random.Random(seed)
    share = CpuShare()
    for _ in range(rounds):
        for key in order.sample(keys, len(keys)):
            fn, args = items[key]
            if calls[key] > 1:
                block(fn(*args))
            best = math.inf
            for _ in range(calls[key]):
                start = time.perf_counter()
                block(fn(*args))
                best = min(best, time.perf_counter() - start)
            minima[key].append(best)
    return minima, outputs, share.read()


def summary(values: list[float]) -> dict:
    """The study's one statistic: `best`, the minimum over rounds of the round minima (a competing process only
    adds time), with the rounds' [min, max] as its interval and their median beside it."""
    return {"best": min(values), "median": statistics.median(values), "interval": [min(values), max(values)],
            "rounds": len(values)}  # fmt: skip


def ratio_summary(numerator: list[float], denominator: list[float], scale: float = 1.0) -> dict:
    """best = min(numerator) / (scale x min(denominator)); the interval spans the round-by-round ratios (both timed
    in the same round, so a slow round moves both) and the best."""
    rounds = [a / (scale * b) for a, b in zip(numerator, denominator, strict=True)]
    best = min(numerator) / (scale * min(denominator))
    return {"best": best, "median": statistics.median(rounds), "interval": [min(*rounds, best), max(*rounds, best)],
            "rounds": len(rounds)}  # fmt: skip


def compiled(fn: Callable, args: tuple) -> tuple[Any, dict]:
    """(executable, {compile_s, temp_bytes}): jit + lower + compile, then XLA's memory analysis."""
    executable, seconds = compile_timed(fn, *args)
    return executable, {"compile_s": seconds, "temp_bytes": xla_cost(executable)["temp_bytes"]}


# --------------------------------------------------------------------------------------------------------
# The machine while we time


def _cpu_jiffies() -> tuple[float, float] | None:
    """(busy, total) jiffies of all cores from /proc/stat (Linux), or None."""
    try:
        fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class CpuShare:
    """Between construction and read(): this process's CPU seconds / (wall seconds x cores), and the share of
    all cores busy (any process, from /proc/stat): the difference is what other processes took."""

    def __init__(self):
        self.wall, self.cpu, self.jiffies = time.perf_counter(), time.process_time(), _cpu_jiffies()

    def read(self) -> dict:
        wall = time.perf_counter() - self.wall
        share = {"process_share": (time.process_time() - self.cpu) / (wall * cores()) if wall > 0 else None,
                 "machine_busy_share": None}  # fmt: skip
        now = _cpu_jiffies()
        if now is not None and self.jiffies is not None and now[1] > self.jiffies[1]:
            share["machine_busy_share"] = (now[0] - self.jiffies[0]) / (now[1] - self.jiffies[1])
        return share


def machine_load(sample_s: float) -> dict:
    """Load averages, cores, and the share of the cores busy over `sample_s` while this process sleeps (all of
    it is other processes'); `overloaded` when the 1-minute load exceeds the cores."""
    share = CpuShare()
    time.sleep(sample_s)
    load = os.getloadavg()
    return {"loadavg": list(load), "cores": cores(), "others_busy_share": share.read()["machine_busy_share"],
            "overloaded": load[0] > cores()}  # fmt: skip


# --------------------------------------------------------------------------------------------------------
# Peak resident memory (Linux): reset the high-water mark, run, read it


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_resident_bytes(fn: Callable, args: tuple) -> int | None:
    """Bytes the resident high-water mark rose over the resident size while fn(*args) ran once: VmHWM is reset
    to VmRSS by writing 5 to /proc/self/clear_refs. None where that is not possible (not Linux, no permission)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    before = _status_kib("VmRSS")
    block(fn(*args))
    peak = _status_kib("VmHWM")
    return None if before is None or peak is None else 1024 * (peak - before)


# --------------------------------------------------------------------------------------------------------
# Log-log fits over the sizes above the call floor


def fit_above_floor(sizes, times, floors, confidence: float, min_sizes: int, fit) -> dict:
    """Fit log(time) on log(size) over the sizes whose time is >= their floor (10 x the empty call of the same
    arguments); {fit or None, sizes, decades spanned}."""
    kept = [(s, t) for s, t, floor in zip(sizes, times, floors, strict=True) if t is not None and t >= floor]
    decades = math.log10(kept[-1][0] / kept[0][0]) if len(kept) >= 2 else 0.0
    result = fit(*zip(*kept, strict=True), confidence) if len(kept) >= min_sizes else None
    return {"fit": result, "sizes": [s for s, _ in kept], "decades": decades}
