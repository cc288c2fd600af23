"""Problem 2: MAP with the prior Norm(0, sigma_j^2) on each phi_j is NLL + sum_j phi_j^2 / (2 sigma_j^2).

python experiments/map_l2.py                              # per-parameter sigma = [1.0, 0.5]
python experiments/map_l2.py 'prior_sigma=[0.7]'          # one shared sigma
python experiments/map_l2.py -m 'prior_sigma=[0.1],[1.0],[10.0]'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.experiments import memory
from gradlab.experiments.schemas import LinearDataConfig, LogisticDataConfig, NewtonConfig
from gradlab.problems import linreg, logistic, map_l2
from gradlab.runner.config import ConfigError, at_least, checked, positive, seed
from gradlab.runner.run import BaseConfig, RunContext, launch


def _positive_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _sigmas(value) -> bool:
    return len(value) in (1, 2) and all(map(_positive_number, value))


def _positive_increasing_pair(value) -> bool:
    return len(value) == 2 and all(map(_positive_number, value)) and value[0] < value[1]


@dataclass
class OffsetCheckConfig:
    """The points phi ~ Norm(0, scale^2 I) at which -log posterior - (NLL + L2) is evaluated."""

    num_points: int = at_least(1)
    scale: float = positive()
    seed: int = seed()


@dataclass
class SigmaSweepConfig:
    """Shared prior sigma on a log grid from strong (range[0]) to weak (range[1]) prior."""

    range: list[float] = checked(_positive_increasing_pair, "two numbers 0 < low < high")
    num: int = at_least(2)


@dataclass
class Config(BaseConfig):
    # prior standard deviation sigma_j: two values = one per parameter (phi0, phi1), one value = shared
    prior_sigma: list[float] = checked(_sigmas, "one (shared) or two (per parameter) numbers > 0")
    logistic: LogisticDataConfig  # the Bernoulli likelihood's data
    linear: LinearDataConfig  # the Gaussian likelihood's data; its noise_sigma is also the likelihood's sigma_n
    newton: NewtonConfig
    offset_check: OffsetCheckConfig
    sigma_sweep: SigmaSweepConfig


def memory_estimate(cfg: Config) -> dict[str, float]:
    """Bytes by the keys that size them. Both likelihoods run over their n points (2 n_per_class logistic, n_points
    linear) at each prior sigma in turn (the configured one and sigma_sweep.num more, one Newton solve after another:
    ~6 floats per point, whatever the number of sigmas; measured 101 and 3 sigmas x 2e5 points: 0.6 GB resident
    either way), each sigma's results kept (~100 floats), and at every offset-check point (~3 floats per check point
    and data point; measured 1e7 x 40: 7.8 GB, 1000 x 2e5: 4.9 GB); the MLE's Newton keeps its path."""
    w = memory.word(cfg.precision)
    rows, checks = cfg.sigma_sweep.num + 1, cfg.offset_check.num_points
    points = {"logistic.n_per_class": 2 * cfg.logistic.n_per_class, "linear.n_points": cfg.linear.n_points}
    per_model = []
    for data_key, n in points.items():
        per_model.append({data_key: n * w * 6})
        per_model.append(memory.split(checks * n * w * 3, {"offset_check.num_points": checks, data_key: n}))
    return memory.combined(*per_model, {"sigma_sweep.num": rows * w * 100,
                                        "newton.max_iter": (cfg.newton.max_iter + 1) * 2 * w * 4})


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


