"""Timing JAX code correctly: compile separately, block_until_ready, warm up, repeat, median and spread.

    compiled, compile_s = compile_timed(fn, *args)       # jit + lower + compile, timed on its own
    stats = time_call(compiled, *args, repeats=7)        # {"median": ..., "spread": ..., "times": [...]}
"""

from __future__ import annotations

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
    for _ in range(warmup):
        block(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        block(fn(*args))
        times.append(time.perf_counter() - start)
    return summarize(times)


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
