"""Why deep nets use reverse mode (Problem 10): cost of the gradient by jvp vs vjp as P grows.

python experiments/autodiff_scaling.py                        # defaults: configs/autodiff_scaling.yaml
python experiments/autodiff_scaling.py 'families=[linear]' 'linear.P=[10,100,1000,10000]' budget.seconds=5
python experiments/autodiff_scaling.py -m n_samples=64,1024
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from gradlab.problems import autodiff_cost as cost
from gradlab.bench import autodiff as measure
from gradlab.runner.config import at_least, checked, each, positive
from gradlab.runner.plotting import figure
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch

FAMILIES = ("linear", "mlp")


def _increasing_ints(values, low: int = 1) -> bool:
    ints = all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in values)
    return len(values) > 0 and ints and all(a < b for a, b in zip(values[:-1], values[1:], strict=True))


def _sizes(default: list[int], low: int = 1, *, may_be_empty: bool = False):
    if may_be_empty:  # an empty list skips that part of the experiment
        ok = lambda v: len(v) == 0 or _increasing_ints(v, low)  # noqa: E731
        return checked(default, ok, f"an increasing list of integers >= {low} (empty: skip this part)")
    return checked(default, lambda v: _increasing_ints(v, low), f"a non-empty increasing list of integers >= {low}")


@dataclass
class LinearConfig:
    P: list[int] = _sizes([10, 100, 1000, 10000, 100000])  # weights of the logistic model


@dataclass
class MlpConfig:
    widths: list[int] = _sizes([2, 8, 32, 128, 512])  # hidden width sets P ~ depth * width^2
    depth: int = at_least(1, 2)  # hidden layers
    input_dim: int = at_least(1, 8)


@dataclass
class TimingConfig:
    repeats: int = at_least(5, 7)
    warmup: int = at_least(1, 1)
    min_window_s: float = positive(0.05)  # fast calls are repeated until they span this long
    fit_min_seconds: float = positive(2e-4)  # time slopes fit only calls slower than dispatch overhead


@dataclass
class BudgetConfig:
    seconds: float = positive(2.0)  # predicted seconds for warmup + repeats of one (size, route)
    temp_mib: float = positive(1024.0)  # XLA temporary memory of one compiled function


@dataclass
class GradTolerance:  # max relative difference for two gradients to count as equal, per precision
    float64: float = positive(1e-9)
    float32: float = positive(1e-3)


@dataclass
class MirrorConfig:
    sizes: list[int] = _sizes(
        [1, 16, 256, 4096], may_be_empty=True
    )  # M: outputs of the tall map, inputs of the wide one
    hidden: int = at_least(1, 64)


@dataclass
class MemoryConfig:
    depths: list[int] = _sizes([4, 16, 64, 256], may_be_empty=True)
    width: int = at_least(1, 64)
    n_samples: int = at_least(1, 64)


@dataclass
class Config(BaseConfig):
    seed: int = at_least(0, 0)
    families: list[str] = each(lambda f: f in FAMILIES, f"one of {', '.join(FAMILIES)}", ["linear", "mlp"])
    n_samples: int = at_least(1, 256)  # data points the loss averages over: cost(f) ~ 2 n_samples P
    linear: LinearConfig = dataclasses.field(default_factory=LinearConfig)
    mlp: MlpConfig = dataclasses.field(default_factory=MlpConfig)
    timing: TimingConfig = dataclasses.field(default_factory=TimingConfig)
    budget: BudgetConfig = dataclasses.field(default_factory=BudgetConfig)
    grad_rtol: GradTolerance = dataclasses.field(default_factory=GradTolerance)
    mirror: MirrorConfig = dataclasses.field(default_factory=MirrorConfig)
    memory: MemoryConfig = dataclasses.field(default_factory=MemoryConfig)


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


# --------------------------------------------------------------------------------------------------------
# Plots

_LABELS = {"f": "f alone", "rev": "reverse (grad)", "fwd_batched": "forward, batched (jacfwd)",
           "fwd_sequential": "forward, P jvps in a loop"}  # fmt: skip


def _slope_text(slope) -> str:
    return "n/a" if slope is None else f"{slope:.2f}"


def _plot_scaling(ctx: RunContext, rows: dict, slopes: dict) -> None:
    fig, axes = figure(2, len(rows), width=11.0, height=4.0 * len(rows), squeeze=False)
    for (family, family_rows), ax_pair in zip(rows.items(), axes, strict=True):
        P = [r["P"] for r in family_rows]
        for route in cost.ROUTES:
            s = slopes[family]
            ax_pair[0].loglog(P, [r[measure.FLOPS_KEY[route]] for r in family_rows], "o-",
                              label=f"{_LABELS[route]}: slope {_slope_text(s['flops'][route])}")  # fmt: skip
            times = [(r["P"], r[f"time_{route}"]) for r in family_rows if r[f"time_{route}"] is not None]
            (line,) = ax_pair[1].loglog([p for p, _ in times], [t for _, t in times], "o-",
                                        label=f"{_LABELS[route]}: slope {_slope_text(s['time'][route])}")  # fmt: skip
            skipped = [(r["P"], r["skipped"][route]["predicted_s"]) for r in family_rows
                       if route in r["skipped"] and r["skipped"][route]["predicted_s"]]  # fmt: skip
            if skipped:
                ax_pair[1].loglog([p for p, _ in skipped], [t for _, t in skipped], "o", mfc="none",
                                  color=line.get_color())  # fmt: skip
        ax_pair[0].set(xlabel="parameters P", ylabel="XLA FLOPs",
                       title=f"{family}: forward mode's FLOPs grow ~P x faster than reverse mode's")  # fmt: skip
        ax_pair[1].set(xlabel="parameters P", ylabel="wall time per call (s)",
                       title=f"{family}: wall time (open circles: predicted, skipped by the budget)")  # fmt: skip
        for ax in ax_pair:
            ax.legend(fontsize=7)
    fig.tight_layout()
    ctx.save_figure(
        fig,
        "cost_vs_parameters.png",
        caption="log-log FLOPs and time of f, reverse mode and forward mode against P: the forward-mode slope "
        "exceeds the reverse-mode slope by about 1 (the factor P); fitted slopes in the legends",
    )


def _plot_mirror(ctx: RunContext, mirror: dict) -> None:
    fig, ax = figure()
    for shape, marker in (("tall", "o"), ("wide", "s")):
        for metric, style in (("time", "-"), ("flops", "--")):
            points = [
                (r["outputs"] / r["inputs"], r[f"{metric}_jacfwd"] / r[f"{metric}_jacrev"])
                for r in mirror[shape]
                if r[f"{metric}_jacfwd"] and r[f"{metric}_jacrev"]
            ]
            if points:
                label = f"{shape} (R^{'1 -> R^M' if shape == 'tall' else 'M -> R^1'}), {metric}"
                ax.loglog(*zip(*points, strict=True), marker + style, label=label)
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.axvline(1.0, color="0.5", lw=0.8)
    ax.set(
        xlabel="outputs / inputs of the map",
        ylabel="cost(jacfwd) / cost(jacrev)",
        title="Tall Jacobians favour forward mode, wide ones reverse mode; they cross at outputs = inputs",
    )
    ax.legend()
    ctx.save_figure(
        fig,
        "tall_wide_crossover.png",
        caption="cost ratio jacfwd/jacrev against outputs/inputs: below 1 (forward wins) for a tall Jacobian "
        "R -> R^M, above 1 (reverse wins) for a wide one R^M -> R",
    )


def _plot_memory(ctx: RunContext, memory: dict) -> None:
    fig, ax = figure()
    depths = [r["depth"] for r in memory["rows"]]
    for strategy in cost.CHECKPOINT_STRATEGIES:
        temp = [r[f"temp_bytes_{strategy}"] / r["activation_bytes"] for r in memory["rows"]]
        slope = _slope_text(memory["slopes"][strategy])
        ax.loglog(depths, temp, "o-", label=f"checkpoint: {strategy}, slope {slope}")
    ax.set(
        xlabel="depth D (layers)",
        ylabel="XLA temp memory of grad (in activations N x width)",
        title="Reverse mode stores activations ~D; jax.checkpoint cuts the constant, segments give ~sqrt(D)",
    )
    ax.legend()
    ctx.save_figure(
        fig,
        "memory_vs_depth.png",
        caption="temporary memory of jax.grad against depth: linear without checkpointing, linear with a "
        "smaller constant per layer, ~sqrt(D) with checkpointed segments of sqrt(D) layers",
    )


# --------------------------------------------------------------------------------------------------------


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

    sizes, slopes, ratios = {}, {}, {}
    for family in cfg.families:
        count = len(cfg.linear.P) if family == "linear" else len(cfg.mlp.widths)
        problems = _problems(cfg, family)
        sizes[family] = [
            measure.measure_gradient_routes(p, timer, rtol) for p in _bar(problems, f"{family} sizes", count)
        ]
        slopes[family] = measure.slopes(sizes[family], cfg.timing.fit_min_seconds)
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

    _plot_scaling(ctx, sizes, slopes)
    if cfg.mirror.sizes:
        _plot_mirror(ctx, mirror)
    if cfg.memory.depths:
        _plot_memory(ctx, memory)
    for family in sizes:
        ctx.log.info("%s slopes: flops %s, time %s", family, slopes[family]["flops"], slopes[family]["time"])
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
            "slopes.time": f"fitted over sizes whose time >= {cfg.timing.fit_min_seconds} s",
            "dtype": str(jnp.asarray(0.0).dtype),
            "budget_rule": "predicted = t(previous size) * flops ratio; skipped if predicted * (warmup + "
            "repeats) > budget.seconds or XLA temp > budget.temp_mib",
        },
    }


if __name__ == "__main__":
    launch("autodiff_scaling")
