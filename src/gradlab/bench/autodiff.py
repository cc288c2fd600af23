"""Timing the routes of `gradlab.problems.autodiff_cost` so that the numbers survive a busy machine.

Every function is compiled ahead of time (compile time apart, XLA's temporary memory read), then all of them
are timed together in `rounds` interleaved rounds: each round visits every function once, in a shuffled
order, and records the *minimum* of a few back-to-back calls (enough to span `min_window_s`; one for a slow
call). A competing process only ever adds time, so a minimum is the statistic least moved by it. Across
rounds, a time is the minimum of its round minima and its interval the [min, max] of them; every time of the
study (f, routes, empty calls, Jacobians, checkpointing) is this one statistic.

Nothing is predicted: every (size, route) the config lists is run, unless it cannot fit the device's memory
(`DeviceMemory`: checked from the compiled program's memory analysis before its first call) or it fails at run
time (a `jax.errors.JaxRuntimeError` such as RESOURCE_EXHAUSTED): then it is recorded as skipped or failed with
its reason and the study goes on without it (`Records` writes each size's record as it completes). The
machine's load is sampled before and after (load average, the share of the cores busy, this process's share
while it timed).
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

from gradlab.bench.budget import free_device_bytes
from gradlab.bench.timing import block, compile_timed, xla_cost
from gradlab.runner.records import atomic_open

# --------------------------------------------------------------------------------------------------------
# Interleaved rounds


def first_call(fn: Callable, args: tuple, min_window_s: float) -> tuple[Any, float]:
    """(output, seconds) from one or two calls before the rounds: the output is kept for the correctness checks;
    unless the first call took longer than the window, a second one is timed (the first pays one-off costs)."""
    start = time.perf_counter()
    output = block(fn(*args))
    seconds = time.perf_counter() - start
    if seconds < min_window_s:
        start = time.perf_counter()
        block(fn(*args))
        seconds = time.perf_counter() - start
    return output, seconds


def calls_per_round(items: dict[Any, tuple[Callable, tuple]], first_s: dict[Any, float], min_window_s: float,
                    max_calls: int, recheck_s: float) -> dict[Any, int]:
    """Back-to-back calls per round, k = clip(ceil(min_window_s / t), 1, max_calls), with t taken with the machine
    as it will be timed: the first calls ran while compiling, in the main job beside other runs, where a call can
    wait out another process's whole time slice (a 0.65 ms jvp, first timed at over 10 ms there, was then called
    once a round, each time cold, and read 3.5x f). So every function whose first call took less than `recheck_s`
    is called once more here and t is the faster of the two; one slower than that keeps its first time (another
    call would cost more than it could change). A function that fails here keeps its first time (the rounds record
    the failure)."""
    def seconds_of(fn, args) -> float:
        start = time.perf_counter()
        block(fn(*args))
        return time.perf_counter() - start

    calls = {}
    for key, (fn, args) in items.items():
        seconds = first_s[key]
        if seconds < recheck_s:
            again, error = attempt(seconds_of, fn, args)
            seconds = min(seconds, again) if error is None else seconds
        calls[key] = int(min(max_calls, max(1, math.ceil(min_window_s / max(seconds, 1e-9)))))
    return calls


def timed_rounds(items: dict[Any, tuple[Callable, tuple]], calls: dict[Any, int], rounds: int,
                 seed: int = 0) -> tuple[dict[Any, list[float]], dict, dict[Any, str]]:  # fmt: skip
    """({key: [round minimum, ...]}, process/machine CPU share while timing, {key: why it failed}).

    `rounds` rounds, each in a new shuffled order (a fixed-seed generator, so a run repeats its order), each
    visiting every function once for `calls[key]` back-to-back calls (`calls_per_round`) and keeping their
    minimum; with k > 1 an untimed call comes first, so the timed ones find caches as their own previous call
    left them. A function that fails (`attempt`) leaves the rounds with its reason; the others go on.
    """
    keys = list(items)
    minima: dict[Any, list[float]] = {key: [] for key in keys}
    failed: dict[Any, str] = {}
    order = random.Random(seed)
    share = CpuShare()

    def one_round_of(key) -> float:
        fn, args = items[key]
        if calls[key] > 1:
            block(fn(*args))
        best = math.inf
        for _ in range(calls[key]):
            start = time.perf_counter()
            block(fn(*args))
            best = min(best, time.perf_counter() - start)
        return best

    for _ in range(rounds):
        for key in order.sample(keys, len(keys)):
            if key in failed:
                continue
            best, error = attempt(one_round_of, key)
            if error is None:
                minima[key].append(best)
            else:
                failed[key] = error
    return {k: v for k, v in minima.items() if k not in failed}, share.read(), failed


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


def process_cores() -> int:
    """The cores this process may run on (its affinity: 1 under `cores=1`)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else machine_cores()


