"""Why deep nets use reverse mode (Problem 10): cost of the gradient by jvp vs vjp as P grows.

python experiments/autodiff_scaling.py                        # defaults: configs/autodiff_scaling.yaml
python experiments/autodiff_scaling.py 'families=[linear]' 'linear.P=[10,100,1000,10000]' budget.seconds=5
python experiments/autodiff_scaling.py -m n_samples=64,1024
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from gradlab.bench import autodiff as measure
from gradlab.experiments import memory as estimates
from gradlab.problems import autodiff_cost as cost
from gradlab.runner.config import at_least, checked, each, in_range, positive, seed
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch

FAMILIES = ("linear", "mlp")


def _increasing_ints(values, low: int = 1) -> bool:
    ints = all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in values)
    return len(values) > 0 and ints and all(a < b for a, b in zip(values[:-1], values[1:], strict=True))


def _sizes(low: int = 1, *, may_be_empty: bool = False):
    if may_be_empty:  # an empty list skips that part of the experiment
        ok = lambda v: len(v) == 0 or _increasing_ints(v, low)  # noqa: E731
        return checked(ok, f"an increasing list of integers >= {low} (empty: skip this part)")
    return checked(lambda v: _increasing_ints(v, low), f"a non-empty increasing list of integers >= {low}")


@dataclass
class LinearConfig:
    P: list[int] = _sizes()  # weights of the logistic model


@dataclass
class MlpConfig:
    widths: list[int] = _sizes()  # hidden width sets P ~ depth * width^2
    depth: int = at_least(1)  # hidden layers
    input_dim: int = at_least(1)


@dataclass
class TimingConfig:
    repeats: int = at_least(5)
    warmup: int = in_range(1, 100, include_high=True)  # untimed calls before the timed ones
    min_window_s: float = positive()  # fast calls are repeated until they span this long
    fit_min_seconds: float = positive()  # time slopes fit only calls slower than dispatch overhead
    fit_min_sizes: int = at_least(3)  # ... and only with at least this many such sizes
    confidence: float = in_range(0.5, 1.0)  # of each time slope's t interval


@dataclass
class BudgetConfig:
    seconds: float = positive()  # predicted seconds for warmup + repeats of one (size, route)
    temp_mib: float = positive()  # XLA temporary memory of one compiled function


@dataclass
class GradTolerance:  # max relative difference for two gradients to count as equal, per precision
    float64: float = positive()
    float32: float = positive()


@dataclass
class MirrorConfig:
    sizes: list[int] = _sizes(may_be_empty=True)  # M: outputs of the tall map, inputs of the wide one
    hidden: int = at_least(1)


@dataclass
class MemoryConfig:
    depths: list[int] = _sizes(may_be_empty=True)
    width: int = at_least(1)
    n_samples: int = at_least(1)


@dataclass
class Config(BaseConfig):
    seed: int = seed()
    families: list[str] = each(lambda f: f in FAMILIES, f"one of {', '.join(FAMILIES)}")
    n_samples: int = at_least(1)  # data points the loss averages over: cost(f) ~ 2 n_samples P
    linear: LinearConfig
    mlp: MlpConfig
    timing: TimingConfig
    budget: BudgetConfig
    grad_rtol: GradTolerance
    mirror: MirrorConfig
    memory: MemoryConfig


def memory_estimate(cfg: Config) -> dict[str, float]:
    """Bytes by the keys that size them: the data of the largest size of each part, drawn in float64 with numpy and
    copied to the device (measured: linear P = 5e5 x 256 samples, 1.0 GB of inputs, peaks 1.9 GB above the
    interpreter's own); the XLA temporaries of one compiled function, which budget.temp_mib caps (a function over
    it is skipped, not run); the MLP's traced and compiled routes, one Python-unrolled layer each (measured ~4.6 MB
    a layer at depth 100 and 300); the per-call times of every timed function (timing.repeats)."""
    copies = 8 + estimates.word(cfg.precision)  # the numpy draw and its device copy
    parts = [{"budget.temp_mib": cfg.budget.temp_mib * 2**20, "timing.repeats": cfg.timing.repeats * 128.0}]
    if "linear" in cfg.families:
        P = max(cfg.linear.P)
        parts.append(estimates.split(cfg.n_samples * P * copies, {"linear.P": P, "n_samples": cfg.n_samples}))
    if "mlp" in cfg.families:
        m = cfg.mlp
        width = max(m.widths)
        # P of cost.mlp_parameter_count in closed form (that one lists every layer): input, hidden, output layers
        P = (m.input_dim + 1) * width + (m.depth - 1) * (width + 1) * width + width + 1
        parts.append(estimates.split(2 * P * copies, {"mlp.widths": width**2, "mlp.depth": m.depth}))
        parts.append(estimates.split(2 * cfg.n_samples * m.input_dim * copies,
                                     {"n_samples": cfg.n_samples, "mlp.input_dim": m.input_dim}))
        parts.append({"mlp.depth": m.depth * 5e6})
    if cfg.mirror.sizes:
        M = max(cfg.mirror.sizes)
        parts.append(estimates.split(4 * M * cfg.mirror.hidden * copies, {"mirror.sizes": M, "mirror.hidden":
                                                                           cfg.mirror.hidden}))
    if cfg.memory.depths:
        mem = cfg.memory
        D = max(mem.depths)
        parts.append(estimates.split(2 * D * mem.width**2 * copies, {"memory.depths": D, "memory.width": mem.width**2}))
        parts.append(estimates.split(2 * mem.n_samples * mem.width * copies,
                                     {"memory.n_samples": mem.n_samples, "memory.width": mem.width}))
    return estimates.combined(*parts)


def _rng(cfg: Config, *stream: int) -> np.random.Generator:
    """An independent numpy stream per (part, size), all derived from the one seed."""
    return np.random.default_rng([cfg.seed, *stream])


def _problems(cfg: Config, family: str):
    """The family's problems in size order, built lazily (the data of the largest size is the largest)."""
    if family == "linear":
        for i, P in enumerate(cfg.linear.P):
            yield cost.linear_family(P, cfg.n_samples, _rng(cfg, 0, i))
    else:
        m = cfg.mlp
        for i, width in enumerate(m.widths):
            yield cost.mlp_family(width, m.depth, m.input_dim, cfg.n_samples, _rng(cfg, 1, i))