def sweep_metrics(ctx: RunContext, sigmas, routes: dict, mles: dict, ridge_path) -> dict:
    """The MAP path over shared prior sigmas (rows 1.. of each routes batch) against the MLE and ridge."""
    paths = {name: np.asarray(batch["map"]["phi"][1:]) for name, batch in routes.items()}
    # the figure's arrays; a model without a finite MLE (separable classes) has no mle_<model>
    ctx.keep(sigmas=sigmas, ridge_path=ridge_path, **{f"map_path_{name}": path for name, path in paths.items()},
             **{f"mle_{name}": mle for name, mle in mles.items() if mle is not None})
    return {
        "sigmas": sigmas,
        "mle": mles,
        "strongest_prior_max_abs_map": {k: float(np.max(np.abs(p[0]))) for k, p in paths.items()},
        "weakest_prior_max_abs_diff_map_vs_mle": {
            k: None if mles[k] is None else float(np.max(np.abs(p[-1] - mles[k]))) for k, p in paths.items()
        },
        "max_abs_diff_map_vs_l2": {k: float(np.max(b["max_abs_diff"][1:])) for k, b in routes.items()},
        "converged": {k: bool(np.all(b["map"]["converged"][1:]) and np.all(b["l2"]["converged"][1:]))
                      for k, b in routes.items()},
        "mle_converged": {k: mle is not None for k, mle in mles.items()},
        "gaussian_max_abs_diff_map_vs_ridge": float(np.max(np.abs(paths["gaussian"] - ridge_path))),
    }


def warn_unconverged(ctx: RunContext, routes: dict, sigma_rows: np.ndarray, tol: float) -> None:
    """Say which Newton runs (model, route, prior sigma) stopped short of newton.tol: row 0 is the configured
    prior, rows 1.. the sweep; their minimizers are where Newton stopped, not minima."""
    for name, batch in routes.items():
        for route in ("map", "l2"):
            stopped = ~np.asarray(batch[route]["converged"])
            if stopped.any():
                first = int(np.argmax(stopped))
                which = "the configured prior_sigma" if first == 0 else "first"
                ctx.warn(f"{name} {route}: Newton's method did not reach newton.tol = {tol:g} at {int(stopped.sum())} "
                         f"of {stopped.size} prior sigmas ({which} sigma = {sigma_rows[first].tolist()}: max |grad| "
                         f"{float(batch[route]['grad_inf_norm'][first]):.3g} after "
                         f"{int(batch[route]['iterations'][first])} iterations)")


def bernoulli_mle(ctx: RunContext, x, y, phi_init, tol: float, max_iter: int):
    """The logistic MLE by logistic.newton with the analytic Hessian (a route independent of the MAP code), or None
    with a warning when it does not exist (separable classes) or Newton stopped short of the tolerance."""
    no_optimum = logistic.separation(x, y)
    if no_optimum:
        ctx.warn(f"bernoulli: the maximum-likelihood estimate does not exist ({no_optimum}); the sweep has no MLE "
                 "to approach at weak priors")
        return None
    fit = jax.device_get(jax.jit(logistic.newton, static_argnums=4)(phi_init, x, y, tol, max_iter))
    if not fit.grad_norm < tol:
        ctx.warn(f"bernoulli: Newton's method for the MLE did not reach newton.tol = {tol:g} (|grad| "
                 f"{float(fit.grad_norm):.3g} after {int(fit.iterations)} iterations): the sweep is not compared to it")
        return None
    return fit.phi


def newton_bound(cfg: Config, prior_sigma: np.ndarray, grad_inf_norm: float) -> float:
    """How far a Newton run that stopped at max|g| = grad_inf_norm lies from its objective's minimizer at most:
    sqrt(P) max(|g|, tol) s^2 (the prior makes each objective (1/s^2)-strongly convex, s = max sigma_j, and
    |g|_2 <= sqrt(P) |g|_inf). That is newton.tol where the run converged, and the gradient it stopped at where it
    did not (a float32 run: its round-off keeps |g| above a tolerance written for float64)."""
    return math.sqrt(2) * max(float(grad_inf_norm), cfg.newton.tol) * float(np.max(prior_sigma)) ** 2


