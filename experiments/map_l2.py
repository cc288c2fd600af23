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

from gradlab import map_l2
from gradlab.config import at_least, checked, increasing_pair, positive
from gradlab.logistic import bce_loss, sample_data
from gradlab.plotting import figure
from gradlab.regularization import sample_linear_data
from gradlab.run import BaseConfig, RunContext, launch


def _positive_number(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _sigmas(value) -> bool:
    return len(value) in (1, 2) and all(map(_positive_number, value))


def _positive_increasing_pair(value) -> bool:
    return len(value) == 2 and all(map(_positive_number, value)) and value[0] < value[1]


@dataclasses.dataclass
class LogisticDataConfig:
    """Problem 8 iv data: n_per_class points from N(mean0, std^2) labelled 0, as many from N(mean1, std^2)."""

    n_per_class: int = at_least(1, 10)
    mean0: float = -1.0
    mean1: float = 1.0
    std: float = positive(1.0)
    seed: int = 0


@dataclasses.dataclass
class LinearDataConfig:
    """y = intercept + slope x + noise_sigma Norm(0, 1), x uniform on x_range; noise_sigma is also sigma_n."""

    n_points: int = at_least(2, 20)
    intercept: float = 0.5
    slope: float = 1.5
    noise_sigma: float = positive(0.5)
    x_range: list[float] = increasing_pair([-2.0, 2.0])
    seed: int = 1


@dataclasses.dataclass
class NewtonConfig:
    tol: float = positive(1e-12)  # stop when max_j |dF/dphi_j| <= tol
    max_iter: int = at_least(1, 100)


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
class MapL2Config(BaseConfig):
    # prior standard deviation sigma_j: two values = one per parameter (phi0, phi1), one value = shared
    prior_sigma: list[float] = checked([1.0, 0.5], _sigmas, "one (shared) or two (per parameter) numbers > 0")
    logistic: LogisticDataConfig = dataclasses.field(default_factory=LogisticDataConfig)
    linear: LinearDataConfig = dataclasses.field(default_factory=LinearDataConfig)
    newton: NewtonConfig = dataclasses.field(default_factory=NewtonConfig)
    offset_check: OffsetCheckConfig = dataclasses.field(default_factory=OffsetCheckConfig)
    sigma_sweep: SigmaSweepConfig = dataclasses.field(default_factory=SigmaSweepConfig)


def route_metrics(routes: dict, offsets: jax.Array) -> dict:
    return {
        "map": routes["map"]["phi"],
        "l2": routes["l2"]["phi"],
        "max_abs_diff_map_vs_l2": routes["max_abs_diff"],
        "strong_convexity_bound": routes["bound"],
        "grad_inf_norm": {"map": routes["map"]["grad_inf_norm"], "l2": routes["l2"]["grad_inf_norm"]},
        "newton_iterations": {"map": routes["map"]["iterations"], "l2": routes["l2"]["iterations"]},
        "converged": bool(routes["map"]["converged"] & routes["l2"]["converged"]),
        "objective_offset": jnp.mean(offsets),
        "objective_offset_spread": jnp.max(offsets) - jnp.min(offsets),
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


def sweep_prior(ctx: RunContext, cfg: MapL2Config, models: dict, linear_data: tuple) -> dict:
    """MAP estimates over a log grid of shared prior sigmas, against the MLE (and ridge, Gaussian case)."""
    sweep, newton = cfg.sigma_sweep, cfg.newton
    phi_init = jnp.zeros(2)
    x_g, y_g = linear_data
    sigmas = jnp.logspace(math.log10(sweep.range[0]), math.log10(sweep.range[1]), sweep.num)
    solve_path = jax.jit(map_l2.map_path, static_argnums=0)
    paths = {
        name: np.asarray(solve_path(log_likelihood, sigmas, phi_init, newton.tol, newton.max_iter)["phi"])
        for name, (log_likelihood, _) in models.items()
    }
    mle_fit = jax.jit(map_l2.newton_minimize, static_argnums=0)(
        models["bernoulli"][1], phi_init, newton.tol, newton.max_iter
    )
    mles = {
        # separable classes have no finite maximum likelihood estimate: Newton then never meets the tolerance
        "bernoulli": np.asarray(mle_fit["phi"]) if bool(mle_fit["converged"]) else None,
        "gaussian": np.asarray(map_l2.least_squares_closed_form(x_g, y_g)),
    }
    ridge_path = np.asarray(jax.vmap(lambda s: map_l2.ridge_closed_form(x_g, y_g, cfg.linear.noise_sigma, s))(sigmas))
    plot_sweep(ctx, np.asarray(sigmas), paths, mles, ridge_path)
    return {
        "sigmas": sigmas,
        "mle": mles,
        "strongest_prior_max_abs_map": {k: float(np.max(np.abs(p[0]))) for k, p in paths.items()},
        "weakest_prior_max_abs_diff_map_vs_mle": {
            k: None if mles[k] is None else float(np.max(np.abs(p[-1] - mles[k]))) for k, p in paths.items()
        },
        "gaussian_max_abs_diff_map_vs_ridge": float(np.max(np.abs(paths["gaussian"] - ridge_path))),
    }


def main(cfg: MapL2Config, ctx: RunContext) -> dict:
    prior_sigma = jnp.broadcast_to(jnp.asarray(cfg.prior_sigma, dtype=float), (2,))
    phi_init = jnp.zeros(2)
    tol, max_iter = cfg.newton.tol, cfg.newton.max_iter

    data = cfg.logistic
    x_b, y_b = sample_data(jax.random.PRNGKey(data.seed), data.n_per_class, data.mean0, data.mean1, data.std)
    lin = cfg.linear
    x_g, y_g = sample_linear_data(
        jax.random.PRNGKey(lin.seed), lin.n_points, lin.intercept, lin.slope, lin.noise_sigma, *lin.x_range
    )
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
    expected = map_l2.objective_offset_expected(prior_sigma)

    results: dict = {
        "prior_sigma": prior_sigma,
        "l2_coefficients": map_l2.l2_coefficients(prior_sigma),
        "ridge_lambda": lin.noise_sigma**2 / prior_sigma**2,
    }
    all_offsets = []
    for name, (log_likelihood, nll) in models.items():
        posterior = map_l2.neg_log_posterior(log_likelihood, prior_sigma)
        penalized = map_l2.nll_plus_l2(nll, prior_sigma)
        routes = jax.jit(map_l2.minimize_both_routes, static_argnums=(0, 1))(
            posterior, penalized, prior_sigma, phi_init, tol, max_iter
        )
        offsets = jax.jit(map_l2.objective_offsets, static_argnums=(0, 1))(posterior, penalized, phis)
        all_offsets.append(offsets)
        results[name] = route_metrics(routes, offsets)

    ridge = map_l2.ridge_closed_form(x_g, y_g, lin.noise_sigma, prior_sigma)
    results["gaussian"]["ridge"] = ridge
    results["gaussian"]["max_abs_diff_map_vs_ridge"] = jnp.max(jnp.abs(results["gaussian"]["map"] - ridge))
    results["gaussian"]["max_abs_diff_l2_vs_ridge"] = jnp.max(jnp.abs(results["gaussian"]["l2"] - ridge))

    all_offsets = jnp.concatenate(all_offsets)
    results["objective_offset"] = jnp.mean(all_offsets)
    results["objective_offset_expected"] = expected
    results["objective_offset_max_abs_err"] = jnp.max(jnp.abs(all_offsets - expected))
    results["objective_offset_points"] = int(all_offsets.size)

    results["sweep"] = sweep_prior(ctx, cfg, models, (x_g, y_g))
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
    launch(__file__, MapL2Config, main)
