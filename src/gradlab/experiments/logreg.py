"""Problem 8: 1D logistic regression Pr(y=1|x) = sig(phi0 + phi1 x), parts (i) to (v), trained jit-compiled.

    python experiments/logreg.py                      # defaults: configs/logreg.yaml
    python experiments/logreg.py optimizer.name=sgd optimizer.lr=0.1 data.seed=3
    python experiments/logreg.py -m optimizer.lr=0.01,0.05,0.2
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.experiments import memory
from gradlab.experiments.schemas import LogisticDataConfig, NewtonConfig
from gradlab.problems import logistic
from gradlab.problems.numerics import max_rel_error
from gradlab.problems.training import OPTIMIZERS, first_non_finite_step, make_train
from gradlab.runner.config import (
    ConfigError,
    at_least,
    checked,
    finite_list,
    in_range,
    increasing_pair,
    one_of,
    positive,
)
from gradlab.runner.data_io import csv_parse_bytes, csv_rows_bound, load_xy_csv, save_xy_csv
from gradlab.runner.plotting import thinned_steps
from gradlab.runner.records import atomic_open
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch


@dataclass
class SigmoidConfig:
    family: list[list[float]] = checked(
        lambda pairs: len(pairs) > 0 and all(len(p) == 2 and all(map(np.isfinite, p)) for p in pairs),
        "a non-empty list of finite [phi0, phi1] pairs",
    )
    x_range: list[float] = increasing_pair()


@dataclass
class DataConfig(LogisticDataConfig):
    path: str | None  # a CSV file with columns x,y to use instead of sampling


@dataclass
class OptimizerConfig:
    name: str = one_of(*OPTIMIZERS)
    lr: float = positive()
    momentum: float = in_range(0.0, 1.0)


@dataclass
class TrainConfig:
    steps: int = at_least(1)
    init: list[float] = finite_list(length=2)


@dataclass
class GridConfig:
    phi0_range: list[float] = increasing_pair()
    phi1_range: list[float] = increasing_pair()
    resolution: int = at_least(2)


@dataclass
class CheckConfig:
    logits: list[float] = finite_list()


@dataclass
class Config(BaseConfig):
    sigmoid: SigmoidConfig
    data: DataConfig
    optimizer: OptimizerConfig
    train: TrainConfig
    newton: NewtonConfig
    grid: GridConfig
    check: CheckConfig


def load_data(cfg: DataConfig) -> tuple[jax.Array, jax.Array]:
    if cfg.path is not None:
        x, y = load_xy_csv(cfg.path, key="data.path", binary_labels=True)
        return jnp.asarray(x), jnp.asarray(y)
    return cfg.sample()


def loss_stability(logit_values: list[float]) -> dict:
    """(ii) The summed loss of one point at logit z, y in {0, 1}, against a plain-Python reference."""
    one = jnp.ones(1)
    at = jax.vmap(jax.vmap(lambda z, label: logistic.bce_loss(jnp.stack([z, 0.0]), one, label * one),
                           in_axes=(None, 0)), in_axes=(0, None))  # [i, j]: logit i, label j
    values = np.asarray(jax.jit(at)(jnp.asarray(logit_values), jnp.array([0.0, 1.0])))
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        i, label = bad[0]
        raise RunFailed(f"loss is not finite at logit z={logit_values[i]}, y={label}")
    references = np.array([[logistic.bce_reference(z, label) for label in (0.0, 1.0)] for z in logit_values])
    # in the run's precision: a loss below its smallest normal number (e^-100 in float32) has no relative precision
    # there and is skipped, as max_rel_error skips it (unless the route returns a normal number for it)
    worst = float(max_rel_error(values, references.astype(values.dtype)))
    # 8 eps of the run's precision: one exp, one log1p, one add per route, each within an ulp
    return {"max_abs_logit": max(abs(z) for z in logit_values), "max_rel_err": worst, "finite": True,
            "tolerance": 8 * float(np.finfo(values.dtype).eps)}


# the grid's vmapped loss/gradient/Hessian routes hold ~18 data-sized words per grid point at their peak (measured:
# a 1e6-row CSV with 25 and 81 grid points peaked at 3.9 and 11.8 GB resident: 141 bytes a point and row, float64)
GRID_WORDS_PER_POINT_AND_ROW = 18


def memory_estimate(cfg: Config) -> dict[str, float]:
    """Bytes of the largest arrays, by the config key that sizes them (checked before any array exists).

    A CSV (`data.path`) is sized from the file before it is parsed: its line count bounds the rows, its bytes the
    reading; the grid's data-sized arrays (resolution^2 x n) are shared between `grid.resolution` and `data.path`
    in proportion to the log of each factor (`memory.split`), so the error names what made them large."""
    word = memory.word(cfg.precision)
    grid_points = cfg.grid.resolution**2
    if cfg.data.path is None:
        n = 2 * cfg.data.n_per_class
        data = {"grid.resolution": grid_points * n * word * GRID_WORDS_PER_POINT_AND_ROW,
                "data.n_per_class": n * word * 16}
    else:
        n = csv_rows_bound(cfg.data.path)
        data = memory.combined(
            memory.split(grid_points * max(n, 1) * word * GRID_WORDS_PER_POINT_AND_ROW,
                         {"grid.resolution": grid_points, "data.path": n}),
            {"data.path": n * word * 16 + csv_parse_bytes(cfg.data.path)})
    return memory.combined(data, {  # vmapped loss/grad/Hessian over the data at every grid point; the data
        "train.steps": cfg.train.steps * 3 * word * 3,  # path and losses, on device, on host and in plot_data.npz
        "newton.max_iter": cfg.newton.max_iter * 2 * word,
    })


def main(cfg: Config, ctx: RunContext) -> dict:
    x, y = load_data(cfg.data)
    ctx.save_later("data.csv", lambda path: save_xy_csv(path, x, y))  # after the numbers: as large as the data
    no_optimum = logistic.separation(x, y)
    if no_optimum:
        ctx.warn(f"maximum-likelihood estimate does not exist: {no_optimum}; the fits stop where the "
                 "gradient falls below tolerance, not at an optimum")

    check_data_magnitude(cfg.data, np.asarray(x))
    init = jnp.asarray(cfg.train.init, dtype=x.dtype)
    check_finite_at(init, x, y, "train.init", cfg.train.init, "a starting point where the loss and its gradient are "
                    f"finite with this data in {cfg.precision}")

    # (iv, v) loss, gradients and Hessians at every grid point, in one jit-compiled vmap call
    maps = grid_maps(x, y, tuple(cfg.grid.phi0_range), tuple(cfg.grid.phi1_range), cfg.grid.resolution)
    check_grid_finite(cfg, maps)

    # training (a): optax in one lax.scan; (b) Newton in one lax.while_loop
    train = jax.jit(make_train(logistic.bce_loss, cfg.optimizer.name, cfg.train.steps))
    fit = train(init, cfg.optimizer.lr, cfg.optimizer.momentum, x, y)
    bad_step = first_non_finite_step(fit.losses, fit.path)
    if bad_step is not None:
        raise RunFailed(f"training produced NaN/inf at step {bad_step} (optimizer {cfg.optimizer.name}, "
                        f"lr={cfg.optimizer.lr:g}); lower optimizer.lr")
    solve = jax.jit(logistic.newton, static_argnames="max_iter")
    newton = jax.device_get(solve(init, x, y, cfg.newton.tol, max_iter=cfg.newton.max_iter))
    if not np.all(np.isfinite(newton.phi)):
        curvature = float(logistic.min_eigenvalue(logistic.bce_hessian(init, x, y)))
        if not curvature > 0:  # its first step solves H d = -g: a start where H is singular (saturated) is the cause
            raise ConfigError("train.init", cfg.train.init, "a start where the loss's Hessian is positive definite in "
                              f"{cfg.precision} (Newton's first step solves with it; its smallest eigenvalue there is "
                              f"{curvature:g})")
        raise RunFailed(f"Newton's method produced NaN/inf within {int(newton.iterations)} iterations")
    converged = bool(newton.grad_norm < cfg.newton.tol) and no_optimum is None
    if not bool(newton.grad_norm < cfg.newton.tol):
        ctx.warn(f"Newton's method did not converge: |grad| = {float(newton.grad_norm):.3g} >= newton.tol = "
                 f"{cfg.newton.tol:g} after {int(newton.iterations)} iterations ({cfg.precision})")

    m = jax.device_get(measures(fit.phi, newton.phi, fit.path, fit.losses, maps, x, y))
    bounds = {k: float(v) for k, v in m["bounds"].items()}
    host_maps = jax.device_get(maps)
    ctx.save_later("grid_errors.csv", lambda path: save_grid_errors(path, host_maps))
    fit = jax.device_get(fit)
    spacing = [float(d) for d in m["grid_spacing"]]
    eig_tolerance = 100 * float(jnp.finfo(x.dtype).eps) * float(m["max_abs_min_eig"])
    min_eig = float(m["min_eig"])

    ctx.curve("train/loss", fit.losses)
    steps = thinned_steps(cfg.train.steps)  # a curve over millions of steps is drawn from a few thousand
    ctx.keep(x=x, y=y, fit_phi=fit.phi, newton_phi=newton.phi, loss_map=maps["loss"], grid_argmin=m["grid_argmin"],
             fit_path=fit.path[np.append(steps, cfg.train.steps)], newton_path=newton.path[: newton.iterations + 1],
             min_eig_map=maps["min_eig"], steps=steps, losses=fit.losses[steps], newton_loss=m["newton_loss"])
    ctx.log.info("fit %s, newton %s in %d iterations", fit.phi, newton.phi, newton.iterations)
    return {
        "data": {"n": int(x.shape[0]), "source": cfg.data.path or "sampled"},
        "fit": {
            "phi0": fit.phi[0], "phi1": fit.phi[1], "loss": fit.losses[-1],
            "final_loss": m["fit_loss"], "grad_norm": fit.grad_norm,
            "gap_to_newton": m["fit_loss"] - m["newton_loss"],
            "distance_to_heatmap_min": m["fit_to_heatmap_min"],
            "distance_to_newton": m["fit_to_newton"],
        },
        "newton": {
            "phi0": newton.phi[0], "phi1": newton.phi[1], "iterations": newton.iterations,
            "grad_norm": newton.grad_norm, "converged": converged,
            "loss": m["newton_loss"],
            "distance_to_heatmap_min": m["newton_to_heatmap_min"],
        },
        "heatmap": {"argmin": m["grid_argmin"], "min_loss": m["min_loss"], "grid_spacing": spacing,
                    "cell_diagonal": float(np.hypot(*spacing))},
        "loss_stability": loss_stability(cfg.check.logits),
        "gradient": {"max_abs_err": m["grad_max_abs_err"], "tolerance": bounds["gradient"],
                     "finite_difference_max_ratio": m["fd_ratio"],
                     "custom_rule_max_abs_err": m["custom_rule_err"], "fused_max_abs_err": m["fused_grad_err"]},
        "loss": {"max_ratio_to_bound": m["loss_ratio"], "relative_tolerance": bounds["loss_rel"],
                 "recorded_max_ratio_to_bound": m["recorded_loss_ratio"],
                 "recorded_max_abs_err": m["recorded_loss_max_abs_err"]},
        "hessian": {"max_abs_err": m["hess_max_abs_err"], "min_eig_over_grid": min_eig,
                    "min_eig_max_ratio_to_bound": m["min_eig_ratio"],
                    "eig_tolerance": eig_tolerance, "tolerance": bounds["hessian"]},
        "independent": {"newton_grad_norm": m["newton_grad_textbook"],
                        "newton_grad_tolerance": cfg.newton.tol + 2**0.5 * bounds["gradient"],
                        "fit_grad_norm": m["fit_grad_textbook"], "min_curvature_at_newton": m["newton_min_curvature"],
                        # the |gradient| training reports (fit.grad_norm) against the textbook's at the same phi
                        "fit_grad_norm_err": abs(float(fit.grad_norm) - float(m["fit_grad_textbook"])),
                        "fit_grad_norm_tolerance": 2**0.5 * bounds["gradient"],
                        "fit_to_newton_bound": m["distance_bound"]},
        "convex": min_eig >= -eig_tolerance,
    }


# --------------------------------------------------------------------------------------------------------
# Inputs that would give non-finite numbers are named here, before they do (issue 23 item 5): a result `inf` deep
# in the metrics says nothing about which key or data column caused it.


def check_data_magnitude(cfg: DataConfig, x: np.ndarray) -> None:
    """The data's x within the run precision's range: the Hessian and the round-off bounds sum (1 + |x_i|)^2 over the
    n points, finite only for |x| < sqrt(max float / n) - 1. A CSV names its line, sampled data its keys."""
    limit = float(np.sqrt(np.finfo(x.dtype).max / max(x.size, 1))) - 1
    beyond = np.flatnonzero(~(np.abs(x) < limit))
    if beyond.size == 0:
        return
    allowed = f"data with |x| < {limit:.3g} (the Hessian sums x^2 over {x.size} points in {x.dtype})"
    if cfg.path is not None:
        raise ConfigError("data.path", cfg.path, f"{allowed}: line {beyond[0] + 2}, column x is beyond")
    raise ConfigError("data.mean0, data.mean1, data.std", [cfg.mean0, cfg.mean1, cfg.std], allowed)


def check_finite_at(phi: jax.Array, x: jax.Array, y: jax.Array, key: str, value, allowed: str) -> None:
    """A ConfigError naming `key` when the loss or its gradient at `phi` is not finite (`value` is what the user
    gave: it may have been finite before the cast to the run's precision)."""
    loss, grad = jax.jit(logistic.bce_value_and_grad)(phi, x, y)
    if not (np.isfinite(float(loss)) and np.all(np.isfinite(np.asarray(grad)))):
        raise ConfigError(key, value, f"{allowed} (the loss there is {float(loss):g})")


def check_grid_finite(cfg: Config, maps: dict) -> None:
    """The grid's points and every route's loss and derivatives at them finite; else a ConfigError naming the grid
    ranges (the data and the start are checked before)."""
    bad = [name for name, values in maps.items() if not np.all(np.isfinite(np.asarray(values)))]
    if bad:
        raise ConfigError("grid.phi0_range, grid.phi1_range", [cfg.grid.phi0_range, cfg.grid.phi1_range],
                          f"ranges whose grid points, losses and derivatives are finite in {cfg.precision} "
                          f"(not: {', '.join(bad)})")


# max |sigma''(z)| = sqrt(3) / 18: the bound on the third derivative of softplus that the finite-difference
# truncation error h^2 |f^(3)| / 6 needs (d^3 L / dphi_k^3 = sum_i sigma''(z_i) a_ik^3 with a_i = [1, x_i])
SOFTPLUS_THIRD_DERIVATIVE_MAX = 3**0.5 / 18


def roundoff_bounds(x: jax.Array) -> dict:
    """Round-off bounds of the comparisons, from the data alone (eps = machine epsilon, n points):

        gradient   (n + 8) eps sum_i (1 + |x_i|)       each route's residual p_i - y_i within 4 eps of the truth,
                                                       summed over n terms |r_i a_ik| <= 1 + |x_i| (Higham: n eps)
        Hessian    (n + 8) eps sum_i (1 + |x_i|)^2 / 4  the same for terms p_i (1 - p_i) a_ij a_ik <= (1 + |x_i|)^2/4
        loss, rel  (n + 8) eps                         n positive terms, each within 4 eps in each route
    """
    eps, n = jnp.finfo(x.dtype).eps, x.shape[0]
    return {"gradient": (n + 8) * eps * jnp.sum(1 + jnp.abs(x)),
            "hessian": (n + 8) * eps * jnp.sum((1 + jnp.abs(x)) ** 2) / 4,
            "loss_rel": (n + 8) * eps}


def finite_difference_check(phi, x, y, analytic_grad, loss) -> jax.Array:
    """|analytic - central difference| / its bound, per component (<= 1 when the analytic gradient is right).

    Step h_k = eps^(1/3) max(1, |phi_k|); bound = truncation h^2 M3_k / 6 (M3_0 = c n, M3_1 = c sum |x|^3,
    c = max |sigma''|) + round-off of the two loss values (n + 8) eps L / h + the rounded step eps |phi_k| |g_k| / h.
    """
    eps, n = jnp.finfo(x.dtype).eps, x.shape[0]
    step = eps ** (1 / 3) * jnp.maximum(1.0, jnp.abs(phi))
    basis = jnp.diag(step)
    fd = jax.vmap(lambda e, h: (logistic.bce_loss(phi + e, x, y) - logistic.bce_loss(phi - e, x, y)) / (2 * h))(
        basis, step)
    third = SOFTPLUS_THIRD_DERIVATIVE_MAX * jnp.stack([n * 1.0, jnp.sum(jnp.abs(x) ** 3)])
    bound = (step**2 * third / 6 + (n + 8) * eps * loss / step + eps * jnp.abs(phi) * jnp.abs(analytic_grad) / step)
    return jnp.abs(analytic_grad - fd) / bound


def save_grid_errors(path, maps: dict) -> None:
    """grid_errors.csv: every grid point's errors (the arrays behind the report's max-over-grid rows)."""
    phi0, phi1 = np.meshgrid(maps["phi0"], maps["phi1"])
    names = ["grad_err", "hess_err", "fd_ratio", "custom_rule_err", "fused_grad_err", "loss_ratio", "min_eig",
             "min_eig_ratio"]
    columns = np.stack([phi0.ravel(), phi1.ravel(), *(np.asarray(maps[k]).ravel() for k in names)], axis=1)
    with atomic_open(path) as handle:  # never a truncated file (a full disk, `ulimit -f`)
        np.savetxt(handle, columns, delimiter=",", header=",".join(["phi0", "phi1", *names]), comments="", fmt="%.4e")


def grid_maps(x, y, phi0_range, phi1_range, resolution) -> dict:
    """(iv, v) On a resolution x resolution grid over (phi0, phi1): the loss, and the analytic gradient and
    Hessian against routes that share no code with them: autodiff of the textbook loss (`bce_loss_textbook`,
    no custom rule), central finite differences of the stable loss, and the custom-JVP and fused gradients
    (what jax.grad and training use) against the textbook's. Errors are max abs over components; the
    finite-difference and loss columns are divided by their bounds (<= 1 passes).

    The textbook route is compiled as a program of its own (`textbook_on_grid`). In one program with the other
    routes, XLA shares and rewrites their common subexpressions: the routes were then not independent in the
    compiled code, and at saturated points (|phi0 + phi1 x| in the hundreds, a grid over +-200) the textbook
    Hessian came out 1e-4 off relative to its entries, 3.5x the bound of the claim comparing them."""
    textbook = textbook_on_grid(x, y, phi0_range, phi1_range, resolution)
    return compared_on_grid(x, y, textbook, phi0_range, phi1_range, resolution)


def _grid(phi0_range, phi1_range, resolution):
    return jnp.linspace(*phi0_range, resolution), jnp.linspace(*phi1_range, resolution)


@functools.partial(jax.jit, static_argnames=("phi0_range", "phi1_range", "resolution"))
def textbook_on_grid(x, y, phi0_range, phi1_range, resolution) -> dict:
    """The independent route at every grid point: the textbook loss, and its gradient and Hessian by autodiff."""
    def at(phi):
        loss, grad = jax.value_and_grad(logistic.bce_loss_textbook)(phi, x, y)
        return {"loss": loss, "grad": grad, "hess": jax.hessian(logistic.bce_loss_textbook)(phi, x, y)}

    return logistic.on_grid(at, *_grid(phi0_range, phi1_range, resolution))


@functools.partial(jax.jit, static_argnames=("phi0_range", "phi1_range", "resolution"))
def compared_on_grid(x, y, textbook: dict, phi0_range, phi1_range, resolution) -> dict:
    """Every other route at every grid point, against the textbook route's values there (`textbook_on_grid`)."""
    phi0s, phi1s = _grid(phi0_range, phi1_range, resolution)
    bounds = roundoff_bounds(x)

    def at(phi, textbook):
        loss = logistic.bce_loss(phi, x, y)
        grad, hess = logistic.bce_gradient_and_hessian(phi, x, y)
        textbook_loss, textbook_grad, textbook_hess = textbook["loss"], textbook["grad"], textbook["hess"]
        fused_loss, fused_grad = logistic.bce_value_and_grad(phi, x, y)
        loss_bound = bounds["loss_rel"] * textbook_loss
        # eigvalsh's smallest eigenvalue (the convexity map) against the 2x2 closed form on the analytic H
        min_eig = logistic.min_eigenvalue(textbook_hess)
        closed_min_eig = logistic.min_eigenvalue_2x2(hess)
        min_eig_bound = 4 * bounds["hessian"] + 16 * jnp.finfo(x.dtype).eps * jnp.max(jnp.abs(textbook_hess))
        return {
            "loss": loss,
            "grad_err": jnp.max(jnp.abs(grad - textbook_grad)),
            "hess_err": jnp.max(jnp.abs(hess - textbook_hess)),
            "min_eig": min_eig,
            "min_eig_ratio": jnp.abs(min_eig - closed_min_eig) / min_eig_bound,
            "fd_ratio": jnp.max(finite_difference_check(phi, x, y, grad, loss)),
            "custom_rule_err": jnp.max(jnp.abs(jax.grad(logistic.bce_loss)(phi, x, y) - textbook_grad)),
            "fused_grad_err": jnp.max(jnp.abs(fused_grad - textbook_grad)),
            "loss_ratio": jnp.maximum(jnp.abs(loss - textbook_loss), jnp.abs(fused_loss - textbook_loss)) / loss_bound,
        }

    return {"phi0": phi0s, "phi1": phi1s, **logistic.on_grid(at, phi0s, phi1s, textbook)}


@jax.jit
def measures(fit_phi, newton_phi, fit_path, fit_losses, maps: dict, x, y) -> dict:
    """The numbers the run reports from its two fits and the grid maps, in one compiled call (one by one, each
    small operation would be compiled, or loaded from the cache, on its own: ~50 of them).

    The independent checks of the fits use autodiff of the textbook loss: the loss training recorded at each step
    against the textbook loss at the parameters of that step; the gradient norms at both minima; the distance
    between them against the strong-convexity bound 2 (|g_fit| + |g_newton| + 2 delta) / lambda_min(H(newton)),
    delta the round-off bound of a computed gradient."""
    row, col = jnp.unravel_index(jnp.argmin(maps["loss"]), maps["loss"].shape)
    grid_argmin = jnp.stack([maps["phi0"][col], maps["phi1"][row]])
    bounds = roundoff_bounds(x)
    textbook = jax.vmap(lambda phi: logistic.bce_loss_textbook(phi, x, y))(fit_path[:-1])
    grad = jax.grad(logistic.bce_loss_textbook)
    fit_grad, newton_grad = jnp.linalg.norm(grad(fit_phi, x, y)), jnp.linalg.norm(grad(newton_phi, x, y))
    curvature = logistic.min_eigenvalue(jax.hessian(logistic.bce_loss_textbook)(newton_phi, x, y))
    return {
        "grid_argmin": grid_argmin, "min_loss": jnp.min(maps["loss"]),
        "grid_spacing": jnp.stack([maps["phi0"][1] - maps["phi0"][0], maps["phi1"][1] - maps["phi1"][0]]),
        "fit_loss": logistic.bce_loss(fit_phi, x, y), "newton_loss": logistic.bce_loss(newton_phi, x, y),
        "fit_to_heatmap_min": jnp.linalg.norm(fit_phi - grid_argmin),
        "fit_to_newton": jnp.linalg.norm(fit_phi - newton_phi),
        "newton_to_heatmap_min": jnp.linalg.norm(newton_phi - grid_argmin),
        "grad_max_abs_err": jnp.max(maps["grad_err"]), "hess_max_abs_err": jnp.max(maps["hess_err"]),
        "min_eig": jnp.min(maps["min_eig"]), "max_abs_min_eig": jnp.max(jnp.abs(maps["min_eig"])),
        "min_eig_ratio": jnp.max(maps["min_eig_ratio"]),
        "fd_ratio": jnp.max(maps["fd_ratio"]), "custom_rule_err": jnp.max(maps["custom_rule_err"]),
        "fused_grad_err": jnp.max(maps["fused_grad_err"]), "loss_ratio": jnp.max(maps["loss_ratio"]),
        "recorded_loss_ratio": jnp.max(jnp.abs(fit_losses - textbook) / (bounds["loss_rel"] * textbook)),
        "recorded_loss_max_abs_err": jnp.max(jnp.abs(fit_losses - textbook)),
        "fit_grad_textbook": fit_grad, "newton_grad_textbook": newton_grad, "newton_min_curvature": curvature,
        "distance_bound": 2 * (fit_grad + newton_grad + 2 * bounds["gradient"]) / curvature,
        "bounds": bounds,
    }


if __name__ == "__main__":
    launch("logreg")