def tolerances(cfg: Config, prior_sigma: np.ndarray, objective_size: float, offset: float, x, ridge,
               gaussian_map_grad: float) -> dict:
    """The bounds the report judges Problem 2's claims by (eps = machine epsilon, n = the most data points), beside
    each model's `minimizer_tolerance` (the two runs' `newton_bound`s):

        ridge      newton_bound(MAP) + 8 cond(G) eps |phi|   the MAP run's bound plus the solve's (G the ridge matrix)
        offset     (n + 8) eps max(|-log post| + |NLL + L2|) + 4 eps |offset|   two sums of n terms subtracted
    """
    eps = float(np.finfo(cfg.precision).eps)
    n = max(2 * cfg.logistic.n_per_class, cfg.linear.n_points)
    design = np.stack([np.ones_like(np.asarray(x)), np.asarray(x)], axis=1)
    gram = design.T @ design + np.diag(cfg.linear.noise_sigma**2 / prior_sigma**2)
    return {"ridge": newton_bound(cfg, prior_sigma, gaussian_map_grad)
            + 8 * float(np.linalg.cond(gram)) * eps * float(np.max(np.abs(ridge))),
            "offset": (n + 8) * eps * objective_size + 4 * eps * abs(offset)}


def first_row(tree):
    return jax.tree.map(lambda leaf: np.asarray(leaf)[0], tree)


def check_prior_scale(cfg: Config) -> None:
    """The L2 coefficient 1/(2 sigma^2) of every prior sigma (configured and swept) must be a normal number in the
    run's precision: below sqrt(1 / (2 max float)) it overflows, above sqrt(1 / (2 tiny)) sigma^2 overflows and the
    coefficient underflows, and every result of that prior would be inf or NaN (issue 23: prior_sigma=[1e300])."""
    info = np.finfo(cfg.precision)
    low = math.sqrt(0.5) / math.sqrt(float(info.max))  # 2 max would overflow
    high = math.sqrt(0.5 / float(info.tiny))
    for key, values, what in (("prior_sigma", cfg.prior_sigma, "numbers"),
                              ("sigma_sweep.range", cfg.sigma_sweep.range, "a range from")):
        if min(values) <= low:
            raise ConfigError(key, values, f"{what} sigma > {low:.3g} ({cfg.precision}: the L2 coefficient "
                              "1/(2 sigma^2) overflows below)")
        if max(values) >= high:
            raise ConfigError(key, values, f"{what.replace('from', 'up to')} sigma < {high:.3g} ({cfg.precision}: "
                              "sigma^2 overflows above, the L2 coefficient 1/(2 sigma^2) underflows)")


def main(cfg: Config, ctx: RunContext) -> dict:
    check_prior_scale(cfg)
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
            lambda phi: logistic.bce_loss(phi, x_b, y_b),
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

    all_offsets, routes, objective_sizes = [], {}, []
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
        values = jax.jit(jax.vmap(lambda phi, f=posterior, g=penalized: jnp.abs(f(phi)) + jnp.abs(g(phi))))(phis)
        objective_sizes.append(float(jnp.max(values)))

    warn_unconverged(ctx, routes, np.asarray(sigma_rows), tol)
    sigma_np = np.asarray(prior_sigma)
    results: dict = {
        "prior_sigma": sigma_np,
        "l2_coefficients": 1.0 / (2.0 * sigma_np**2),
        "ridge_lambda": lin.noise_sigma**2 / sigma_np**2,
    }
    for name, offsets in zip(models, all_offsets, strict=True):
        results[name] = route_metrics(first_row(routes[name]), offsets)
        results[name]["minimizer_tolerance"] = sum(newton_bound(cfg, sigma_np, g)
                                                   for g in results[name]["grad_inf_norm"].values())

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
    results["tolerance"] = tolerances(cfg, sigma_np, max(objective_sizes), expected, x_g, ridge,
                                      gaussian["grad_inf_norm"]["map"])

    # the maximum likelihood estimates, by routes independent of the MAP code: logistic.newton with the
    # analytic Hessian (none for separable classes, which have no finite MLE) and the least-squares solution
    # of Problem 7
    mles = {
        "bernoulli": bernoulli_mle(ctx, x_b, y_b, phi_init, tol, max_iter),
        "gaussian": np.asarray(linreg.minimizer(x_g, y_g)),
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
