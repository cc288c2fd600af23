"""Problem 3: weight decay is SGD on L + lambda/(2 alpha) sum phi^2 (checked with optax); AdamW is not."""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import REPO, experiment_module
from hypothesis import given, settings
from hypothesis import strategies as st

from gradlab.problems import regularization as reg
from gradlab.runner.config import ConfigError, validate
from gradlab.problems.linreg import least_squares_loss
from gradlab.problems.linreg import sample_data as sample_linear_data
from gradlab.problems.logistic import bce_loss, sample_data

jax.config.update("jax_enable_x64", True)

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
# Config and CLI


def _schema():
    return experiment_module("weight_decay").Config


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": -0.1}, "alpha"),
        ({"lam": 1.0}, "lam"),
        ({"lam": -0.01}, "lam"),
        ({"steps": 0}, "steps"),
        ({"model": "mlp"}, "model"),
        ({"init": [1.0]}, "init"),
        ({"momentum": 1.0}, "momentum"),
        ({"adam": {"b2": 1.0}}, "adam.b2"),
    ],
)
def test_schema_rejects_bad_values_naming_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        validate(override, _schema())
    assert err.value.key == key


def test_yaml_defaults_equal_schema_defaults():
    from omegaconf import OmegaConf

    from gradlab.runner.config import to_dict

    raw = OmegaConf.to_container(OmegaConf.load(REPO / "configs" / "weight_decay.yaml"))
    raw.pop("defaults")
    assert to_dict(validate(raw, _schema())) == to_dict(_schema()())


def test_cli_bad_config_is_one_line_and_exit_2(cli):
    proc, metrics = cli("weight_decay", "lam=1.5")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "lam" in lines[0] and "not allowed" in lines[0], proc.stderr
    assert metrics["status"] == "failed" and "lam" in metrics["error"]


SMALL = ("steps=40", "contour_grid=20", "lam=0.01")
COMPARED = ("sgd", "momentum", "adam", "minimizer_l2", "penalty_grad_max_abs_err", "optax_weight_decay")


@pytest.fixture(scope="module")
def default_model_run(tmp_path_factory):
    """One CLI run of the default (logistic) model, shared by the end-to-end and reproducibility tests."""
    from conftest import read_metrics, run_cli

    out_dir = tmp_path_factory.mktemp("weight_decay") / "run"
    proc = run_cli("weight_decay", out_dir, *SMALL, "alpha=0.01")
    return proc, read_metrics(out_dir), out_dir


@pytest.mark.slow
def test_cli_end_to_end(default_model_run):
    proc, metrics, out_dir = default_model_run
    assert proc.returncode == 0, proc.stderr
    assert metrics["status"] == "ok" and metrics["meta"]["x64_enabled"]
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
    assert all((out_dir / name).stat().st_size > 0 for name in metrics["plots"])


@pytest.mark.slow
def test_cli_sweep_over_alpha_and_lambda_reproduces_the_single_run(default_model_run, tmp_path):
    _, single, _ = default_model_run
    sweep_dir = tmp_path / "sweep"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "experiments" / "weight_decay.py"),
            "-m",
            f"hydra.sweep.dir={sweep_dir}",
            *SMALL,
            "alpha=0.01,0.005",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    runs = [json.loads((sweep_dir / str(job) / "metrics.json").read_text()) for job in range(2)]
    assert [run["config"]["alpha"] for run in runs] == [0.01, 0.005]
    assert [run["optax_weight_decay"] for run in runs] == pytest.approx([1.0, 2.0])
    assert all(run["sgd"]["within_roundoff_manual_vs_l2"] for run in runs)
    # same config in another process: the same numbers
    for section in COMPARED:
        assert runs[0][section] == single[section], section
    assert runs[1]["sgd"] != single["sgd"]
