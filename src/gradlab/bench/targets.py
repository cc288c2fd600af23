"""The logistic-regression benchmark's targets: each a measured value against a threshold, met or not.

Every target reads `value >= target`; `met` is None when the value could not be measured (an optional
package missing), with the reason beside it; a target the machine bounds below its goal says why, from numbers
measured in the same run. No test asserts a time: the targets are data in metrics.json.
"""

from __future__ import annotations

import statistics
from typing import Any


def target(value: float | None, goal: float, met: bool | None = None, **detail: Any) -> dict:
    """{value, target, met, ...}: met is value >= goal unless given, None when the value is missing."""
    if value is None:
        return {"value": None, "target": goal, "met": None, **detail}
    return {"value": float(value), "target": goal, "met": bool(value >= goal if met is None else met), **detail}


def ratios_by_round(slow: list[float], fast: list[float]) -> dict:
    """slow / fast round by round (alternating rounds): median and interquartile spread of the ratio."""
    ratios = sorted(a / b for a, b in zip(slow, fast, strict=True))
    q1, q3 = (statistics.quantiles(ratios, n=4)[::2] if len(ratios) >= 4 else (ratios[0], ratios[-1]))
    return {"median": statistics.median(ratios), "spread": q3 - q1, "rounds": len(ratios)}


def no_slower(slow_step: float, slow_spread: float, fast_step: float, fast_spread: float, goal: float, **detail):
    """`fast` is no slower than `slow`: value slow / fast; met when the fast median is above the slow one by
    no more than the larger interquartile spread of the two (a difference within timing noise)."""
    met = fast_step * goal <= slow_step + max(slow_spread, fast_spread)
    return target(slow_step / fast_step, goal, met, **detail)


def limit_target(row: dict, limit: str, goal: float) -> dict:
    """The library step at the large size against one of its limits (`gradlab.bench.limits`: "irreducible",
    the exp + log1p + division pass; "bandwidth", the read of x and y): probe time / step time, both medians.
    Not judged where the step or a probe is launch-bound (its fraction says nothing of the work); where missed,
    `why` gives what XLA made of the step and the bytes it moved, measured in the same run."""
    anatomy, launch = row["step_anatomy"], row["launch"][limit]
    traffic = anatomy["bytes_accessed_per_step"] / row["scan_time_per_step"]
    data_rate = row["bytes_per_step"] / row["scan_time_per_step"]
    fraction = row[f"fraction_of_{limit}_limit"]
    detail = {
        "note": f"{limit} probe time / library step time (medians), n={row['n']:,}, {row['dtype']}, "
                f"{row.get('device', 'default device')}",
        "why": f"XLA makes the step {anatomy['fusions']} kernels moving {anatomy['bytes_accessed_per_step'] / 1e6:.0f}"
               f" MB a step (the data: {row['bytes_per_step'] / 1e6:.0f} MB, read at {data_rate / 1e9:.0f} GB/s) at "
               f"{traffic / 1e9:.0f} GB/s; the bandwidth probe reads {row['bandwidth_bytes_per_s'] / 1e9:.0f} GB/s, "
               f"the irreducible probe takes {row['irreducible_probe_time'] / row['scan_time_per_step']:.2f} of a step",
        "step_anatomy": anatomy, "cores_busy": row["cores_busy"], "step_bytes_per_s": traffic,
        "data_bytes_per_s": data_rate, "bandwidth_bytes_per_s": row["bandwidth_bytes_per_s"], "launch": launch}
    if launch["launch_bound"]:
        return target(None, goal, **detail, fraction_measured=fraction,
                      reason=f"launch-bound: the shortest call compared ({launch['time'] * 1e6:.3g} us) takes "
                             f"{launch['empty_calls']:.3g} empty calls ({launch['empty_call_time'] * 1e6:.3g} us "
                             "each), so the fraction says nothing of the work; larger sizes.large.n_per_class")
    return target(fraction, goal, **detail)


def logreg_targets(sizes: dict, by_dtype: dict, sharding: dict | None, goals: Any, skipped: dict) -> dict:
    """The targets of the benchmark from its measurements (see `gradlab.bench.logreg`)."""
    small, large = sizes["small"], sizes["large"]
    out = {}
    for dtype, row in by_dtype.items():
        goal = getattr(goals.limit_fraction, dtype)
        out[f"large_step_vs_{goal.limit}_limit_{dtype}"] = limit_target(row, goal.limit, goal.fraction)
        out[f"large_scan_vs_python_loop_{dtype}"] = no_slower(
            row["loop_time_per_step"], row["loop_spread_per_step"], row["scan_time_per_step"],
            row["scan_spread_per_step"], goals.scan_vs_loop,
            note=f"Python loop time / scan time per step, n={row['n']:,}, {dtype}")
    scan, loop = small["implementations"]["jax_scan"], small["implementations"]["jax_python_loop"]
    out["small_scan_vs_python_loop"] = no_slower(
        loop["time_per_step_median"], loop["time_per_step_spread"], scan["time_per_step_median"],
        scan["time_per_step_spread"], goals.scan_vs_loop, note=f"Python loop time / scan time per step, n={small['n']}")
    for dtype, row in (sharding or {}).get("dtypes", {}).items():
        ceiling = {}  # measured where the child could pin itself to one core (Linux)
        if "sharded_speedup_ceiling" in row:
            ceiling = {key: row[key] for key in ("single_device_intra_op_speedup", "sharded_speedup_ceiling")}
            ceiling["why"] = (f"at most {row['sharded_speedup_ceiling']:.2f} here: one device already runs "
                              f"{row['single_device_intra_op_speedup']:.2f}x faster than pinned to one core "
                              "(XLA's own threads)")
        out[f"large_sharded_vs_single_device_{dtype}"] = target(
            row["speedup"], goals.sharded_speedup, spread=row["speedup_spread"], cores_busy=row["cores_busy"],
            note=f"1-device / {sharding['devices']}-device scan time, median of alternating rounds, {dtype}",
            **ceiling)
    out["small_library_vs_numpy_per_step"] = target(
        small["speedup_vs_numpy"]["jax_scan"], goals.small_vs_numpy,
        note=f"NumPy time / library scan time per step, n={small['n']}")
    for label, size in sizes.items():
        rounds, left_out = size["newton_vs_sklearn_rounds"], {**size.get("skipped", {}), **skipped}
        out[f"{label}_newton_vs_sklearn"] = target(
            rounds and rounds["median"], goals.newton_vs_sklearn, spread=rounds and rounds["spread"],
            note=f"scikit-learn time / jit Newton time to the tolerance, median of alternating rounds, n={size['n']:,}",
            **({"reason": left_out["sklearn_lbfgs"]} if "sklearn_lbfgs" in left_out else {}))
    best = large["implementations"][large["best_jax_gd"]]["time_per_step_median"]
    left_out = {**large.get("skipped", {}), **skipped}
    for other in ("numpy_loop", "torch_loop"):
        row = large["implementations"].get(other)
        out[f"large_best_jax_vs_{other.split('_')[0]}"] = target(
            row and row["time_per_step_median"] / best, 1.0,
            note=f"{other} time / fastest JAX GD time per step, n={large['n']:,}",
            **({"reason": left_out[other]} if other in left_out else {}))
    return out
