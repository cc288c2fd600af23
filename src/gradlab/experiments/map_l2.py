"""Problem 2: MAP with the prior Norm(0, sigma_j^2) on each phi_j is NLL + sum_j phi_j^2 / (2 sigma_j^2).

python experiments/map_l2.py                              # per-parameter sigma = [1.0, 0.5]
python experiments/map_l2.py 'prior_sigma=[0.7]'          # one shared sigma
python experiments/map_l2.py -m 'prior_sigma=[0.1],[1.0],[10.0]'
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.problems import map_l2
from gradlab.runner.config import at_least, checked, positive
from gradlab.problems.logistic import bce_loss
from gradlab.problems.logistic import newton as logistic_newton
from gradlab.runner.plotting import figure
from gradlab.runner.run import BaseConfig, RunContext, launch
from gradlab.experiments.schemas import LinearDataConfig, LogisticDataConfig, NewtonConfig


def _positive_number(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _sigmas(value) -> bool:
    return len(value) in (1, 2) and all(map(_positive_number, value))


def _positive_increasing_pair(value) -> bool:
    return len(value) == 2 and all(map(_positive_number, value)) and value[0] < value[1]


@dataclasses.dataclass
class OffsetCheckConfig:
    """The points phi ~ Norm(0, scale^2 I) at which -log posterior - (NLL + L2) is evaluated."""

    num_points: int = at_least(1, 1000)
    scale: float = positive(3.0)
    seed: int = 2


@dataclasses.dataclass
class SigmaSweepConfig:
    """Shared prior sigma on a log grid from strong (range[0]) to weak (range[1]) prior."""

    range: list[float] = checked([0.01, 100.0], _positive_increasing_pair, "two numbers 0 < low < high")
    num: int = at_least(2, 41)


@dataclasses.dataclass
class Config(BaseConfig):
    # prior standard deviation sigma_j: two values = one per parameter (phi0, phi1), one value = shared
    prior_sigma: list[float] = checked([1.0, 0.5], _sigmas, "one (shared) or two (per parameter) numbers > 0")
    logistic: LogisticDataConfig = dataclasses.field(default_factory=LogisticDataConfig)
    linear: LinearDataConfig = dataclasses.field(default_factory=LinearDataConfig)
    newton: NewtonConfig = dataclasses.field(default_factory=lambda: NewtonConfig(tol=1e-12, max_iter=100))
    offset_check: OffsetCheckConfig = dataclasses.field(default_factory=OffsetCheckConfig)
    sigma_sweep: SigmaSweepConfig = dataclasses.field(default_factory=SigmaSweepConfig)


def route_metrics(routes: dict, offsets: np.ndarray) -> dict:
    """Metrics of one model at the configured prior (numpy in, so no small eager JAX op is compiled)."""
    return {
        "map": routes["map"]["phi"],
        "l2": routes["l2"]["phi"],
        "max_abs_diff_map_vs_l2": routes["max_abs_diff"],
        "strong_convexity_bound": routes["bound"],
        "grad_inf_norm": {"map": routes["map"]["grad_inf_norm"], "l2": routes["l2"]["grad_inf_norm"]},
        "newton_iterations": {"map": routes["map"]["iterations"], "l2": routes["l2"]["iterations"]},
        "converged": bool(routes["map"]["converged"] and routes["l2"]["converged"]),
        "objective_offset": np.mean(offsets),
        "objective_offset_spread": np.max(offsets) - np.min(offsets),
    }


def plot_sweep(ctx: RunContext, sigmas, paths: dict, mles: dict, ridge_path) -> None:
    fig, axes = figure(ncols=2, width=12, height=4.6)
    titles = {"bernoulli": "Bernoulli (logistic regression)", "gaussian": "Gaussian (linear regression)"}
    for ax, (name, path) in zip(axes, paths.items(), strict=True):
        for j, color in enumerate(("tab:blue", "tab:orange")):
            ax.semilogx(sigmas, path[:, j], color=color, lw=1.8, label=f"MAP φ{j}")
            if mles[name] is not None:
                ax.axhline(mles[name][j], color=color, ls="--", lw=1, label=f"maximum likelihood φ{j}")
            if name == "gaussian":
                ax.semilogx(sigmas[::4], ridge_path[::4, j], "o", color=color, ms=4, mfc="none")
        if name == "gaussian":
            ax.plot([], [], "ko", mfc="none", ms=4, label="closed-form ridge")
        ax.axhline(0.0, color="k", lw=0.6)
        ax.set(title=titles[name], xlabel="shared prior σ (strong prior ← → weak prior)", ylabel="φ_j")
        ax.legend(loc="center right")
    fig.suptitle("The MAP estimate moves from 0 (strong prior) to the maximum likelihood estimate (weak prior)")
    ctx.save_figure(
        fig,
        "map_vs_prior_sigma.png",
        caption="MAP estimates under a shared Norm(0, σ²) prior: they shrink to 0 as σ → 0 and reach the "
        "maximum likelihood estimate as σ grows; for the Gaussian model they lie on the ridge closed form.",
    )


def sweep_metrics(ctx: RunContext, sigmas, routes: dict, mles: dict, ridge_path) -> dict:
    """The MAP path over shared prior sigmas (rows 1.. of each routes batch) against the MLE and ridge."""
    paths = {name: np.asarray(batch["map"]["phi"][1:]) for name, batch in routes.items()}
    plot_sweep(ctx, np.asarray(sigmas), paths, mles, ridge_path)
    return {
        "sigmas": sigmas,
        "mle": mles,
        "strongest_prior_max_abs_map": {k: float(np.max(np.abs(p[0]))) for k, p in paths.items()},
        "weakest_prior_max_abs_diff_map_vs_mle": {
            k: None if mles[k] is None else float(np.max(np.abs(p[-1] - mles[k]))) for k, p in paths.items()
        },
        "max_abs_diff_map_vs_l2": {k: float(np.max(b["max_abs_diff"][1:])) for k, b in routes.items()},
        "gaussian_max_abs_diff_map_vs_ridge": float(np.max(np.abs(paths["gaussian"] - ridge_path))),
    }


def first_row(tree):
    return jax.tree.map(lambda leaf: np.asarray(leaf)[0], tree)


def main(cfg: Config, ctx: RunContext) -> dict:
    prior_sigma = jnp.broadcast_to(jnp.asarray(cfg.prior_sigma, dtype=float), (2,))
    phi_init = jnp.zeros(2)
    tol, max_iter = cfg.newton.tol, cfg.newton.max_iter

    x_b, y_b = cfg.logistic.sample()
    x_g, y_g = cfg.linear.sample()
    lin = cfg.linear
    models = {
        # (log-likelihood from the densities, NLL from the loss formula)
        "bernoulli": (
            lambda phi: map_l2.bernoulli_log_likelihood(phi, x_b, y_b),
            lambda phi: bce_loss(phi, x_b, y_b),
        ),
        "gaussian": (
            lambda phi: map_l2.gaussian_log_likelihood(phi, x_g, y_g, lin.noise_sigma),
            lambda phi: map_l2.gaussian_nll(phi, x_g, y_g, lin.noise_sigma),
        ),
    }
    check = cfg.offset_check
    phis = check.scale * jax.random.normal(jax.random.PRNGKey(check.seed), (check.num_points, 2))
    sweep = cfg.sigma_sweep
    sweep_sigmas = jnp.logspace(math.log10(sweep.range[0]), math.log10(sweep.range[1]), sweep.num)
    # row 0: the configured prior; rows 1..: the shared-sigma sweep, all in one compiled program per model
    sigma_rows = jnp.concatenate([prior_sigma[None], jnp.repeat(sweep_sigmas[:, None], 2, axis=1)])

    all_offsets, routes = [], {}
    for name, (log_likelihood, nll) in models.items():
        routes[name] = jax.device_get(
            jax.jit(map_l2.routes_over_sigmas, static_argnums=(0, 1))(
                log_likelihood, nll, sigma_rows, phi_init, tol, max_iter
            )
        )
        posterior = map_l2.neg_log_posterior(log_likelihood, prior_sigma)
        penalized = map_l2.nll_plus_l2(nll, prior_sigma)
        all_offsets.append(
            np.asarray(jax.jit(map_l2.objective_offsets, static_argnums=(0, 1))(posterior, penalized, phis))
        )

    sigma_np = np.asarray(prior_sigma)
    results: dict = {
        "prior_sigma": sigma_np,
        "l2_coefficients": 1.0 / (2.0 * sigma_np**2),
        "ridge_lambda": lin.noise_sigma**2 / sigma_np**2,
    }
    for name, offsets in zip(models, all_offsets, strict=True):
        results[name] = route_metrics(first_row(routes[name]), offsets)

    ridge_rows = np.asarray(
        jax.jit(jax.vmap(map_l2.ridge_closed_form, in_axes=(None, None, None, 0)))(
            x_g, y_g, lin.noise_sigma, sigma_rows
        )
    )
    ridge, ridge_path = ridge_rows[0], ridge_rows[1:]
    gaussian = results["gaussian"]
    gaussian["ridge"] = ridge
    gaussian["max_abs_diff_map_vs_ridge"] = np.max(np.abs(gaussian["map"] - ridge))
    gaussian["max_abs_diff_l2_vs_ridge"] = np.max(np.abs(gaussian["l2"] - ridge))

    all_offsets = np.concatenate(all_offsets)
    expected = float(map_l2.objective_offset_expected(prior_sigma))
    results["objective_offset"] = np.mean(all_offsets)
    results["objective_offset_expected"] = expected
    results["objective_offset_max_abs_err"] = np.max(np.abs(all_offsets - expected))
    results["objective_offset_points"] = int(all_offsets.size)

    # the maximum likelihood estimates, by routes independent of the MAP code: logistic.newton with the
    # analytic Hessian (separable classes have no finite MLE: it then never meets the tolerance) and
    # numpy's least squares
    mle_fit = jax.device_get(jax.jit(logistic_newton, static_argnums=4)(phi_init, x_b, y_b, tol, max_iter))
    x_np, y_np = np.asarray(x_g), np.asarray(y_g)
    mles = {
        "bernoulli": mle_fit.phi if mle_fit.grad_norm < tol else None,
        "gaussian": np.linalg.lstsq(np.stack([np.ones_like(x_np), x_np], axis=1), y_np, rcond=None)[0],
    }
    results["sweep"] = sweep_metrics(ctx, np.asarray(sweep_sigmas), routes, mles, ridge_path)
    ctx.log.info(
        "MAP vs L2: bernoulli %.3g, gaussian %.3g; gaussian MAP vs ridge %.3g; offset %.15g (expected %.15g)",
        results["bernoulli"]["max_abs_diff_map_vs_l2"],
        results["gaussian"]["max_abs_diff_map_vs_l2"],
        results["gaussian"]["max_abs_diff_map_vs_ridge"],
        results["objective_offset"],
        expected,
    )
    return results


if __name__ == "__main__":
    launch("map_l2")