def _bar(items, desc: str, total: int):
    return tqdm(items, desc=desc, total=total, file=sys.stderr, leave=False, dynamic_ncols=True)


def main(cfg: Config, ctx: RunContext) -> dict:
    rtol = getattr(cfg.grad_rtol, cfg.precision)
    budget = measure.Budget(
        seconds=cfg.budget.seconds,
        temp_bytes=int(cfg.budget.temp_mib * 2**20),
        repeats=cfg.timing.repeats,
        warmup=cfg.timing.warmup,
        min_window_s=cfg.timing.min_window_s,
    )
    timer = measure.BudgetedTimer(budget)
    fit = cfg.timing

    sizes, slopes, ratios = {}, {}, {}
    for family in cfg.families:
        count = len(cfg.linear.P) if family == "linear" else len(cfg.mlp.widths)
        problems = _problems(cfg, family)
        sizes[family] = [
            measure.measure_gradient_routes(p, timer, rtol) for p in _bar(problems, f"{family} sizes", count)
        ]
        slopes[family] = measure.slopes(sizes[family], fit.fit_min_seconds, fit.fit_min_sizes, fit.confidence)
        ratios[family] = measure.cheap_gradient_ratios(sizes[family])

    mirror = {
        shape: [
            measure.measure_jacobians(shape, M, cfg.mirror.hidden, _rng(cfg, 2 + s, M), timer, rtol)
            for M in _bar(cfg.mirror.sizes, f"{shape} Jacobians", len(cfg.mirror.sizes))
        ]
        for s, shape in enumerate(("tall", "wide"))
    }
    mem = cfg.memory
    depth_rows = [
        measure.measure_depth_memory(d, mem.width, mem.n_samples, _rng(cfg, 4, d), timer, rtol)
        for d in _bar(mem.depths, "depths", len(mem.depths))
    ]
    memory = {
        "rows": depth_rows,
        "slopes": {
            s: cost.loglog_slope(mem.depths, [r[f"temp_bytes_{s}"] for r in depth_rows])
            for s in cost.CHECKPOINT_STRATEGIES
        },
    }

    skipped = [
        {"family": family, "P": row["P"], "route": route, **info}
        for family, rows in sizes.items()
        for row in rows
        for route, info in row["skipped"].items()
    ]
    checks = [row["grads_match"] for rows in sizes.values() for row in rows]
    checks += [row["jacobians_match"] for rows in mirror.values() for row in rows]
    checks += [row["grads_match"] for row in depth_rows]
    all_match = all(c is not False for c in checks)

    for family in sizes:
        ctx.keep(**scaling_arrays(family, sizes[family], slopes[family]))
        ctx.log.info("%s slopes: flops %s, time %s", family, slopes[family]["flops"], slopes[family]["time"])
    ctx.keep(routes=np.array(cost.ROUTES), **mirror_arrays(mirror), **memory_arrays(mem.depths, memory))
    if not all_match:
        bad = [
            (f, r["P"], r["grad_max_rel_diff"]) for f, rows in sizes.items() for r in rows if r["grads_match"] is False
        ]
        raise RunFailed(f"gradient routes disagree beyond rtol={rtol}: {bad or 'see mirror/depth checks'}")
    return {
        "sizes": sizes,
        "slopes": slopes,
        "cheap_gradient_ratio": ratios,
        "mirror": mirror,
        "memory_vs_depth": memory,
        "skipped": skipped,
        "all_grads_match": all_match,
        "grad_rtol_used": rtol,
        "notes": {
            "flops_fwd_sequential": "P x XLA FLOPs of one jvp (XLA counts a loop body once)",
            "time": "median seconds per call; time_spread is the interquartile range",
            "slopes.time": f"fitted over the sizes whose time >= {fit.fit_min_seconds} s (slopes.time_fit_sizes), "
            f"only with at least {fit.fit_min_sizes} of them; slopes.time_fit: standard error and "
            f"{fit.confidence:.0%} t interval of each slope",
            "slopes.time_slope_difference": "time slope of fwd_sequential (P jvps) minus that of rev (one vjp), "
            "standard error sqrt(se_fwd^2 + se_rev^2), t interval with Welch-Satterthwaite degrees of freedom; "
            "time_slope_difference_batched: the same for fwd_batched (jacfwd)",
            "dtype": str(jnp.asarray(0.0).dtype),
            "budget_rule": "predicted = t(previous size) * flops ratio; skipped if predicted * (warmup + "
            "repeats) > budget.seconds or XLA temp > budget.temp_mib",
        },
    }


