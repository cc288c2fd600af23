"""Timing JAX code correctly: compile separately, block_until_ready, warm up, repeat, median and spread.

The one timing loop of the project; every benchmark times through it.

    compiled, compile_s = compile_timed(fn, *args)       # jit + lower + compile, timed on its own
    stats = time_call(compiled, *args, repeats=7)        # {"median": ..., "spread": ..., "times": [...]}
    record = alternate({"a": call_a, "b": call_b}, 7)    # several calls timed in turn, round after round
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax


def compile_timed(fn: Callable, *args: Any, static_argnums: tuple[int, ...] = ()) -> tuple[Any, float]:
    """Ahead-of-time compile `jax.jit(fn)` for `args`; return (compiled executable, seconds spent)."""
    start = time.perf_counter()
    compiled = jax.jit(fn, static_argnums=static_argnums).lower(*args).compile()
    return compiled, time.perf_counter() - start


def block(value: Any) -> Any:
    """Wait for every array in a pytree (JAX dispatch is asynchronous)."""
    return jax.block_until_ready(value)


def summarize(times: list[float]) -> dict:
    """Median and spread (interquartile range, and min/max) of repeated timings in seconds."""
    ordered = sorted(times)
    if len(ordered) >= 4:
        q1, _, q3 = statistics.quantiles(ordered, n=4)
    else:
        q1, q3 = ordered[0], ordered[-1]
    return {
        "median": statistics.median(ordered),
        "spread": q3 - q1,
        "min": ordered[0],
        "max": ordered[-1],
        "repeats": len(ordered),
        "times": ordered,
    }


def time_call(fn: Callable, *args: Any, repeats: int = 7, warmup: int = 1) -> dict:
    """Wall time of `fn(*args)` with results blocked on: `warmup` untimed calls, then `repeats` timed."""
    return summarize(alternate({"call": lambda: fn(*args)}, repeats, warmup=warmup, rewarm=False)["call"]["times"])


def alternate(calls: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1, rewarm: bool = True) -> dict:
    """Time several zero-argument calls `repeats` times each, in turn, each round in a shuffled order.

    The order changes from round to round (a fixed-seed shuffle, so runs repeat): with a plain rotation every
    call would always follow the same other call, and one that leaves the machine busy or its caches cold
    (scikit-learn's BLAS threads, a 300 ms fit) would slow the same neighbour in every round.

    Every call runs `warmup` times untimed first (the first of them, less the median, is the one-time cost of
    eager code: caches, dispatch tables). With `rewarm`, each timed call directly follows an untimed call of
    the same function: right after PyTorch or scikit-learn ran, a JAX call pays to wake its parked thread pool
    (the 20-point jitted scan measured 2.8 us per step cold against 1.0 us warm), which is not its cost.

    Returns per name: `times` (seconds, in round order, so round k of two calls can be compared),
    `cpu_times` (this process's CPU seconds over the same calls: cpu / wall is how many cores a call kept
    busy), `warmup` (seconds of the first untimed call) and `result` (the last call's value, blocked on).
    """
    names = list(calls)
    record = {name: {"times": [], "cpu_times": [], "warmup": 0.0, "result": None} for name in names}
    for name in names:
        for index in range(warmup):
            start = time.perf_counter()
            record[name]["result"] = block(calls[name]())
            if index == 0:
                record[name]["warmup"] = time.perf_counter() - start
    order = random.Random(0)
    for _ in range(repeats):
        for name in order.sample(names, len(names)):
            if rewarm:
                block(calls[name]())
            start, cpu_start = time.perf_counter(), time.process_time()
            record[name]["result"] = block(calls[name]())
            record[name]["times"].append(time.perf_counter() - start)
            record[name]["cpu_times"].append(time.process_time() - cpu_start)
    return record


def cores_busy(entry: dict) -> float:
    """Median CPU time over median wall time of an `alternate` entry: ~1 for one thread, ~2 for two cores."""
    return statistics.median(entry["cpu_times"]) / statistics.median(entry["times"])


def xla_cost(compiled: Any) -> dict:
    """FLOPs and bytes from XLA's cost analysis and temporary memory from its memory analysis.

    Note: XLA's cost analysis counts a while/scan body once, not times its trip count.
    """
    cost = compiled.cost_analysis()
    if isinstance(cost, list | tuple):  # older JAX returns one dict per computation
        cost = cost[0] if cost else {}
    cost = cost or {}
    memory = compiled.memory_analysis()
    return {
        "flops": float(cost.get("flops", float("nan"))),
        "bytes_accessed": float(cost.get("bytes accessed", float("nan"))),
        "temp_bytes": int(getattr(memory, "temp_size_in_bytes", -1)) if memory is not None else -1,
    }
