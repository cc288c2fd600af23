"""Measuring the cost of the gradient routes of `gradlab.problems.autodiff_cost` within a time and memory budget.

Every function is compiled once ahead of time (compile time recorded apart), its XLA FLOPs and temporary
memory read from `cost_analysis()` / `memory_analysis()`, and only then run: warmup, then `repeats` timed
calls with `block_until_ready` (median and spread). Before running, the time is predicted as

    predicted(P) = t(route, previous size) * flops(route, P) / flops(route, previous size)

(or, for a route's first size, the same ratio against f at this size). A size whose predicted time for
warmup + repeats exceeds the budget, or whose temporary memory exceeds the memory budget, is not run: it
is recorded as skipped with the prediction, so no size is dropped silently.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import numpy as np

from gradlab.bench.timing import compile_timed, time_call, xla_cost
from gradlab.problems import autodiff_cost as cost

# The field of a `sizes` row that holds each route's FLOPs (names as the issue lists them).
FLOPS_KEY = {"f": "flops_f", "rev": "flops_rev", "fwd_batched": "flops_fwd", "fwd_sequential": "flops_fwd_sequential"}


@dataclasses.dataclass(frozen=True)
class Budget:
    seconds: float  # the most predicted wall time for warmup + repeats of one (size, route)
    temp_bytes: int  # the most XLA temporary memory one compiled function may ask for
    repeats: int  # at least this many timed calls ...
    warmup: int
    min_window_s: float = 0.0  # ... and enough of them to span this long, so one scheduling hiccup of a
    max_repeats: int = 2000  # busy machine cannot move the median of a fast call


class BudgetedTimer:
    """Compile, read XLA's cost, predict, then run or skip; remembers each key's last measurement."""

    def __init__(self, budget: Budget):
        self.budget = budget
        self.last: dict[str, tuple[float, float]] = {}  # key -> (flops, median seconds)

    def predict(self, key: str, flops: float, reference: tuple[float, float] | None) -> float | None:
        basis = self.last.get(key, reference)
        if basis is None or not basis[0] > 0:
            return None
        return basis[1] * flops / basis[0]

    def _over_time(self, predicted: float | None) -> dict | None:
        calls = self.budget.warmup + self.budget.repeats
        if predicted is None or predicted * calls <= self.budget.seconds:
            return None
        return {
            "reason": "time",
            "predicted_s": predicted,
            "detail": f"predicted {predicted * calls:.3g} s for {calls} calls > budget {self.budget.seconds} s",
        }

    def measure(self, key, fn, args, *, flops=None, reference=None) -> tuple[dict, Any]:
        """({flops, temp_bytes, compile_s, predicted_s, time | skipped}, output or None).

        With `flops` given (a loop, whose XLA count would be wrong) the time budget is checked before
        compiling, so a skipped loop costs no compile; otherwise XLA's own count is read after compiling.
        """
        record: dict[str, Any] = {"flops": flops, "temp_bytes": None, "compile_s": None, "predicted_s": None}
        if flops is not None:
            record["predicted_s"] = self.predict(key, flops, reference)
            if (skip := self._over_time(record["predicted_s"])) is not None:
                return {**record, "skipped": skip}, None
        compiled, record["compile_s"] = compile_timed(fn, *args)
        xla = xla_cost(compiled)
        record["temp_bytes"] = xla["temp_bytes"]
        if flops is None:
            record["flops"] = xla["flops"]
            record["predicted_s"] = self.predict(key, xla["flops"], reference)
            if (skip := self._over_time(record["predicted_s"])) is not None:
                return {**record, "skipped": skip}, None
        if xla["temp_bytes"] > self.budget.temp_bytes:
            record["skipped"] = {
                "reason": "memory",
                "predicted_s": record["predicted_s"],
                "detail": f"XLA temp {xla['temp_bytes'] / 2**20:.1f} MiB > budget "
                f"{self.budget.temp_bytes / 2**20:.1f} MiB",
            }
            return record, None
        first = time_call(compiled, *args, repeats=1, warmup=self.budget.warmup)["median"]
        repeats = max(self.budget.repeats, min(self.budget.max_repeats, math.ceil(self.budget.min_window_s / first)))
        stats = time_call(compiled, *args, repeats=repeats, warmup=0)
        record["time"] = {k: v for k, v in stats.items() if k != "times"}
        self.last[key] = (record["flops"], record["time"]["median"])
        return record, jax.block_until_ready(compiled(*args))


# --------------------------------------------------------------------------------------------------------
# One size of one model family: f and the three gradient routes


def measure_gradient_routes(problem: cost.ScalarLoss, timer: BudgetedTimer, rtol: float) -> dict:
    """One row of `sizes`: FLOPs, time, temp memory of f, rev, fwd_batched, fwd_sequential; grads compared."""
    args = (problem.theta, *problem.data)
    family_routes = cost.routes(problem.loss)
    measured, outputs = {}, {}
    measured["f"], _ = timer.measure(f"{problem.family}/f", family_routes["f"], args)
    f_time = measured["f"].get("time", {}).get("median")
    reference = (measured["f"]["flops"], f_time) if f_time is not None else None
    for route in ("rev", "fwd_batched"):
        key = f"{problem.family}/{route}"
        measured[route], outputs[route] = timer.measure(key, family_routes[route], args, reference=reference)
    # The sequential loop's body is counted once by XLA: its FLOPs are P x the FLOPs of one jvp.
    tangent = np.zeros(problem.theta.shape, problem.theta.dtype)
    jvp_compiled, _ = compile_timed(cost.one_jvp(problem.loss), problem.theta, tangent, *problem.data)
    flops_one_jvp = xla_cost(jvp_compiled)["flops"]
    measured["fwd_sequential"], outputs["fwd_sequential"] = timer.measure(
        f"{problem.family}/fwd_sequential",
        family_routes["fwd_sequential"],
        args,
        flops=problem.P * flops_one_jvp,
        reference=reference,
    )

    row: dict[str, Any] = {"P": problem.P, **problem.describe}
    for route in cost.ROUTES:
        row[FLOPS_KEY[route]] = measured[route]["flops"]
    for route in cost.ROUTES:
        row[f"time_{route}"] = measured[route].get("time", {}).get("median")
    for route in cost.ROUTES:  # temp_bytes_f, temp_bytes_rev, temp_bytes_fwd, temp_bytes_fwd_sequential
        row[FLOPS_KEY[route].replace("flops_", "temp_bytes_")] = measured[route]["temp_bytes"]
    row["flops_one_jvp"] = flops_one_jvp
    row["time_spread"] = {r: measured[r]["time"]["spread"] for r in cost.ROUTES if "time" in measured[r]}
    row["compile_s"] = {r: measured[r]["compile_s"] for r in cost.ROUTES if measured[r]["compile_s"] is not None}
    row["skipped"] = {r: measured[r]["skipped"] for r in cost.ROUTES if "skipped" in measured[r]}
    row.update(compare_gradients(problem, outputs, rtol))
    return row


def compare_gradients(problem: cost.ScalarLoss, outputs: dict, rtol: float) -> dict:
    """Forward-mode gradients against reverse mode, and reverse mode against a closed form where known."""
    reference = outputs.get("rev")
    if reference is None:
        return {"grads_match": None, "grads_compared": [], "grad_max_rel_diff": {}}
    diffs = {
        f"{route}_vs_rev": cost.max_relative_difference(outputs[route], reference)
        for route in ("fwd_batched", "fwd_sequential")
        if outputs.get(route) is not None
    }
    if problem.closed_form_grad is not None:
        closed = problem.closed_form_grad(problem.theta, *problem.data)
        diffs["rev_vs_closed_form"] = cost.max_relative_difference(reference, closed)
    return {
        "grads_match": all(d <= rtol for d in diffs.values()) if diffs else None,
        "grads_compared": sorted(diffs),
        "grad_max_rel_diff": diffs,
    }


# --------------------------------------------------------------------------------------------------------
# Summaries of a family's rows


def slopes(rows: list[dict], fit_min_seconds: float, fit_min_sizes: int, confidence: float) -> dict:
    """Log-log slopes against P of one family's rows.

    FLOPs: over every size. Time: over the sizes whose median time is at least fit_min_seconds (below it a call
    is dispatch overhead, flat in P), and only when there are at least fit_min_sizes of them; each time fit
    carries its standard error and t interval (`time_fit`). `time_slope_difference` is the time slope of the
    P jvps one after another minus that of the one vjp, with its interval: forward mode pays P jvps where reverse
    mode pays one vjp, so the difference is about 1 (as `fwd_minus_rev_flops` is for FLOPs).
    `time_slope_difference_batched` is the same for jacfwd, whose P tangents through every activation also
    leave the cache sooner (its time slope can exceed its FLOP slope).
    """
    P = [r["P"] for r in rows]
    out: dict[str, Any] = {"flops": {}, "time": {}, "time_fit": {}, "time_fit_sizes": {}}
    fits = {}
    for route in cost.ROUTES:
        out["flops"][route] = cost.loglog_slope(P, [r[FLOPS_KEY[route]] for r in rows])
        timed = [(r["P"], r[f"time_{route}"]) for r in rows if (r[f"time_{route}"] or 0.0) >= fit_min_seconds]
        fits[route] = cost.loglog_fit(*zip(*timed, strict=True), confidence) if len(timed) >= fit_min_sizes else None
        out["time"][route] = None if fits[route] is None else fits[route].slope
        out["time_fit"][route] = None if fits[route] is None else dataclasses.asdict(fits[route])
        out["time_fit_sizes"][route] = [p for p, _ in timed]
    out["fwd_minus_rev_flops"] = _difference(out["flops"]["fwd_batched"], out["flops"]["rev"])
    for key, forward in (("time_slope_difference", "fwd_sequential"), ("time_slope_difference_batched", "fwd_batched")):
        both = fits[forward] is not None and fits["rev"] is not None
        difference = cost.slope_difference(fits[forward], fits["rev"], confidence) if both else None
        out[key] = None if difference is None else {**difference, "forward_route": forward, "reverse_route": "rev"}
    return out


def _difference(a, b):
    return None if a is None or b is None else a - b


def cheap_gradient_ratios(rows: list[dict]) -> dict:
    """cost(gradient) / cost(f) per P, in FLOPs and time, for reverse mode and (for contrast) forward mode."""

    def ratio(a, b):
        return a / b if a is not None and b else None

    per_size = [
        {
            "P": r["P"],
            "flops_rev": ratio(r["flops_rev"], r["flops_f"]),
            "time_rev": ratio(r["time_rev"], r["time_f"]),
            "flops_fwd": ratio(r["flops_fwd"], r["flops_f"]),
            "time_fwd_batched": ratio(r["time_fwd_batched"], r["time_f"]),
        }
        for r in rows
    ]
    rev_flops = [s["flops_rev"] for s in per_size if s["flops_rev"] is not None]
    rev_time = [s["time_rev"] for s in per_size if s["time_rev"] is not None]
    return {
        "per_size": per_size,
        "flops_rev_range": [min(rev_flops), max(rev_flops)] if rev_flops else None,
        "time_rev_median": float(np.median(rev_time)) if rev_time else None,
        "time_rev_range": [min(rev_time), max(rev_time)] if rev_time else None,
    }


# --------------------------------------------------------------------------------------------------------
# Mirror case and memory against depth


def measure_jacobians(shape: str, M: int, hidden: int, rng, timer: BudgetedTimer, rtol: float) -> dict:
    """jacfwd vs jacrev of g: R^1 -> R^M ("tall") or R^M -> R^1 ("wide")."""
    n_in, n_out = (1, M) if shape == "tall" else (M, 1)
    x, A, B = cost.two_layer_problem(n_in, n_out, hidden, rng)
    row: dict[str, Any] = {"M": M, "inputs": n_in, "outputs": n_out}
    jacobians = {}
    for mode, transform in (("jacfwd", jax.jacfwd), ("jacrev", jax.jacrev)):
        record, jacobians[mode] = timer.measure(f"{shape}/{mode}", transform(cost.two_layer_map), (x, A, B))
        row[f"flops_{mode}"] = record["flops"]
        row[f"time_{mode}"] = record.get("time", {}).get("median")
        if "skipped" in record:
            row.setdefault("skipped", {})[mode] = record["skipped"]
    if jacobians["jacfwd"] is not None and jacobians["jacrev"] is not None:
        row["jacobian_max_rel_diff"] = cost.max_relative_difference(jacobians["jacfwd"], jacobians["jacrev"])
        row["jacobians_match"] = row["jacobian_max_rel_diff"] <= rtol
    else:
        row["jacobians_match"] = None
    return row


def measure_depth_memory(depth: int, width: int, n_samples: int, rng, timer, rtol: float) -> dict:
    """Temporary memory (and time) of jax.grad of a depth-D tanh net under each checkpoint strategy."""
    Ws, X = cost.deep_problem(depth, width, n_samples, rng)
    row: dict[str, Any] = {"depth": depth, "activation_bytes": X.size * X.dtype.itemsize}
    grads = {}
    for strategy in cost.CHECKPOINT_STRATEGIES:
        record, grads[strategy] = timer.measure(f"depth/{strategy}", jax.grad(cost.deep_loss(strategy)), (Ws, X))
        row[f"temp_bytes_{strategy}"] = record["temp_bytes"]
        row[f"time_{strategy}"] = record.get("time", {}).get("median")
        if "skipped" in record:
            row.setdefault("skipped", {})[strategy] = record["skipped"]
    ran = [g for g in grads.values() if g is not None]
    diffs = [cost.max_relative_difference(g, ran[0]) for g in ran[1:]]
    row["grads_match"] = all(d <= rtol for d in diffs) if diffs else None
    return row
