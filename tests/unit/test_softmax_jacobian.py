"""Problem 1: the analytic softmax Jacobian against JAX's autodiff and a 250-digit Decimal oracle."""

from __future__ import annotations

from decimal import Decimal, getcontext

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_refused_over_budget, experiment_module, validated_config
from hypothesis import given, settings
from hypothesis import strategies as st

from gradlab.problems import softmax
from gradlab.problems.numerics import max_rel_error
from gradlab.runner.config import ConfigError

SATURATED = [-3.0, 1.0, 100.0, 5.0, -1.0]


def jacobian_oracle(logits) -> np.ndarray:
    """J_ij = s_i (delta_ij - s_j) in 250-digit decimal arithmetic.

    1 - s_i loses as many digits as it has leading zeros (up to ~130 for a logit gap of 300), so the
    precision must exceed that by the 16+ digits the comparison needs.
    """
    getcontext().prec = 250
    exps = [Decimal(float(z)).exp() for z in logits]
    total = sum(exps)
    s = [e / total for e in exps]
    n = len(s)
    return np.array([[float(s[i] * ((1 if i == j else 0) - s[j])) for j in range(n)] for i in range(n)])


def elementwise_rel_err(value, reference) -> float:
    value, reference = np.asarray(value), np.asarray(reference)
    normal = np.abs(reference) >= np.finfo(np.float64).tiny
    assert np.all(value[~normal] == 0) or np.all(np.abs(value[~normal]) < np.finfo(np.float64).tiny)
    return float(np.max(np.abs(value[normal] - reference[normal]) / np.abs(reference[normal])))


# few distinct lengths: every new shape costs a compilation
logit_vectors = st.lists(st.floats(-30, 30, allow_nan=False), min_size=2, max_size=5)
jax_nn_jacobians = [jax.jit(transform(jax.nn.softmax)) for transform in (jax.jacfwd, jax.jacrev)]


@pytest.mark.slow
@settings(max_examples=20, deadline=None)
@given(logits=logit_vectors)
def test_matches_jax_nn_softmax_jacobians_and_oracle(logits):
    z = jnp.asarray(logits)
    jacobian = softmax.softmax_jacobian_analytic(z)
    # jax.nn.softmax is an independent route; away from saturation it is accurate to round-off
    for jax_nn_jacobian in jax_nn_jacobians:
        np.testing.assert_allclose(jacobian, jax_nn_jacobian(z), rtol=0, atol=1e-15)
    assert elementwise_rel_err(jacobian, jacobian_oracle(logits)) < 1e-12


@pytest.mark.slow
@settings(max_examples=20, deadline=None)
@given(
    others=st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=4),
    gap=st.floats(40, 300),
    position=st.integers(0, 4),
)
def test_saturated_logits_keep_tiny_entries(others, gap, position):
    logits = list(others)
    logits.insert(position % (len(others) + 1), max(others) + gap)
    z = jnp.asarray(logits)
    oracle = jacobian_oracle(logits)
    jacobian = softmax.softmax_jacobian_analytic(z)
    assert elementwise_rel_err(jacobian, oracle) < 1e-12
    for mode in ("jacfwd", "jacrev"):
        assert elementwise_rel_err(softmax.softmax_jacobian_autodiff(z, mode), oracle) < 1e-12