# --------------------------------------------------------------------------------------------------------
# The arrays behind the figures (gradlab.figures.autodiff_scaling): flat names, NaN where nothing was measured


def _nan(value) -> float:
    return np.nan if value is None else value


def scaling_arrays(family: str, rows: list[dict], slopes: dict) -> dict[str, np.ndarray]:
    """Per family, arrays over (size, route) in cost.ROUTES order: FLOPs, time, predicted time of a skipped
    call, which sizes the time fit used, and per route the FLOP slope and the time fit."""
    fits = [slopes["time_fit"][route] or {} for route in cost.ROUTES]
    return {
        f"{family}_P": np.array([r["P"] for r in rows]),
        f"{family}_flops": np.array([[r[measure.FLOPS_KEY[route]] for route in cost.ROUTES] for r in rows]),
        f"{family}_time": np.array([[_nan(r[f"time_{route}"]) for route in cost.ROUTES] for r in rows]),
        f"{family}_predicted": np.array(
            [[_nan(r["skipped"].get(route, {}).get("predicted_s")) for route in cost.ROUTES] for r in rows]
        ),
        f"{family}_time_fitted": np.array(
            [[r["P"] in slopes["time_fit_sizes"][route] and bool(fits[i]) for i, route in enumerate(cost.ROUTES)]
             for r in rows]  # fmt: skip
        ),
        f"{family}_flops_slope": np.array([_nan(slopes["flops"][route]) for route in cost.ROUTES]),
        f"{family}_time_slope": np.array([_nan(f.get("slope")) for f in fits]),
        f"{family}_time_intercept": np.array([_nan(f.get("intercept")) for f in fits]),
        f"{family}_time_interval": np.array([f.get("interval") or (np.nan, np.nan) for f in fits]),
        **{f"{family}_{key}": _value_and_interval(slopes[key])
           for key in ("time_slope_difference", "time_slope_difference_batched")},  # fmt: skip
    }


def _value_and_interval(difference: dict | None) -> np.ndarray:
    return np.array([difference["value"], *difference["interval"]] if difference else [np.nan] * 3)


def mirror_arrays(mirror: dict) -> dict[str, np.ndarray]:
    """Per shape (tall, wide): outputs / inputs, and cost(jacfwd) / cost(jacrev) in time and in FLOPs."""

    def ratio(row, metric):
        fwd, rev = row[f"{metric}_jacfwd"], row[f"{metric}_jacrev"]
        return fwd / rev if fwd and rev else np.nan

    arrays = {}
    for shape, rows in mirror.items():
        arrays[f"mirror_{shape}_shape_ratio"] = np.array([r["outputs"] / r["inputs"] for r in rows])
        for metric in ("time", "flops"):
            arrays[f"mirror_{shape}_{metric}_ratio"] = np.array([ratio(r, metric) for r in rows])
    return arrays


def memory_arrays(depths: list[int], memory: dict) -> dict[str, np.ndarray]:
    """XLA temp memory of jax.grad per (depth, checkpoint strategy), in activations (n_samples x width)."""
    rows = memory["rows"]
    return {
        "memory_depths": np.array(depths),
        "memory_strategies": np.array(cost.CHECKPOINT_STRATEGIES),
        "memory_activations": np.array(
            [[r[f"temp_bytes_{s}"] / r["activation_bytes"] for s in cost.CHECKPOINT_STRATEGIES] for r in rows]
        ).reshape(len(rows), len(cost.CHECKPOINT_STRATEGIES)),
        "memory_slopes": np.array([_nan(memory["slopes"][s]) for s in cost.CHECKPOINT_STRATEGIES]),
    }


if __name__ == "__main__":
    launch("autodiff_scaling")