def machine_cores() -> int:
    """The machine's cores: what its load average and /proc/stat count."""
    return os.cpu_count() or 1


class CpuShare:
    """Between construction and read(): this process's CPU seconds / (wall seconds x cores), and the share of
    all cores busy (any process, from /proc/stat): the difference is what other processes took."""

    def __init__(self):
        self.wall, self.cpu, self.jiffies = time.perf_counter(), time.process_time(), _cpu_jiffies()

    def read(self) -> dict:
        wall = time.perf_counter() - self.wall
        share = {"process_share": (time.process_time() - self.cpu) / (wall * process_cores()) if wall > 0 else None,
                 "machine_busy_share": None}  # fmt: skip
        now = _cpu_jiffies()
        if now is not None and self.jiffies is not None and now[1] > self.jiffies[1]:
            share["machine_busy_share"] = (now[0] - self.jiffies[0]) / (now[1] - self.jiffies[1])
        return share


def machine_load(sample_s: float) -> dict:
    """Load averages, cores, and the share of the cores busy over `sample_s` while this process sleeps (all of
    it is other processes'); `overloaded` when the 1-minute load exceeds the cores while other processes still
    use at least half a core: the average trails by about a minute, and in the main job it still counts the runs
    that ended (or wait) before this one times alone."""
    share = CpuShare()
    time.sleep(sample_s)
    load = os.getloadavg()
    others = share.read()["machine_busy_share"]
    cores = machine_cores()
    return {"loadavg": list(load), "cores": cores, "process_cores": process_cores(), "others_busy_share": others,
            "overloaded": load[0] > cores and (others is None or others * cores >= 0.5)}  # fmt: skip


# --------------------------------------------------------------------------------------------------------
# Device memory: check before the first call, record and go on after a failure


class DeviceMemory:
    """The memory a new call may take: the default device's bytes_limit - bytes_in_use where the backend reports
    them (`memory_stats()`: GPU, TPU), else `fallback_bytes` (the CPU's host budget). A compiled program needs
    its output + temporary bytes (XLA's memory analysis, read without running it; its arguments exist already)."""

    def __init__(self, fallback_bytes: float, fraction: float):
        self.fallback, self.fraction = fallback_bytes, fraction

    def free_bytes(self) -> tuple[float, str]:
        return free_device_bytes(self.fallback)

    def refuse(self, needed_bytes: float) -> str | None:
        """None when needed_bytes fits within `fraction` of the free memory, else the one-line reason."""
        free, source = self.free_bytes()
        if needed_bytes <= self.fraction * free:
            return None
        return (f"needs {needed_bytes / 2**30:.3g} GiB, over {self.fraction:g} x the {free / 2**30:.3g} GiB free "
                f"({source})")


def program_bytes(executable) -> float:
    """Output + temporary bytes of a compiled program (argument buffers are already allocated)."""
    memory = executable.memory_analysis()
    if memory is None:
        return 0.0
    return float(memory.output_size_in_bytes + memory.temp_size_in_bytes)


def attempt(fn: Callable, *args) -> tuple[Any, str | None]:
    """(fn(*args), None), or (None, one-line reason) when XLA fails at run time (e.g. RESOURCE_EXHAUSTED) or
    the host is out of memory: the caller records the size as failed and goes on."""
    try:
        return fn(*args), None
    except (jax.errors.JaxRuntimeError, MemoryError) as error:
        # one line: XLA's first line says what failed, the last (after a traceback) what was raised
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        text = " ... ".join(dict.fromkeys([lines[0], lines[-1]])) if lines else ""
        return None, f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__


class Records:
    """One JSON object a line in `path`, rewritten whole through records.atomic_open after each
    record, so a run killed at any moment leaves every record completed before it, and never half of one."""

    def __init__(self, path: Path):
        self.path, self.lines = Path(path), []

    def add(self, record: dict) -> None:
        self.lines.append(json.dumps(record, default=float))
        with atomic_open(self.path) as handle:
            handle.write("\n".join(self.lines) + "\n")
