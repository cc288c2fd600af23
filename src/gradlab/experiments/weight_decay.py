"""Problem 3: weight decay phi <- (1 - lambda) phi - alpha dL/dphi is gradient descent on
L~ = L + lambda/(2 alpha) sum phi_k^2 for SGD (and SGD with coupled momentum), but not for Adam (AdamW).

    python experiments/weight_decay.py                                  # logistic regression of Problem 8
    python experiments/weight_decay.py model=least_squares alpha=0.01
    python experiments/weight_decay.py -m alpha=0.01,0.02,0.05 lam=0.001,0.01
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.problems import regularization as reg
from gradlab.runner.config import at_least, finite_list, in_range, one_of, positive
from gradlab.problems.linreg import least_squares_loss
from gradlab.problems.logistic import bce_loss
from gradlab.problems.map_l2 import newton_minimize
from gradlab.runner.plotting import figure
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch
from gradlab.experiments.schemas import LinearDataConfig, LogisticDataConfig


@dataclasses.dataclass
class AdamConfig:
    b1: float = in_range(0.0, 1.0, 0.9)
    b2: float = in_range(0.0, 1.0, 0.999)
    eps: float = positive(1e-8)


@dataclasses.dataclass
class Config(BaseConfig):
    alpha: float = positive(0.02)  # learning rate
    lam: float = in_range(0.0, 1.0, 0.004)  # decay rate lambda: phi <- (1 - lambda) phi - alpha dL/dphi
    steps: int = at_least(1, 300)
    model: str = one_of("logistic", "least_squares", default="logistic")
    init: list[float] = finite_list([-2.0, 2.5], length=2)
    momentum: float = in_range(0.0, 1.0, 0.9)
    adam: AdamConfig = dataclasses.field(default_factory=AdamConfig)
    logistic: LogisticDataConfig = dataclasses.field(default_factory=LogisticDataConfig)
    least_squares: LinearDataConfig = dataclasses.field(default_factory=LinearDataConfig)
    # two trajectories "agree to round-off" when they differ by at most this many machine epsilons
    # times the largest |phi| they reach
    roundoff_ulps: float = positive(1000.0)
    newton_tol: float = positive(1e-12)  # gradient tolerance for the minimizer of L~
    newton_max_iter: int = at_least(1, 100)
    contour_grid: int = at_least(10, 121)


def make_loss(cfg: Config):
    """The unregularized loss L[phi] of the configured model and data."""
    if cfg.model == "logistic":
        x, y = cfg.logistic.sample()
        return lambda phi: bce_loss(phi, x, y)
    x, y = cfg.least_squares.sample()
    return lambda phi: least_squares_loss(phi, x, y)


LABELS = {
    "sgd_manual": "by hand: (1-λ)φ - α∇L",
    "sgd_l2": "optax.sgd on L~",
    "sgd_optax_decay": "add_decayed_weights(λ/α) + sgd on L",
    "momentum_l2": "sgd(momentum) on L~",
    "momentum_decay": "add_decayed_weights + sgd(momentum) on L",
    "momentum_decoupled": "trace → add_decayed_weights → lr (SGDW)",
    "adam_l2": "adam on L~",
    "adamw": "adamw(weight_decay=λ/α) on L",
}
PANELS = {
    "SGD: all three coincide": ("sgd_l2", "sgd_manual", "sgd_optax_decay"),
    "momentum: coupled decay = L2, decoupled differs": (
        "momentum_l2",
        "momentum_decay",
        "momentum_decoupled",
    ),
    "Adam: AdamW ≠ Adam on L~": ("adam_l2", "adamw"),
}
STYLES = ("-", "--", ":")


def plot_trajectories(ctx: RunContext, penalized, runs: dict, minimizer: np.ndarray, grid_points: int) -> None:
    points = np.concatenate([np.asarray(path) for path in runs.values()] + [minimizer[None]])
    low, high = points.min(axis=0), points.max(axis=0)
    pad = 0.15 * np.maximum(high - low, 1e-3)
    phi0 = jnp.linspace(low[0] - pad[0], high[0] + pad[0], grid_points)
    phi1 = jnp.linspace(low[1] - pad[1], high[1] + pad[1], grid_points)
    grid = jnp.stack(jnp.meshgrid(phi0, phi1), axis=-1)
    values = np.asarray(jax.jit(jax.vmap(jax.vmap(penalized)))(grid))

    fig, axes = figure(ncols=3, width=16, height=5)
    for ax, (title, names) in zip(axes, PANELS.items(), strict=True):
        contours = ax.contour(np.asarray(phi0), np.asarray(phi1), values, levels=25, cmap="viridis", alpha=0.6)
        ax.clabel(contours, fontsize=6)
        for name, style in zip(names, STYLES, strict=False):
            path = np.asarray(runs[name])
            ax.plot(path[:, 0], path[:, 1], style, lw=1.6, label=LABELS[name])
        ax.plot(*np.asarray(runs["sgd_l2"])[0], "ko", label="start")
        ax.plot(*minimizer, "r*", ms=12, label="minimizer of L~")
        ax.set(title=title, xlabel="φ0 (intercept)", ylabel="φ1 (slope)")
        ax.legend(loc="best")
    fig.suptitle("Weight decay = gradient descent on L~ = L + λ/(2α)Σφ² for SGD, not for Adam (contours: L~)")
    ctx.save_figure(
        fig,
        "trajectories_over_loss.png",
        caption="SGD by hand, optax.sgd on L~ and add_decayed_weights+sgd on L trace the same path, as do "
        "coupled momentum and momentum on L~; decoupled momentum (SGDW) and AdamW leave the L2 path.",
    )


def plot_differences(ctx: RunContext, differences: dict, eps: float) -> None:
    # identical steps (difference exactly 0, e.g. the shared start) would vanish on a log axis: draw them
    # at a floor far below machine epsilon and say so in the legend
    floor = eps * 1e-3
    fig, ax = figure(width=8, height=5)
    for (group, _, run, reference), diff in differences.items():
        diff = np.asarray(diff)
        ax.semilogy(np.maximum(diff, floor), lw=1.4, label=f"{group}: {LABELS[run]} vs {LABELS[reference]}")
    ax.axhline(eps, color="k", ls="--", lw=0.8, label=f"machine epsilon ({eps:.1e})")
    ax.axhline(floor, color="gray", ls=":", lw=0.8, label="exactly 0 (drawn at this floor)")
    ax.set(
        title="SGD with weight decay stays on the L2 path to round-off; AdamW and SGDW leave it",
        xlabel="step t",
        ylabel="max_k |φ_k(t) − φ_k,L2(t)|",
    )
    ax.legend(loc="center right")
    ctx.save_figure(
        fig,
        "per_step_difference.png",
        caption="Per-step max |difference| to the matching L2 run: SGD and coupled momentum stay at the "
        "machine-epsilon scale, AdamW and decoupled momentum (SGDW) leave it by orders of magnitude.",
    )


def main(cfg: Config, ctx: RunContext) -> dict:
    loss = make_loss(cfg)
    phi_init = jnp.asarray(cfg.init, dtype=float)
    penalized = reg.regularized_loss(loss, cfg.lam, cfg.alpha)
    runs = jax.jit(
        lambda phi: reg.weight_decay_runs(
            loss, phi, cfg.alpha, cfg.lam, cfg.steps, cfg.momentum, cfg.adam.b1, cfg.adam.b2, cfg.adam.eps
        )
    )(phi_init)
    for name, path in runs.items():
        finite = np.isfinite(np.asarray(path)).all(axis=1)
        if not finite.all():
            raise RunFailed(
                f"run {name} diverged (non-finite phi at step {int(np.argmin(finite))}) with "
                f"alpha={cfg.alpha}, lam={cfg.lam}, model={cfg.model}: lower alpha"
            )

    eps = float(jnp.finfo(phi_init.dtype).eps)
    scale = max(1.0, float(max(jnp.max(jnp.abs(path)) for path in runs.values())))
    tolerance = cfg.roundoff_ulps * eps * scale
    minimum = jax.jit(lambda phi: newton_minimize(penalized, phi, cfg.newton_tol, cfg.newton_max_iter))(phi_init)
    minimizer = np.asarray(minimum["phi"])

    results: dict = {
        "optax_weight_decay": reg.optax_weight_decay(cfg.lam, cfg.alpha),
        "mapping": reg.weight_decay_mapping(cfg.lam, cfg.alpha),
        "machine_epsilon": eps,
        "roundoff_tolerance": tolerance,
        "penalty_grad_max_abs_err": reg.penalty_gradient_error(
            jnp.concatenate(list(runs.values())), cfg.lam, cfg.alpha
        ),
        "minimizer_l2": {
            "phi": minimizer,
            "grad_inf_norm": minimum["grad_inf_norm"],
            "converged": minimum["converged"],
        },
        "sgd": {},
        "momentum": {},
        "adam": {},
    }
    differences = {}
    for comparison in reg.COMPARISONS:
        group, metric, run, reference = comparison
        differences[comparison] = reg.per_step_difference(runs[run], runs[reference])
        worst = float(jnp.max(differences[comparison]))
        results[group][metric] = worst
        results[group][metric.replace("max_abs_diff", "within_roundoff")] = worst <= tolerance
    for name, path in runs.items():
        group, _, label = name.partition("_")
        group = {"adamw": "adam"}.get(name, group)
        final = path[-1]
        results[group].setdefault("final_params", {})[label or name] = final
        results[group].setdefault("final_distance_to_l2_minimizer", {})[label or name] = float(
            jnp.max(jnp.abs(final - minimizer))
        )
    ctx.log.info(
        "max |diff| sgd manual/l2 %.3g, sgd decay/l2 %.3g, momentum %.3g, adamw/adam-L2 %.3g",
        results["sgd"]["max_abs_diff_manual_vs_l2"],
        results["sgd"]["max_abs_diff_optax_decay_vs_l2"],
        results["momentum"]["max_abs_diff_decay_vs_l2"],
        results["adam"]["max_abs_diff_adamw_vs_l2"],
    )

    plot_trajectories(ctx, penalized, runs, minimizer, cfg.contour_grid)
    plot_differences(ctx, differences, eps)
    return results


if __name__ == "__main__":
    launch("weight_decay")
