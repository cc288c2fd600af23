"""Problem 2: the Gaussian prior is an L2 penalty; MAP from the densities = NLL + L2 = ridge (Gaussian)."""

from __future__ import annotations

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_refused_over_budget, config_error, validated_config
from hypothesis import given, settings
from hypothesis import strategies as st

from gradlab.figures.map_l2 import FIGURES
from gradlab.problems import linreg, map_l2
from gradlab.problems.logistic import bce_loss, sample_data

TOL, MAX_ITER = 1e-12, 100
NOISE_SIGMA = 0.5
X_B, Y_B = sample_data(jax.random.PRNGKey(0), 10, -1.0, 1.0, 1.0)
X_G, Y_G = linreg.sample_data(jax.random.PRNGKey(1), 20, 0.5, 1.5, NOISE_SIGMA, -2.0, 2.0)
MODELS = {
    # (log-likelihood from the densities, NLL from the loss formula), data fixed so that jit compiles once
    "bernoulli": (
        lambda phi: map_l2.bernoulli_log_likelihood(phi, X_B, Y_B),
        lambda phi: bce_loss(phi, X_B, Y_B),
    ),
    "gaussian": (
        lambda phi: map_l2.gaussian_log_likelihood(phi, X_G, Y_G, NOISE_SIGMA),
        lambda phi: map_l2.gaussian_nll(phi, X_G, Y_G, NOISE_SIGMA),
    ),
}
PHIS = 3.0 * jax.random.normal(jax.random.PRNGKey(2), (200, 2))
LOG_PRIOR, LOG_PRIOR_GRADIENT = jax.jit(map_l2.log_prior), jax.jit(jax.grad(map_l2.log_prior))

sigma = st.floats(0.05, 20.0)
sigmas = st.one_of(st.tuples(sigma), st.tuples(sigma, sigma)).map(lambda s: np.broadcast_to(np.array(s), (2,)))


@jax.jit
def likelihood_routes(phi):
    """Both models' log-likelihoods by the densities and by the loss formulas, jitted once for every example."""
    p = jax.nn.sigmoid(phi[0] + phi[1] * X_B)
    return {"bernoulli": map_l2.bernoulli_log_likelihood(phi, X_B, Y_B), "bce_loss": bce_loss(phi, X_B, Y_B),
            "bernoulli_logpmf": jnp.sum(jax.scipy.stats.bernoulli.logpmf(Y_B, p)),
            "gaussian": map_l2.gaussian_log_likelihood(phi, X_G, Y_G, NOISE_SIGMA),
            "gaussian_nll": map_l2.gaussian_nll(phi, X_G, Y_G, NOISE_SIGMA)}


@functools.cache
def posterior_gradient(model: str):
    """The gradient of the MAP objective (the log-posterior from the densities) as a function of (phi, prior
    sigma), compiled once per model."""
    return jax.jit(lambda phi, prior_sigma: jax.grad(map_l2.neg_log_posterior(MODELS[model][0], prior_sigma))(phi))


