"""Problem 3: weight decay phi <- (1 - lambda) phi - alpha dL/dphi is gradient descent on
L~ = L + lambda/(2 alpha) sum phi_k^2 for SGD (and SGD with coupled momentum), but not for Adam (AdamW).

    python experiments/weight_decay.py                                  # logistic regression of Problem 8
    python experiments/weight_decay.py model=least_squares alpha=0.01
    python experiments/weight_decay.py -m alpha=0.01,0.02,0.05 lam=0.001,0.01
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.experiments import memory
from gradlab.experiments.schemas import LinearDataConfig, LogisticDataConfig, NewtonConfig
from gradlab.problems import regularization as reg
from gradlab.problems.linreg import least_squares_gradient_numpy, least_squares_loss
from gradlab.problems.logistic import bce_gradient_numpy, bce_loss
from gradlab.problems.map_l2 import newton_minimize
from gradlab.runner.config import at_least, finite_list, in_range, one_of, positive
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch


@dataclass
class AdamConfig:
    b1: float = in_range(0.0, 1.0)
    b2: float = in_range(0.0, 1.0)
    eps: float = positive()


@dataclass
class Config(BaseConfig):
    alpha: float = positive()  # learning rate
    lam: float = in_range(0.0, 1.0)  # decay rate lambda: phi <- (1 - lambda) phi - alpha dL/dphi
    steps: int = at_least(1)
    model: str = one_of("logistic", "least_squares")
    init: list[float] = finite_list(length=2)
    momentum: float = in_range(0.0, 1.0)
    adam: AdamConfig
    logistic: LogisticDataConfig
    least_squares: LinearDataConfig
    # two trajectories "agree to round-off" when they differ by at most this many machine epsilons
    # times the largest |phi| they reach
    roundoff_ulps: float = positive()
    newton: NewtonConfig  # the minimizer of L~, marked on the contour plot
    contour_grid: int = at_least(10)


def memory_estimate(cfg: Config) -> dict[str, float]:
    """Bytes by the keys that size them: eight trajectories of steps + 1 rows of 2 floats, each held ~7 times (on
    the device, the differences, host copies, plot_data.npz, the figures' paths: measured steps = 1e6: 0.9 GB);
    the contour grid, ~12 floats a point (contour_grid = 2000: 0.3 GB); the model's data."""
    data_key, n = (("logistic.n_per_class", 2 * cfg.logistic.n_per_class) if cfg.model == "logistic"
                   else ("least_squares.n_points", cfg.least_squares.n_points))
    return {"steps": (cfg.steps + 1) * 8 * 2 * 8 * 7.0, "contour_grid": cfg.contour_grid**2 * 12 * 8.0,
            data_key: n * 20 * memory.word(cfg.precision)}


def make_loss(cfg: Config):
    """The unregularized loss L[phi] of the configured model and data, and its hand-written NumPy gradient."""
    if cfg.model == "logistic":
        x, y = cfg.logistic.sample()
        loss, numpy_grad = (lambda phi: bce_loss(phi, x, y)), bce_gradient_numpy
    else:
        x, y = cfg.least_squares.sample()
        loss, numpy_grad = (lambda phi: least_squares_loss(phi, x, y)), least_squares_gradient_numpy
    x_np, y_np = np.asarray(x), np.asarray(y)
    loss.numpy_grad = lambda phi: numpy_grad(phi, x_np, y_np)
    loss.n = int(x.shape[0])
    return loss


def reference_metrics(cfg: Config, loss, runs: dict, phi_init) -> tuple[dict, dict]:
    """Each optax/JAX trajectory against the NumPy route (`reg.numpy_reference_runs`), max over steps and
    coordinates, with the round-off bound of `steps` updates:

        tolerance = steps (n + 8) eps (max|phi| + alpha S)

    each update rounds phi (a few eps |phi|) and a gradient of n terms whose absolute sum is at most S (Higham:
    n eps S); for SGD and momentum on a convex L with alpha below 2 / Lipschitz the update map does not expand
    an error, so errors add over the steps. Adam's update divides by sqrt(v^), which does expand an error where
    the gradient is small; the same bound is used and the measured margin is reported."""
    refs, scale = reg.numpy_reference_runs(loss.numpy_grad, phi_init, cfg.alpha, cfg.lam, cfg.steps, cfg.momentum,
                                           cfg.adam.b1, cfg.adam.b2, cfg.adam.eps)
    eps = float(np.finfo(np.asarray(runs["sgd_manual"]).dtype).eps)  # the JAX route's precision
    size = max(float(np.max(np.abs(np.asarray(path)))) for path in runs.values())
    tolerance = cfg.steps * (loss.n + 8) * eps * (size + cfg.alpha * scale)
    out = {"tolerance": tolerance, "gradient_abs_sum_max": scale, "max_abs_phi": size}
    for metric, run, reference in reg.REFERENCE_COMPARISONS:
        out[f"{metric}_max_abs_err"] = float(np.max(np.abs(np.asarray(runs[run]) - refs[reference])))
    jax_gap = np.max(np.abs(np.asarray(runs["adamw"]) - np.asarray(runs["adam_l2"])), axis=1)
    ref_gap = np.max(np.abs(refs["adamw"] - refs["adam_l2"]), axis=1)
    out["adamw_vs_adam_l2"] = {"numpy": float(ref_gap.max()), "jax": float(jax_gap.max()),
                               "abs_err": float(np.max(np.abs(jax_gap - ref_gap))), "tolerance": 2 * tolerance}
    return out, refs


def contour_grid(penalized, points: np.ndarray, grid_points: int) -> dict[str, np.ndarray]:
    """L~ on a grid that covers every trajectory point with a 15% margin, for the contour plot."""
    low, high = points.min(axis=0), points.max(axis=0)
    pad = 0.15 * np.maximum(high - low, 1e-3)
    phi0 = jnp.linspace(low[0] - pad[0], high[0] + pad[0], grid_points)
    phi1 = jnp.linspace(low[1] - pad[1], high[1] + pad[1], grid_points)
    grid = jnp.stack(jnp.meshgrid(phi0, phi1), axis=-1)
    return {"contour_phi0": phi0, "contour_phi1": phi1, "contour_values": jax.jit(jax.vmap(jax.vmap(penalized)))(grid)}


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
    reference, numpy_paths = reference_metrics(cfg, loss, runs, np.asarray(phi_init))
    ctx.keep(**{f"numpy_path_{name}": path for name, path in numpy_paths.items()})  # the arrays behind the claims
    minimum = jax.jit(lambda phi: newton_minimize(penalized, phi, cfg.newton.tol, cfg.newton.max_iter))(phi_init)
    minimizer = np.asarray(minimum["phi"])
    if not bool(minimum["converged"]):
        ctx.warn(f"Newton's method for the minimizer of L~ did not reach newton.tol = {cfg.newton.tol:g} (max |grad| "
                 f"{float(minimum['grad_inf_norm']):.3g} after {int(minimum['iterations'])} iterations, "
                 f"{cfg.precision}): the minimizer marked on the contour plot, and each run's distance to it, are "
                 "where it stopped")

    results: dict = {
        "optax_weight_decay": reg.optax_weight_decay(cfg.lam, cfg.alpha),
        "mapping": reg.weight_decay_mapping(cfg.lam, cfg.alpha),
        "machine_epsilon": eps,
        "roundoff_tolerance": tolerance,
        "penalty_grad_max_abs_err": reg.penalty_gradient_error(
            jnp.concatenate(list(runs.values())), cfg.lam, cfg.alpha
        ),
        "penalty_grad_fd_max_ratio": reg.penalty_gradient_fd_ratio(
            np.concatenate([np.asarray(p) for p in runs.values()]), cfg.lam, cfg.alpha),
        "numpy_reference": reference,
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

    points = np.concatenate([np.asarray(path) for path in runs.values()] + [minimizer[None]])
    ctx.keep(**{f"path_{name}": path for name, path in runs.items()}, minimizer=minimizer, machine_epsilon=eps,
             **contour_grid(penalized, points, cfg.contour_grid),
             differences=np.stack([differences[c] for c in reg.COMPARISONS]),
             difference_groups=np.array([group for group, _, _, _ in reg.COMPARISONS]),
             difference_runs=np.array([run for _, _, run, _ in reg.COMPARISONS]),
             difference_references=np.array([reference for _, _, _, reference in reg.COMPARISONS]))
    return results


if __name__ == "__main__":
    launch("weight_decay")
