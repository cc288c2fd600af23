"""The fused loss-and-gradient of the summed BCE (Problem 8 ii, iii) and make_train's use of it."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradlab.problems import logistic
from gradlab.problems.training import make_train


def plain_bce(phi, x, y):
    """The textbook formula, sum_i y softplus(-z) + (1 - y) softplus(z), z = phi0 + phi1 x: an independent route."""
    z = phi[0] + phi[1] * x
    return jnp.sum(y * jax.nn.softplus(-z) + (1 - y) * jax.nn.softplus(z))


LOGITS = st.one_of(st.sampled_from([0.0, -0.0, 1e3, -1e3, 30.0, -30.0, 745.0, -745.0]),
                   st.floats(-1e3, 1e3, allow_nan=False))
LABELS = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))


def _close(actual, expected, z):
    """Equal to round-off: relative 1e-13 of each entry, or the summed terms' round-off, 8 eps sum_i (1 + |z_i|):
    a term (y z, softplus(+-z), (p - y) x with x = z) carries a few eps of its magnitude, up to |z_i| + log 2, and
    the sum adds them. (A fixed 1e-13 failed at z = 1000, y = 1 - 2^-53: the loss 0.69 differed by 8.8e-14, one
    rounding of y z.)"""
    (loss, grad), (loss_ref, grad_ref) = actual, expected
    bound = 8 * np.finfo(np.float64).eps * float(np.sum(1 + np.abs(z)))
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-13, atol=bound)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-13, atol=bound)


FUSED, REFERENCE = jax.jit(logistic.bce_value_and_grad), jax.jit(jax.value_and_grad(plain_bce))


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(pairs=st.lists(st.tuples(LOGITS, LABELS), min_size=4, max_size=4))  # one shape: compiled once
def test_fused_loss_and_gradient_match_autodiff_of_the_plain_formula(pairs):
    z, y = (jnp.array(v, dtype=jnp.float64) for v in zip(*pairs, strict=True))
    phi = jnp.array([0.0, 1.0])  # z = x: the pairs are the logits themselves
    _close(FUSED(phi, z, y), REFERENCE(phi, z, y), z)


AUTODIFF = jax.jit(jax.value_and_grad(logistic.bce_loss))


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), phi0=st.floats(-5, 5), phi1=st.floats(-5, 5))
def test_fused_matches_autodiff_of_the_library_loss_on_sampled_data(seed, phi0, phi1):
    x, y = logistic.sample_data(jax.random.key(seed), 10, -1.0, 1.0, 1.0)
    phi = jnp.array([phi0, phi1])
    chex.assert_trees_all_close(FUSED(phi, x, y), AUTODIFF(phi, x, y), rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_fused_values_at_the_edges():
    one = jnp.ones(1)
    loss, grad = logistic.bce_value_and_grad(jnp.array([0.0, 0.0]), one, jnp.zeros(1))
    assert float(loss) == np.log(2) and np.asarray(grad).tolist() == [0.5, 0.5]  # z = 0: sig(0) = 1/2 exactly
    for z, label, expected in ((1e3, 1.0, 0.0), (-1e3, 0.0, 0.0), (1e3, 0.0, 1e3), (-1e3, 1.0, 1e3)):
        loss, grad = logistic.bce_value_and_grad(jnp.array([z, 0.0]), one, label * one)
        assert float(loss) == expected and np.all(np.isfinite(grad))
    # tiny losses keep their value: the large terms cancel before log1p(e) is added
    loss, _ = logistic.bce_value_and_grad(jnp.array([100.0, 0.0]), one, one)
    np.testing.assert_allclose(float(loss), np.exp(-100.0), rtol=1e-15)


@pytest.mark.slow
def test_make_train_uses_the_fused_step_and_records_the_same_losses():
    x, y = logistic.sample_data(jax.random.key(3), 15, -1.0, 1.0, 1.0)
    args = (jnp.zeros(2), 0.05, 0.0, x, y)
    fused = jax.jit(make_train(logistic.bce_loss, "sgd", 25))(*args)
    autodiff = jax.jit(make_train(logistic.bce_loss, "sgd", 25,
                                  value_and_grad=jax.value_and_grad(logistic.bce_loss)))(*args)
    assert logistic.bce_loss.value_and_grad is logistic.bce_value_and_grad
    chex.assert_trees_all_close(fused, autodiff, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fused.losses[0], logistic.bce_loss(jnp.zeros(2), x, y), rtol=1e-15)
    # the step is traced once: the fused function, not jax.grad, computes the gradient
    assert "log1p" in str(jax.make_jaxpr(make_train(logistic.bce_loss, "sgd", 2))(*args))


@pytest.mark.slow
def test_make_train_stays_generic_for_other_losses():
    """Least squares (as weight_decay trains it): autodiff by default, or a value_and_grad given by hand."""
    x = jnp.linspace(-1.0, 1.0, 9)
    y = 0.5 - 2.0 * x

    def squares(phi, x, y):
        return 0.5 * jnp.sum((phi[0] + phi[1] * x - y) ** 2)

    def by_hand(phi, x, y):
        r = phi[0] + phi[1] * x - y
        return 0.5 * jnp.sum(r**2), jnp.stack([jnp.sum(r), jnp.sum(r * x)])

    args = (jnp.zeros(2), 0.1, 0.0, x, y)
    auto = jax.jit(make_train(squares, "sgd", 300))(*args)
    hand = jax.jit(make_train(squares, "sgd", 300, value_and_grad=by_hand))(*args)
    chex.assert_trees_all_close(auto, hand, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(auto.phi, [0.5, -2.0], atol=1e-6)
    assert float(auto.grad_norm) < 1e-6
