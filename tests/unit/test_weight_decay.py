"""Problem 3: weight decay is SGD on L + lambda/(2 alpha) sum phi^2 (checked with optax); AdamW is not."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import assert_refused_over_budget, config_error, validated_config
from hypothesis import given, settings
from hypothesis import strategies as st

from gradlab.problems import regularization as reg
from gradlab.problems.linreg import least_squares_loss
from gradlab.problems.linreg import sample_data as sample_linear_data
from gradlab.problems.logistic import bce_loss, sample_data

STEPS = 60
X_LOGISTIC, Y_LOGISTIC = sample_data(jax.random.PRNGKey(0), 10, -1.0, 1.0, 1.0)
X_LINEAR, Y_LINEAR = sample_linear_data(jax.random.PRNGKey(1), 20, 0.5, 1.5, 0.5, -2.0, 2.0)
LOSSES = {
    "logistic": lambda phi: bce_loss(phi, X_LOGISTIC, Y_LOGISTIC),
    "least_squares": lambda phi: least_squares_loss(phi, X_LINEAR, Y_LINEAR),
}


@functools.cache
def compiled_runs(model: str):
    """All trajectories for one model, compiled once; alpha, lam and the start are traced."""
    return jax.jit(
        lambda phi, alpha, lam: reg.weight_decay_runs(LOSSES[model], phi, alpha, lam, STEPS, 0.9, 0.9, 0.999, 1e-8)
    )


def roundoff(runs: dict) -> float:
    """1000 machine epsilons times the size of the iterates: the 'agree to round-off' threshold."""
    return 1e3 * np.finfo(np.float64).eps * max(1.0, max(float(jnp.max(jnp.abs(p))) for p in runs.values()))


def max_diff(runs: dict, run: str, reference: str) -> float:
    return float(jnp.max(reg.per_step_difference(runs[run], runs[reference])))


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(
    model=st.sampled_from(sorted(LOSSES)),
    alpha=st.floats(1e-3, 0.015),
    lam=st.floats(0.0, 0.2),
    start=st.tuples(st.floats(-3, 3), st.floats(-3, 3)),
)
def test_sgd_weight_decay_equals_sgd_on_l2_loss(model, alpha, lam, start):
    runs = compiled_runs(model)(jnp.array(start), alpha, lam)
    tolerance = roundoff(runs)
    assert max_diff(runs, "sgd_manual", "sgd_l2") <= tolerance
    assert max_diff(runs, "sgd_optax_decay", "sgd_l2") <= tolerance
    # coupled decay (added to the gradient before the momentum buffer) is still L2
    assert max_diff(runs, "momentum_decay", "momentum_l2") <= tolerance


@settings(max_examples=10, deadline=None)
@given(model=st.sampled_from(sorted(LOSSES)), alpha=st.floats(5e-3, 0.015), lam=st.floats(0.01, 0.2))
def test_decoupled_decay_leaves_the_l2_path(model, alpha, lam):
    runs = compiled_runs(model)(jnp.array([-2.0, 2.5]), alpha, lam)
    assert max_diff(runs, "adamw", "adam_l2") > 1e-4
    assert max_diff(runs, "momentum_decoupled", "momentum_l2") > 1e-4


@pytest.mark.slow
def test_without_decay_adamw_is_adam_so_the_gap_is_the_decay():
    runs = compiled_runs("logistic")(jnp.array([-2.0, 2.5]), 0.01, 0.0)
    assert max_diff(runs, "adamw", "adam_l2") <= roundoff(runs)
    assert max_diff(runs, "momentum_decoupled", "momentum_l2") <= roundoff(runs)


def test_manual_update_is_the_problem_3_formula_step_by_step():
    alpha, lam = 0.01, 0.05
    loss = LOSSES["least_squares"]
    path = reg.manual_weight_decay_trajectory(loss, jnp.array([1.0, -1.0]), alpha, lam, 3)
    phi = np.array([1.0, -1.0])
    for t in range(3):
        residual = phi[0] + phi[1] * np.asarray(X_LINEAR) - np.asarray(Y_LINEAR)
        gradient = 2 * np.array([residual.sum(), (residual * np.asarray(X_LINEAR)).sum()])
        phi = (1 - lam) * phi - alpha * gradient
        np.testing.assert_allclose(path[t + 1], phi, rtol=1e-13)


@jax.jit
def penalty_gradient_routes(phi, lam, alpha):
    """(jax.grad, the hand derivation (lam/alpha) phi, central differences) of lam/(2 alpha) sum phi^2."""
    h = 1e-5
    steps = h * jnp.eye(phi.size)
    central = jax.vmap(
        lambda step: (reg.l2_penalty(phi + step, lam, alpha) - reg.l2_penalty(phi - step, lam, alpha)) / (2 * h)
    )(steps)
    return jax.grad(reg.l2_penalty)(phi, lam, alpha), reg.l2_penalty_gradient(phi, lam, alpha), central


@settings(max_examples=20, deadline=None)
@given(
    alpha=st.floats(1e-3, 1.0),
    lam=st.floats(0.0, 0.99),
    phi=st.tuples(st.floats(-10, 10), st.floats(-10, 10), st.floats(-10, 10)),
)
def test_penalty_gradient_is_lambda_over_alpha_phi(alpha, lam, phi):
    autodiff, by_hand, central = penalty_gradient_routes(jnp.array(phi), lam, alpha)
    scale = max(1.0, float(jnp.max(jnp.abs(by_hand))))
    chex.assert_trees_all_close(autodiff, by_hand, atol=1e-12 * scale)
    # a slip such as (lambda/2) phi instead of (lambda/alpha) phi would be far outside this
    chex.assert_trees_all_close(central, by_hand, atol=1e-6 * scale)


@pytest.mark.slow
def test_penalty_gradient_error_over_a_batch_is_tiny():
    phis = jax.random.normal(jax.random.PRNGKey(3), (50, 2))
    assert float(reg.penalty_gradient_error(phis, 0.004, 0.02)) <= 1e-13


@settings(max_examples=10, deadline=None)
@given(alpha=st.floats(1e-3, 1.0), lam=st.floats(0.0, 0.99))
def test_optax_weight_decay_mapping_shrinks_by_one_minus_lambda(alpha, lam):
    """With zero gradient, one adamw step and one add_decayed_weights+sgd step are phi <- (1-lam) phi."""
    phi = jnp.array([0.7, -1.3])
    decay = reg.optax_weight_decay(lam, alpha)
    assert decay * alpha == pytest.approx(lam, rel=1e-14)
    assert reg.weight_decay_mapping(lam, alpha)["l2_coefficient"] == pytest.approx(lam / (2 * alpha))
    for optimizer in (
        optax.adamw(alpha, weight_decay=decay),
        optax.chain(optax.add_decayed_weights(decay), optax.sgd(alpha)),
    ):
        updates, _ = optimizer.update(jnp.zeros(2), optimizer.init(phi), phi)
        np.testing.assert_allclose(optax.apply_updates(phi, updates), (1 - lam) * phi, rtol=1e-13)


# --------------------------------------------------------------------------------------------------------
# Config


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("alpha=0.0", "alpha"),
        ("alpha=-0.1", "alpha"),
        ("lam=1.0", "lam"),
        ("lam=-0.01", "lam"),
        ("steps=0", "steps"),
        ("model=mlp", "model"),
        ("init=[1.0]", "init"),
        ("momentum=1.0", "momentum"),
        ("adam.b2=1.0", "adam.b2"),
        ("newton.tol=0.0", "newton.tol"),
        ("least_squares.x_range=[1.0,-1.0]", "least_squares.x_range"),
    ],
)
def test_config_rejects_bad_values_naming_the_key(override, key):
    assert config_error("weight_decay", override).key == key


def test_config_reads_the_shared_data_blocks():
    cfg = validated_config("weight_decay")
    assert (cfg.logistic.n_per_class, cfg.logistic.mean0, cfg.logistic.seed) == (10, -1.0, 0)
    assert (cfg.least_squares.n_points, cfg.least_squares.slope, cfg.least_squares.seed) == (20, 1.5, 1)
    assert (cfg.newton.tol, cfg.newton.max_iter) == (1e-12, 100)


# --------------------------------------------------------------------------------------------------------
# The experiment, in-process

SMALL = ("steps=40", "contour_grid=20", "lam=0.01")


def test_run_sgd_decay_is_l2_adamw_is_not(run_experiment):
    code, metrics, run_dir = run_experiment("weight_decay", *SMALL, "alpha=0.01", figures=True)
    assert code == 0 and metrics["status"] == "ok" and metrics["meta"]["x64_enabled"]
    assert metrics["config"]["model"] == "logistic"
    assert metrics["sgd"]["max_abs_diff_manual_vs_l2"] <= metrics["roundoff_tolerance"] < 1e-11
    assert metrics["sgd"]["max_abs_diff_optax_decay_vs_l2"] <= metrics["roundoff_tolerance"]
    assert metrics["momentum"]["max_abs_diff_decay_vs_l2"] <= metrics["roundoff_tolerance"]
    assert metrics["adam"]["max_abs_diff_adamw_vs_l2"] > 1e-3
    assert metrics["momentum"]["max_abs_diff_decoupled_vs_l2"] > 1e-3
    assert metrics["penalty_grad_max_abs_err"] < 1e-12
    assert metrics["optax_weight_decay"] == pytest.approx(1.0)  # lam / alpha = 0.01 / 0.01
    assert metrics["mapping"]["l2_coefficient"] == pytest.approx(0.5)
    assert set(metrics["adam"]["final_params"]) == {"l2", "adamw"}
    assert set(metrics["sgd"]["final_params"]) == {"manual", "l2", "optax_decay"}
    assert metrics["minimizer_l2"]["converged"]
    assert set(metrics["plots"]) == {"trajectories_over_loss.png", "per_step_difference.png"}
    assert all((run_dir / name).stat().st_size > 0 for name in metrics["plots"])


def test_run_least_squares_model(run_experiment):
    code, metrics, _ = run_experiment("weight_decay", *SMALL, "model=least_squares", "alpha=0.005")
    assert code == 0, metrics.get("error")
    assert metrics["sgd"]["within_roundoff_manual_vs_l2"] and metrics["sgd"]["within_roundoff_optax_decay_vs_l2"]
    assert metrics["momentum"]["within_roundoff_decay_vs_l2"]
    assert metrics["minimizer_l2"]["converged"]


def test_run_that_diverges_fails_naming_the_run_and_alpha(run_experiment):
    code, metrics, _ = run_experiment("weight_decay", "steps=200", "model=least_squares", "alpha=0.9")
    assert code == 1 and metrics["status"] == "failed"
    assert "diverged" in metrics["error"] and "alpha=0.9" in metrics["error"]


def test_newton_stopped_short_is_a_warning_and_a_flag(run_experiment):
    code, metrics, _ = run_experiment("weight_decay", *SMALL, "newton.max_iter=1")
    assert code == 0 and metrics["minimizer_l2"]["converged"] is False
    (warning,) = metrics["warnings"]
    assert warning.startswith("Newton's method for the minimizer of L~ did not reach newton.tol = 1e-12")


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (("steps=1000000000",), "steps"),  # eight trajectories of 1e9 steps: ~900 GB
        (("contour_grid=10000000",), "contour_grid"),
        (("model=least_squares", "least_squares.n_points=100000000000"), "least_squares.n_points"),
    ],
)
def test_a_config_over_the_memory_budget_is_refused_before_any_array(run_experiment, overrides, key):
    assert_refused_over_budget(run_experiment("weight_decay", *overrides), key)