@functools.cache
def compiled(model: str):
    """(both routes minimized, offsets at PHIS) as functions of the prior sigma, compiled once per model."""
    log_likelihood, nll = MODELS[model]

    def objectives(prior_sigma):
        return map_l2.neg_log_posterior(log_likelihood, prior_sigma), map_l2.nll_plus_l2(nll, prior_sigma)

    @jax.jit
    def routes(prior_sigma):
        posterior, penalized = objectives(prior_sigma)
        return map_l2.minimize_both_routes(posterior, penalized, prior_sigma, jnp.zeros(2), TOL, MAX_ITER)

    @jax.jit
    def offsets(prior_sigma):
        return map_l2.objective_offsets(*objectives(prior_sigma), PHIS)

    return routes, offsets


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(model=st.sampled_from(sorted(MODELS)), prior_sigma=sigmas)
def test_objectives_differ_by_sum_log_sqrt_2_pi_sigma_squared(model, prior_sigma):
    offsets = compiled(model)[1](prior_sigma)
    expected = sum(math.log(math.sqrt(2 * math.pi * s**2)) for s in np.asarray(prior_sigma))
    assert float(map_l2.objective_offset_expected(prior_sigma)) == pytest.approx(expected, rel=1e-14, abs=1e-14)
    # the objectives reach ~1e4 at these phi, so round-off in their difference is ~1e-12
    np.testing.assert_allclose(offsets, expected, rtol=0, atol=1e-9)


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(model=st.sampled_from(sorted(MODELS)), prior_sigma=sigmas)
def test_map_and_l2_minimizers_agree_to_optimizer_tolerance(model, prior_sigma):
    routes = compiled(model)[0](prior_sigma)
    assert bool(routes["map"]["converged"]) and bool(routes["l2"]["converged"])
    assert float(routes["max_abs_diff"]) <= float(routes["bound"]) + 1e-13
    # an independent optimality check: the gradient of the posterior vanishes at the L2 minimizer
    assert float(jnp.max(jnp.abs(posterior_gradient(model)(routes["l2"]["phi"], prior_sigma)))) <= 1e-10


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(prior_sigma=sigmas)
def test_gaussian_map_is_the_ridge_closed_form(prior_sigma):
    routes = compiled("gaussian")[0](prior_sigma)
    ridge = map_l2.ridge_closed_form(X_G, Y_G, NOISE_SIGMA, prior_sigma)
    chex.assert_trees_all_close(routes["map"]["phi"], ridge, atol=1e-10)
    chex.assert_trees_all_close(routes["l2"]["phi"], ridge, atol=1e-10)


def test_ridge_without_prior_is_the_least_squares_mle():
    """A very weak prior (sigma_j -> infinity) leaves the least-squares solution of Problem 7."""
    weak = map_l2.ridge_closed_form(X_G, Y_G, NOISE_SIGMA, jnp.array([1e8, 1e8]))
    design = np.stack([np.ones(X_G.size), np.asarray(X_G)], axis=1)
    numpy_lstsq = np.linalg.lstsq(design, np.asarray(Y_G), rcond=None)[0]
    np.testing.assert_allclose(linreg.minimizer(X_G, Y_G), numpy_lstsq, rtol=1e-12)
    np.testing.assert_allclose(weak, numpy_lstsq, rtol=1e-10)


@pytest.mark.slow
@settings(max_examples=20, deadline=None)
@given(phi=st.tuples(st.floats(-4, 4), st.floats(-4, 4)))
def test_likelihoods_from_densities_match_the_loss_formulas(phi):
    routes = {name: float(value) for name, value in likelihood_routes(jnp.array(phi)).items()}
    assert routes["bernoulli"] == pytest.approx(-routes["bce_loss"], rel=1e-12)
    assert routes["bernoulli"] == pytest.approx(routes["bernoulli_logpmf"], rel=1e-8)
    assert routes["gaussian"] == pytest.approx(-routes["gaussian_nll"], rel=1e-12)


@pytest.mark.slow
@settings(max_examples=20, deadline=None)
@given(phi=st.tuples(st.floats(-5, 5), st.floats(-5, 5)), prior_sigma=sigmas)
def test_log_prior_is_the_gaussian_density_and_its_gradient_is_the_l2_gradient(phi, prior_sigma):
    phi = jnp.array(phi)
    s = np.asarray(prior_sigma)
    by_hand = np.sum(-(np.asarray(phi) ** 2) / (2 * s**2) - np.log(np.sqrt(2 * np.pi * s**2)))
    assert float(LOG_PRIOR(phi, prior_sigma)) == pytest.approx(by_hand, rel=1e-12, abs=1e-12)
    # -d log Pr(phi) / dphi_j = phi_j / sigma_j^2 = 2 lambda_j phi_j with lambda_j = 1 / (2 sigma_j^2)
    chex.assert_trees_all_close(
        -LOG_PRIOR_GRADIENT(phi, prior_sigma),
        2 * map_l2.l2_coefficients(prior_sigma) * phi,
        rtol=1e-12,
    )


