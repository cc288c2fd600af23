"""Problem 8: 1D logistic regression Pr(y=1|x) = sig(phi0 + phi1 x), parts (i) to (v), trained jit-compiled.

    python experiments/logreg.py                      # defaults: configs/logreg.yaml
    python experiments/logreg.py optimizer.name=sgd optimizer.lr=0.1 data.seed=3
    python experiments/logreg.py -m optimizer.lr=0.01,0.05,0.2
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.problems import logistic
from gradlab.runner.config import at_least, checked, finite_list, in_range, increasing_pair, one_of, positive
from gradlab.runner.data_io import load_xy_csv, save_xy_csv
from gradlab.runner.plotting import figure
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch
from gradlab.experiments.schemas import LogisticDataConfig, NewtonConfig
from gradlab.problems.training import OPTIMIZERS, first_non_finite_step, make_train


@dataclass
class SigmoidConfig:
    family: list[list[float]] = checked(
        [[0.0, 1.0], [2.0, 1.0], [-2.0, 1.0], [0.0, 3.0], [0.0, 0.4], [0.0, -1.0]],
        lambda pairs: len(pairs) > 0 and all(len(p) == 2 and all(map(np.isfinite, p)) for p in pairs),
        "a non-empty list of finite [phi0, phi1] pairs",
    )
    x_range: list[float] = increasing_pair([-6.0, 6.0])


@dataclass
class DataConfig(LogisticDataConfig):
    path: str | None = None  # a CSV file with columns x,y to use instead of sampling


@dataclass
class OptimizerConfig:
    name: str = one_of(*OPTIMIZERS, default="adam")
    lr: float = positive(0.05)
    momentum: float = in_range(0.0, 1.0, 0.9)


@dataclass
class TrainConfig:
    steps: int = at_least(1, 1000)
    init: list[float] = finite_list([0.0, 0.0], length=2)


@dataclass
class GridConfig:
    phi0_range: list[float] = increasing_pair([-6.0, 6.0])
    phi1_range: list[float] = increasing_pair([-4.0, 10.0])
    resolution: int = at_least(2, 201)


@dataclass
class CheckConfig:
    logits: list[float] = finite_list([-1000.0, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 1000.0])


@dataclass
class Config(BaseConfig):
    sigmoid: SigmoidConfig = dataclasses.field(default_factory=SigmoidConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    newton: NewtonConfig = dataclasses.field(default_factory=NewtonConfig)
    grid: GridConfig = dataclasses.field(default_factory=GridConfig)
    check: CheckConfig = dataclasses.field(default_factory=CheckConfig)


def load_data(cfg: DataConfig) -> tuple[jax.Array, jax.Array]:
    if cfg.path is not None:
        x, y = load_xy_csv(cfg.path, key="data.path", binary_labels=True)
        return jnp.asarray(x), jnp.asarray(y)
    return cfg.sample()


def loss_stability(logit_values: list[float]) -> dict:
    """(ii) The summed loss of one point at logit z, y in {0, 1}, against a plain-Python reference."""
    one = jnp.ones(1)
    worst = 0.0
    for z in logit_values:
        for label in (0.0, 1.0):
            value = float(logistic.bce_loss(jnp.array([z, 0.0]), one, label * one))
            reference = logistic.bce_reference(z, label)
            if not np.isfinite(value):
                raise RunFailed(f"loss is not finite at logit z={z}, y={label:g}")
            worst = max(worst, abs(value - reference) / max(abs(reference), np.finfo(float).tiny))
    return {"max_abs_logit": max(abs(z) for z in logit_values), "max_rel_err": worst, "finite": True}


def main(cfg: Config, ctx: RunContext) -> dict:
    x, y = load_data(cfg.data)
    save_xy_csv(ctx.path("data.csv"), x, y)
    plot_sigmoid_family(ctx, cfg.sigmoid)

    # (iv, v) loss, gradients and Hessians at every grid point, each in one jit-compiled vmap call
    phi0s = jnp.linspace(*cfg.grid.phi0_range, cfg.grid.resolution)
    phi1s = jnp.linspace(*cfg.grid.phi1_range, cfg.grid.resolution)

    @jax.jit
    def grid_maps(x, y):
        def at(phi):
            hess_autodiff = jax.hessian(logistic.bce_loss)(phi, x, y)
            return (
                logistic.bce_loss(phi, x, y),
                jnp.max(jnp.abs(logistic.bce_gradient(phi, x, y) - jax.grad(logistic.bce_loss)(phi, x, y))),
                jnp.max(jnp.abs(logistic.bce_hessian(phi, x, y) - hess_autodiff)),
                logistic.min_eigenvalue(hess_autodiff),
            )

        return logistic.on_grid(at, phi0s, phi1s)

    loss_map, grad_err, hess_err, min_eig_map = grid_maps(x, y)
    row, col = np.unravel_index(int(jnp.argmin(loss_map)), loss_map.shape)
    grid_argmin = jnp.array([phi0s[col], phi1s[row]])

    # training (a): optax in one lax.scan; (b) Newton in one lax.while_loop
    init = jnp.asarray(cfg.train.init, dtype=x.dtype)
    train = jax.jit(make_train(logistic.bce_loss, cfg.optimizer.name, cfg.train.steps))
    fit = train(init, cfg.optimizer.lr, cfg.optimizer.momentum, x, y)
    bad_step = first_non_finite_step(fit.losses, fit.path)
    if bad_step is not None:
        raise RunFailed(f"training produced NaN/inf at step {bad_step} (optimizer {cfg.optimizer.name}, "
                        f"lr={cfg.optimizer.lr:g}); lower optimizer.lr")
    solve = jax.jit(logistic.newton, static_argnames="max_iter")
    newton = solve(init, x, y, cfg.newton.tol, max_iter=cfg.newton.max_iter)
    if not bool(jnp.all(jnp.isfinite(newton.phi))):
        raise RunFailed(f"Newton's method produced NaN/inf within {int(newton.iterations)} iterations")

    spacing = [float(phi0s[1] - phi0s[0]), float(phi1s[1] - phi1s[0])]
    eig_tolerance = 100 * float(jnp.finfo(x.dtype).eps) * float(jnp.max(jnp.abs(min_eig_map)))
    min_eig = float(jnp.min(min_eig_map))

    plot_data_and_fits(ctx, x, y, fit.phi, newton.phi)
    plot_loss_heatmap(ctx, loss_map, cfg.grid, grid_argmin, fit.path, newton.path[: int(newton.iterations) + 1])
    plot_min_eigenvalue(ctx, min_eig_map, cfg.grid, min_eig)
    plot_loss_curve(ctx, fit.losses, float(logistic.bce_loss(newton.phi, x, y)), cfg.optimizer.name)
    ctx.log.info("fit %s, newton %s in %d iterations", fit.phi, newton.phi, int(newton.iterations))
    return {
        "data": {"n": int(x.shape[0]), "source": cfg.data.path or "sampled"},
        "fit": {
            "phi0": fit.phi[0], "phi1": fit.phi[1], "loss": fit.losses[-1],
            "final_loss": logistic.bce_loss(fit.phi, x, y), "grad_norm": fit.grad_norm,
            "distance_to_heatmap_min": jnp.linalg.norm(fit.phi - grid_argmin),
            "distance_to_newton": jnp.linalg.norm(fit.phi - newton.phi),
        },
        "newton": {
            "phi0": newton.phi[0], "phi1": newton.phi[1], "iterations": newton.iterations,
            "grad_norm": newton.grad_norm, "converged": bool(newton.grad_norm < cfg.newton.tol),
            "loss": logistic.bce_loss(newton.phi, x, y),
            "distance_to_heatmap_min": jnp.linalg.norm(newton.phi - grid_argmin),
        },
        "heatmap": {"argmin": grid_argmin, "min_loss": jnp.min(loss_map), "grid_spacing": spacing,
                    "cell_diagonal": float(np.hypot(*spacing))},
        "loss_stability": loss_stability(cfg.check.logits),
        "gradient": {"max_abs_err": jnp.max(grad_err)},
        "hessian": {"max_abs_err": jnp.max(hess_err), "min_eig_over_grid": min_eig,
                    "eig_tolerance": eig_tolerance},
        "convex": min_eig >= -eig_tolerance,
    }


# ---------------------------------------------------------------------------------------------- plots


def plot_sigmoid_family(ctx: RunContext, cfg: SigmoidConfig) -> None:
    xs = jnp.linspace(*cfg.x_range, 400)
    fig, ax = figure()
    for phi0, phi1 in cfg.family:
        (line,) = ax.plot(xs, logistic.sigmoid(phi0 + phi1 * xs), label=f"phi0={phi0:g}, phi1={phi1:g}")
        if phi1 != 0 and cfg.x_range[0] <= -phi0 / phi1 <= cfg.x_range[1]:
            ax.plot([-phi0 / phi1], [0.5], "o", color=line.get_color())
    ax.set(xlabel="x", ylabel="Pr(y=1 | x)", title="phi0 shifts the midpoint -phi0/phi1 (dots); |phi1| sets the "
           "steepness; phi1 < 0 flips the curve")
    ax.legend()
    ctx.save_figure(fig, "sigmoid_family.png", "Problem 8(i): sig(phi0 + phi1 x) for several (phi0, phi1); "
                    "phi0 moves the midpoint -phi0/phi1, |phi1| sets the steepness, a negative phi1 flips it.")


def plot_data_and_fits(ctx: RunContext, x, y, phi_fit, phi_newton) -> None:
    xs = jnp.linspace(jnp.min(x) - 1, jnp.max(x) + 1, 300)
    fig, ax = figure()
    ax.scatter(x, y, c=y, cmap="coolwarm", edgecolor="k", zorder=3, label="data")
    ax.plot(xs, logistic.sigmoid(logistic.logits(phi_fit, xs)), label="optax fit")
    ax.plot(xs, logistic.sigmoid(logistic.logits(phi_newton, xs)), "--", label="Newton")
    ax.set(xlabel="x", ylabel="Pr(y=1 | x)", title="The fitted model separates the two classes")
    ax.legend()
    ctx.save_figure(fig, "data_and_fit.png", "Problem 8(iv): the data and the fitted sigmoid (optax and Newton).")


def plot_loss_heatmap(ctx: RunContext, loss_map, grid: GridConfig, argmin, fit_path, newton_path) -> None:
    fig, ax = figure(width=6.4, height=5.2)
    extent = [*grid.phi0_range, *grid.phi1_range]
    image = ax.imshow(np.log10(np.asarray(loss_map)), origin="lower", extent=extent, aspect="auto")
    fig.colorbar(image, ax=ax, label="log10 L(phi0, phi1)")
    ax.contour(np.asarray(loss_map), levels=20, origin="lower", extent=extent, colors="w", linewidths=0.4)
    ax.plot(fit_path[:, 0], fit_path[:, 1], "r-", lw=1.2, label="optax trajectory")
    ax.plot(newton_path[:, 0], newton_path[:, 1], "o--", color="orange", ms=3, label="Newton iterates")
    ax.plot(*argmin, "w*", ms=12, label="grid minimum")
    ax.set(xlabel="phi0", ylabel="phi1", title="Binary cross-entropy over (phi0, phi1): one bowl, one minimum")
    ax.legend(loc="upper left")
    ctx.save_figure(fig, "loss_heatmap.png", "Problem 8(iv): the summed BCE loss as a heatmap over (phi0, phi1) "
                    "with its grid minimum and both training trajectories.")


def plot_min_eigenvalue(ctx: RunContext, min_eig_map, grid: GridConfig, min_eig: float) -> None:
    fig, ax = figure(width=6.4, height=5.2)
    extent = [*grid.phi0_range, *grid.phi1_range]
    image = ax.imshow(np.log10(np.maximum(np.asarray(min_eig_map), 1e-300)), origin="lower", extent=extent,
                      aspect="auto")
    fig.colorbar(image, ax=ax, label="log10 of the smallest Hessian eigenvalue")
    ax.set(xlabel="phi0", ylabel="phi1", title=f"Smallest Hessian eigenvalue > 0 everywhere (min {min_eig:.2e})")
    ctx.save_figure(fig, "min_eigenvalue_map.png", "Problem 8(v): the smallest eigenvalue of jax.hessian of the "
                    "loss at every grid point; positive everywhere, so the loss is convex on the grid.")


def plot_loss_curve(ctx: RunContext, losses, newton_loss: float, optimizer: str) -> None:
    fig, ax = figure()
    ax.semilogy(np.asarray(losses) - newton_loss + 1e-16, label=f"{optimizer}: L(step) - L(Newton)")
    ax.set(xlabel="step", ylabel="loss above the Newton optimum", title="Training converges to Newton's optimum")
    ax.legend()
    ctx.save_figure(fig, "loss_curve.png", "Training (a): the optax loss curve, measured as the gap to the "
                    "Newton optimum.")


if __name__ == "__main__":
    launch("logreg")
