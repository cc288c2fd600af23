"""What a benchmark size may cost: a time budget per slow implementation, and the device memory its data needs.

Time. A slow implementation (eager Python, host code: `impls.SLOW`) at 4e8 points takes seconds a step; it is
run at a size only when its predicted time there fits its budget, else recorded as skipped with the reason. A
call's time grows with the points at most linearly from any size measured below (t(n) = a + b n with a, b >= 0
gives t(N) <= t(n) N / n for N >= n), so

    predicted(N) = t(n) N / n x calls,   calls = 1 warm-up + 2 per repeat (re-warm, timed) [+ 1 float64 check]

is an upper bound. It is read first from the small size's measured time (free: it was timed already); a
bound that far above the small size overshoots by the fixed cost a (the 20-point call is almost all a), so
when it is over budget the call is measured once more at `estimate_points` points and the bound read from there.

Memory. The large set lives on the default device: its float64 draw (x, y: 16 bytes a point), the copy in the
timing dtype (2 itemsize), and what a program or the sampler holds at once beside them (at most four float64
arrays the size of the data: `WORK_BYTES_PER_POINT`). A size that does not fit `fraction` of the device's free
memory (`memory_stats()`, else the host budget) is reduced to what fits, with the reason recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradlab.bench.timing import block

WORK_BYTES_PER_POINT = 4 * 8


def calls_per_size(repeats: int, checked_again: bool) -> int:
    """Calls of one implementation at one size: a warm-up, a re-warm and a timed call per repeat, and one more
    in float64 when the timing dtype is not (the like-with-like check)."""
    return 1 + 2 * repeats + int(checked_again)


def predicted_seconds(call_time: float, n_measured: int, n_target: int, calls: int) -> float:
    """Upper bound on `calls` calls at n_target points from one call's time at n_measured <= n_target."""
    return call_time * n_target / n_measured * calls


def over_budget(name: str, call_time: float, n_measured: int, n_target: int, calls: int,
                budget_s: float) -> str | None:
    """None when the bound fits the budget, else the one-line reason the implementation is skipped."""
    seconds = predicted_seconds(call_time, n_measured, n_target, calls)
    if seconds <= budget_s:
        return None
    return (f"{name}: {calls} calls at n={n_target:,} predicted up to {seconds:.3g} s (a call at n={n_measured:,}: "
            f"<= {call_time:.3g} s), over its budget of {budget_s:g} s (budget.slow_impl_s)")


def one_call(call: Callable[[], Any]) -> float:
    """Seconds of one call after an untimed one (the first pays for caches and dispatch tables)."""
    block(call())
    start = time.perf_counter()
    block(call())
    return time.perf_counter() - start


def slow_over_budget(small_calls: dict[str, float], n_small: int, n_large: int, calls: int, budget_s: float,
                     measure_at: Callable[[str], tuple[float, int]] | None) -> dict[str, str]:
    """{implementation: why it is skipped} for the slow ones predicted over `budget_s` at n_large points.

    `small_calls`: {name: one call's median time at the small size, scaled to the large size's steps per call};
    `measure_at(name)` -> (one call's time, points) at an intermediate size, asked only where the small size's
    bound is over budget.
    """
    skipped = {}
    for name, call_time in small_calls.items():
        reason = over_budget(name, call_time, n_small, n_large, calls, budget_s)
        if reason is not None and measure_at is not None:
            reason = over_budget(name, *measure_at(name), n_large, calls, budget_s)
        if reason is not None:
            skipped[name] = reason
    return skipped


def bytes_per_point(itemsize: int) -> int:
    """Device bytes a point of the large set costs (see the module docstring)."""
    return 2 * 8 + 2 * itemsize + WORK_BYTES_PER_POINT


def free_device_bytes(fallback_bytes: float) -> tuple[float, str]:
    """The default device's bytes_limit - bytes_in_use where the backend reports them (GPU, TPU), else
    `fallback_bytes` (the host memory budget: a CPU's device memory is the host's)."""
    stats = jax.devices()[0].memory_stats()
    if stats and stats.get("bytes_limit"):
        return float(stats["bytes_limit"] - stats.get("bytes_in_use", 0)), "the device's memory_stats()"
    return float(fallback_bytes), "the host memory budget (memory_budget_gb, else half of MemAvailable)"


def points_that_fit(n_per_class: int, itemsize: int, free_bytes: float, source: str, fraction: float,
                    multiple: int) -> tuple[int, str | None]:
    """(n_per_class, None) when both classes fit `fraction` of `free_bytes`, else (the largest n_per_class that
    fits, a multiple of `multiple`, and the reason it was reduced)."""
    need = 2 * n_per_class * bytes_per_point(itemsize)
    if need <= fraction * free_bytes:
        return n_per_class, None
    fits = int(fraction * free_bytes / (2 * bytes_per_point(itemsize)))
    fits -= fits % multiple
    reason = (f"sizes.large.n_per_class={n_per_class:,} needs {need / 2**30:.3g} GiB on the device, over "
              f"{fraction:g} x the {free_bytes / 2**30:.3g} GiB free ({source}): reduced to {fits:,}")
    return max(fits, 0), reason


def subset(x: jax.Array, y: jax.Array, points: int) -> tuple[jax.Array, jax.Array]:
    """The first points // 2 of each class (the data is class 0, then class 1: both kept); all where
    points >= len(x)."""
    if points >= x.shape[0]:
        return x, y
    half, k = x.shape[0] // 2, max(points // 2, 1)
    return jnp.concatenate([x[:k], x[half:half + k]]), jnp.concatenate([y[:k], y[half:half + k]])