@pytest.mark.slow
def test_newton_solves_a_quadratic_in_one_step():
    matrix = jnp.array([[3.0, 1.0], [1.0, 2.0]])
    target = jnp.array([0.3, -0.7])
    result = map_l2.newton_minimize(lambda phi: 0.5 * phi @ matrix @ phi - target @ phi, jnp.zeros(2), 1e-12, 20)
    chex.assert_trees_all_close(result["phi"], jnp.linalg.solve(matrix, target), atol=1e-14)
    assert int(result["iterations"]) == 1 and bool(result["converged"])


# --------------------------------------------------------------------------------------------------------
# Config


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("prior_sigma=[0.0]", "prior_sigma"),
        ("prior_sigma=[1.0,2.0,3.0]", "prior_sigma"),
        ("prior_sigma=[-1.0,1.0]", "prior_sigma"),
        ("linear.noise_sigma=0.0", "linear.noise_sigma"),
        ("logistic.std=0.0", "logistic.std"),
        ("sigma_sweep.range=[1.0,0.1]", "sigma_sweep.range"),
        ("sigma_sweep.range=[0.0,1.0]", "sigma_sweep.range"),
        ("sigma_sweep.num=1", "sigma_sweep.num"),
        ("newton.tol=-1.0", "newton.tol"),
        ("offset_check.num_points=0", "offset_check.num_points"),
        ("offset_check.seed=-1", "offset_check.seed"),
        ("offset_check.seed=4294967296", "offset_check.seed"),
    ],
)
@pytest.mark.slow
def test_config_rejects_bad_values_naming_the_key(override, key):
    assert config_error("map_l2", override).key == key


def test_config_reads_the_shared_data_blocks():
    cfg = validated_config("map_l2")
    assert (cfg.logistic.n_per_class, cfg.logistic.seed) == (10, 0)
    assert (cfg.linear.n_points, cfg.linear.noise_sigma, cfg.linear.seed) == (20, 0.5, 1)


# --------------------------------------------------------------------------------------------------------
# The experiment, in-process

SMALL = ("offset_check.num_points=100", "sigma_sweep.num=9")


def test_run_checks_problem_2_and_draws_the_sweep(run_experiment):
    code, metrics, run_dir = run_experiment("map_l2", *SMALL, figures=True)
    assert code == 0 and metrics["status"] == "ok" and metrics["meta"]["x64_enabled"]
    for name in ("bernoulli", "gaussian"):
        assert metrics[name]["converged"]
        assert metrics[name]["max_abs_diff_map_vs_l2"] <= metrics[name]["strong_convexity_bound"] + 1e-13
    assert metrics["gaussian"]["max_abs_diff_map_vs_ridge"] < 1e-10
    assert metrics["objective_offset"] == pytest.approx(metrics["objective_offset_expected"], abs=1e-10)
    assert metrics["objective_offset_max_abs_err"] < 1e-9
    assert metrics["objective_offset_points"] == 200  # 100 points for each of the two models
    # default prior sigma = [1.0, 0.5]: log sqrt(2 pi) + log sqrt(2 pi / 4)
    assert metrics["objective_offset_expected"] == pytest.approx(math.log(2 * math.pi) - math.log(2), rel=1e-14)
    assert metrics["l2_coefficients"] == pytest.approx([0.5, 2.0])
    sweep = metrics["sweep"]
    assert len(sweep["sigmas"]) == 9
    assert max(sweep["strongest_prior_max_abs_map"].values()) < 0.05
    assert max(sweep["weakest_prior_max_abs_diff_map_vs_mle"].values()) < 1e-3
    assert set(metrics["plots"]) == {"map_vs_prior_sigma.png"}
    assert (run_dir / "map_vs_prior_sigma.png").stat().st_size > 0
    assert (run_dir / "plot_data.npz").is_file()
    assert sweep["converged"] == {"bernoulli": True, "gaussian": True}
    assert sweep["mle_converged"] == {"bernoulli": True, "gaussian": True} and metrics["warnings"] == []