@pytest.mark.slow
def test_naive_diagonal_collapses_and_the_checks_catch_it():
    """s_k (1 - s_k) rounds to 0 for the dominant class; the relative-error check must flag that."""
    z = jnp.asarray(SATURATED)
    s = np.asarray(softmax.softmax_stable(z))
    naive = np.diag(s * (1 - s)) - np.outer(s, s) * (1 - np.eye(5))  # the textbook formula, in NumPy
    assert float(naive[2, 2]) == 0.0
    assert float(max_rel_error(naive, softmax.softmax_jacobian_autodiff(z, "jacfwd"))) == pytest.approx(1.0)
    assert int(softmax.collapsed_entries(naive, jacobian_oracle(SATURATED))) == 1
    # the analytic entry keeps the true value 1 - s_k = sum of the other probabilities, about 5.64e-42
    kept = float(softmax.softmax_jacobian_analytic(z)[2, 2])
    assert kept == pytest.approx(jacobian_oracle(SATURATED)[2, 2], rel=1e-14)
    assert 5e-42 < kept < 6e-42


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(logits=st.lists(st.floats(-200, 200, allow_nan=False), min_size=2, max_size=5))
def test_structure_symmetric_rows_sum_to_zero(logits):
    report = softmax.jacobian_report(jnp.asarray(logits))
    jacobian = np.asarray(report["jacobian"])
    assert bool(report["symmetric"])
    np.testing.assert_array_equal(jacobian, jacobian.T)
    scale = np.abs(jacobian).max(axis=1)
    assert np.all(np.abs(jacobian.sum(axis=1)) <= 4 * np.finfo(np.float64).eps * scale)
    assert np.all(np.diag(jacobian) >= 0)


def test_default_run_in_process(run_experiment):
    code, metrics, run_dir = run_experiment("softmax_jacobian", figures=True)
    assert code == 0 and metrics["status"] == "ok"
    for case in (metrics, metrics["saturated"]):
        for mode in ("jacfwd", "jacrev"):
            assert case["max_abs_err"][mode] < 1e-15
            assert case["max_rel_err"][mode] < 1e-12
        assert case["symmetric"] is True
        assert case["row_sum_max_abs"] < 1e-15
    assert np.asarray(metrics["jacobian"]).shape == (6, 6)
    assert np.all(np.asarray(metrics["saturated"]["jacobian"]) != 0)
    assert metrics["saturated"]["jax_nn_softmax"]["collapsed_entries"] >= 0
    assert "softmax_jacobian.png" in metrics["plots"] and (run_dir / "softmax_jacobian.png").is_file()


def test_given_logits_in_process(run_experiment):
    code, metrics, run_dir = run_experiment("softmax_jacobian", "logits=[0.0,0.0]", "saturated_logits=null",
                                            figures=True)
    assert code == 0, metrics.get("error")
    np.testing.assert_allclose(metrics["jacobian"], [[0.25, -0.25], [-0.25, 0.25]], rtol=1e-15)
    assert "saturated" not in metrics
    assert (run_dir / "softmax_jacobian.png").is_file()


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("logits=[1.0,nan]", "logits"),
        ("logits=[1.0]", "logits"),
        ("saturated_logits=[]", "saturated_logits"),
        ("num_logits=1", "num_logits"),
        ("logit_scale=0.0", "logit_scale"),
        ("logits=[a,b]", "logits"),
        ("seed=-1", "seed"),
        ("seed=4294967296", "seed"),
    ],
)
@pytest.mark.slow
def test_config_errors_name_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        validated_config("softmax_jacobian", override)
    assert err.value.key.startswith(key) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (("num_logits=100000",), "num_logits"),  # (n, n, n) autodiff intermediates: a native XLA abort once
        (("saturated_logits=null", "memory_budget_gb=0.001", "logits=[" + ",".join(["0.5"] * 200) + "]"), "logits"),
    ],
)
def test_too_many_logits_are_refused_before_any_array(run_experiment, overrides, key):
    assert_refused_over_budget(run_experiment("softmax_jacobian", *overrides), key)


@pytest.mark.slow
def test_the_memory_estimate_grows_as_the_cube_of_the_logits():
    def estimate(n: int) -> float:
        cfg = validated_config("softmax_jacobian", f"num_logits={n}", "saturated_logits=null")
        return experiment_module("softmax_jacobian").memory_estimate(cfg)["num_logits"]

    small, large = estimate(500), estimate(1000)
    # measured peaks: 2.2 GB at n = 500, 15.6 GB at n = 1000 (~2 n^3 float64)
    assert 1.5e9 < small < 4e9 and 12e9 < large < 30e9