def test_newton_stopped_short_is_stated_never_silent(run_experiment):
    code, metrics, _ = run_experiment("map_l2", *SMALL, "newton.max_iter=1")
    assert code == 0 and metrics["status"] == "ok"
    assert not metrics["bernoulli"]["converged"] and metrics["sweep"]["converged"]["bernoulli"] is False
    assert metrics["sweep"]["mle_converged"]["bernoulli"] is False and metrics["sweep"]["mle"]["bernoulli"] is None
    warned = " | ".join(metrics["warnings"])
    assert "bernoulli map: Newton's method did not reach newton.tol = 1e-12 at 10 of 10 prior sigmas" in warned
    assert "the configured prior_sigma sigma = [1.0, 0.5]" in warned
    assert "bernoulli: Newton's method for the MLE did not reach newton.tol" in warned


def test_separable_classes_have_no_mle_and_say_so(run_experiment):
    code, metrics, _ = run_experiment("map_l2", *SMALL, "logistic.mean0=-20.0", "logistic.mean1=20.0")
    assert code == 0 and metrics["sweep"]["mle"]["bernoulli"] is None
    assert any("the maximum-likelihood estimate does not exist" in w for w in metrics["warnings"])


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        (("prior_sigma=[1e-300]",), "prior_sigma=[1e-300] is not allowed: numbers sigma > 5.27e-155 (float64: the L2 "
                                    "coefficient 1/(2 sigma^2) overflows below)"),
        (("sigma_sweep.range=[1e-160,1.0]",), "sigma_sweep.range=[1e-160, 1.0] is not allowed: a range from sigma > "),
        (("prior_sigma=[1e-30]", "precision=float32"), "prior_sigma=[1e-30] is not allowed: numbers sigma > 3.83e-20 "
                                                       "(float32"),
    ],
)
def test_a_prior_whose_l2_coefficient_overflows_is_refused_naming_it(run_experiment, overrides, error):
    # once a run that exited 0 with status ok while its results were Infinity and NaN
    code, metrics, _ = run_experiment("map_l2", *SMALL, *overrides)
    assert code == 2 and metrics["status"] == "failed"
    assert metrics["error"].startswith(f"config error: {error}"), metrics["error"]


def test_a_non_finite_result_fails_the_run_naming_it(run_experiment):
    # 1/(2 sigma^2) is finite, but -log prior at the offset-check points (|phi| ~ 3) is not
    code, metrics, _ = run_experiment("map_l2", *SMALL, "prior_sigma=[3e-154]")
    assert code == 1 and metrics["status"] == "failed"
    assert metrics["error"].startswith("non-finite result: bernoulli.objective_offset = "), metrics["error"]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("offset_check.num_points=1000000000", "offset_check.num_points"),  # 1e9 x 40 data points, ~1 TB
        ("sigma_sweep.num=1000000000", "sigma_sweep.num"),
        ("newton.max_iter=100000000000", "newton.max_iter"),  # the MLE's Newton keeps its path
    ],
)
def test_a_config_over_the_memory_budget_is_refused_before_any_array(run_experiment, override, key):
    assert_refused_over_budget(run_experiment("map_l2", override), key)


def test_sweep_figure_draws_without_a_bernoulli_mle():
    """Separable classes have no finite MLE: the run keeps no mle_bernoulli and the figure leaves its line out."""
    sigmas = np.logspace(-2, 2, 9)
    path = np.stack([np.tanh(sigmas), np.tanh(2 * sigmas)], axis=1)
    data = {"sigmas": sigmas, "map_path_bernoulli": path, "map_path_gaussian": path, "ridge_path": path,
            "mle_gaussian": path[-1]}
    (figure,) = FIGURES.figures
    fig = figure.draw(data, None)
    left, right = (ax.get_legend_handles_labels()[1] for ax in fig.axes)
    assert "maximum likelihood φ0" not in left and "maximum likelihood φ0" in right
