"""Problem 8 formulas against independent routes: jax.grad, jax.hessian, finite differences, plain Python."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradlab.problems import logistic
from gradlab.problems.training import first_non_finite_step, make_train

finite = st.floats(-5, 5, allow_nan=False)


# the autodiff routes and the loss for finite differences, jitted (see docs/adding-an-experiment.md)
AUTODIFF_GRADIENT = jax.jit(jax.grad(logistic.bce_loss))
AUTODIFF_HESSIAN = jax.jit(jax.hessian(logistic.bce_loss))
LOSS = jax.jit(logistic.bce_loss)


def _data(seed: int, n: int = 20):
    return logistic.sample_data(jax.random.key(seed), n // 2, -1.0, 1.0, 1.0)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), phi0=finite, phi1=finite)
def test_gradient_matches_autodiff_and_finite_differences(seed, phi0, phi1):
    x, y = _data(seed)
    phi = jnp.array([phi0, phi1])
    analytic = logistic.bce_gradient(phi, x, y)
    chex.assert_trees_all_close(analytic, AUTODIFF_GRADIENT(phi, x, y), atol=1e-11)
    h = 1e-6
    central = jnp.array([
        (LOSS(phi + h * e, x, y) - LOSS(phi - h * e, x, y)) / (2 * h) for e in jnp.eye(2)
    ])
    chex.assert_trees_all_close(analytic, central, atol=1e-6)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), phi0=finite, phi1=finite)
def test_hessian_matches_autodiff_and_is_psd(seed, phi0, phi1):
    x, y = _data(seed)
    phi = jnp.array([phi0, phi1])
    analytic = logistic.bce_hessian(phi, x, y)
    chex.assert_trees_all_close(analytic, AUTODIFF_HESSIAN(phi, x, y), atol=1e-11)
    assert logistic.min_eigenvalue(analytic) > 0


@pytest.mark.parametrize("z", [-1000.0, -700.0, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 700.0, 1000.0])
@pytest.mark.parametrize("label", [0.0, 1.0])
def test_loss_is_finite_and_accurate_at_large_logits(z, label):
    value = float(logistic.bce_loss(jnp.array([z, 0.0]), jnp.ones(1), jnp.array([label])))
    reference = logistic.bce_reference(z, label)
    assert np.isfinite(value)
    assert value == pytest.approx(reference, rel=1e-14, abs=1e-300)


def test_loss_matches_naive_formula_where_naive_is_safe():
    x, y = _data(3)
    phi = jnp.array([0.3, -1.2])
    p = 1 / (1 + jnp.exp(-(phi[0] + phi[1] * x)))
    naive = -jnp.sum(y * jnp.log(p) + (1 - y) * jnp.log(1 - p))
    assert float(logistic.bce_loss(phi, x, y)) == pytest.approx(float(naive), rel=1e-13)


def test_sample_data_shapes_labels_and_seed():
    x, y = logistic.sample_data(jax.random.key(0), 10, -1.0, 1.0, 1.0)
    assert x.shape == y.shape == (20,)
    assert set(np.asarray(y).tolist()) == {0.0, 1.0}
    chex.assert_trees_all_equal(x, logistic.sample_data(jax.random.key(0), 10, -1.0, 1.0, 1.0)[0])
    assert not np.allclose(x, logistic.sample_data(jax.random.key(1), 10, -1.0, 1.0, 1.0)[0])


@pytest.mark.slow
def test_newton_reaches_zero_gradient_in_a_handful_of_iterations():
    x, y = _data(0)
    result = jax.jit(logistic.newton, static_argnames="max_iter")(jnp.zeros(2), x, y, 1e-10, max_iter=50)
    assert int(result.iterations) <= 10
    assert float(jnp.linalg.norm(AUTODIFF_GRADIENT(result.phi, x, y))) < 1e-10
    chex.assert_trees_all_close(result.path[int(result.iterations)], result.phi)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_scanned_training_matches_a_python_loop_and_reaches_newton(optimizer):
    import optax

    from gradlab.problems.training import make_optimizer

    x, y = _data(1)
    steps, lr = 1000, 0.05
    traj = jax.jit(make_train(logistic.bce_loss, optimizer, steps))(jnp.zeros(2), lr, 0.9, x, y)
    opt = make_optimizer(optimizer, lr, 0.9)

    @jax.jit
    def step(phi, state):  # the loop's step, jitted; the loop stays in Python
        updates, state = opt.update(AUTODIFF_GRADIENT(phi, x, y), state, phi)
        return optax.apply_updates(phi, updates), state

    phi, state = jnp.zeros(2), opt.init(jnp.zeros(2))
    for _ in range(steps):
        phi, state = step(phi, state)
    chex.assert_trees_all_close(traj.phi, phi, atol=1e-12)
    newton = logistic.newton(jnp.zeros(2), x, y, 1e-12, max_iter=50)
    chex.assert_trees_all_close(traj.phi, newton.phi, atol=1e-3)


def test_first_non_finite_step():
    losses = jnp.array([1.0, 0.5, jnp.nan, jnp.nan])
    path = jnp.zeros((5, 2))
    assert first_non_finite_step(losses, path) == 2
    assert first_non_finite_step(jnp.ones(4), path) is None
    assert first_non_finite_step(jnp.ones(4), path.at[4, 0].set(jnp.inf)) == 4


@pytest.mark.slow
def test_autodiff_is_right_where_some_logits_are_exactly_zero():
    """max(z, 0) and |z| have kinks at z = 0; the loss's explicit derivative must still give sig(0) = 1/2."""
    x, y = jnp.array([-1.0, 0.0, 1.0, 2.0]), jnp.array([0.0, 1.0, 1.0, 0.0])
    for phi in (jnp.zeros(2), jnp.array([0.5, 0.0]), jnp.array([-1.0, 1.0])):  # z = 0 at one or all points
        chex.assert_trees_all_close(AUTODIFF_GRADIENT(phi, x, y), logistic.bce_gradient(phi, x, y))
        chex.assert_trees_all_close(AUTODIFF_HESSIAN(phi, x, y), logistic.bce_hessian(phi, x, y))


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(x=st.lists(st.sampled_from([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]), min_size=1, max_size=6),
       labels=st.lists(st.sampled_from([0.0, 1.0]), min_size=6, max_size=6))
def test_the_traced_separability_test_agrees_with_separation(x, labels):
    """is_separable (jnp, vmappable) against separation (NumPy, case by case), ties and empty classes included."""
    y = labels[: len(x)]
    traced = bool(jax.jit(logistic.is_separable)(jnp.array(x), jnp.array(y)))
    assert traced == (logistic.separation(np.array(x), np.array(y)) is not None)


def test_the_textbook_loss_checks_the_custom_rule_and_a_planted_wrong_rule_is_seen():
    """bce_loss_textbook (no custom rule) agrees with the analytic gradient; a loss whose custom JVP rule is wrong
    (sig(z) + y instead of sig(z) - y) gives a jax.grad that the textbook route tells apart."""
    x, y = np.linspace(-2.0, 2.0, 8), np.array([0, 0, 1, 0, 1, 1, 0, 1.0])

    @jax.custom_jvp
    def wrong_terms(z, labels):
        return logistic.bce_terms(z, labels)

    wrong_terms.defjvp(lambda p, t: (wrong_terms(*p), (logistic.sigmoid(p[0]) + p[1]) * t[0] - p[0] * t[1]))

    @jax.jit
    def gradients(phi):
        return (jax.grad(logistic.bce_loss_textbook)(phi, x, y), logistic.bce_gradient(phi, x, y),
                AUTODIFF_GRADIENT(phi, x, y),
                jax.grad(lambda p: jnp.sum(wrong_terms(logistic.logits(p, x), y)))(phi))

    textbook, analytic, custom, wrong = gradients(jnp.array([0.3, -0.8]))
    np.testing.assert_allclose(analytic, textbook, rtol=0, atol=1e-13)
    np.testing.assert_allclose(custom, textbook, rtol=0, atol=1e-13)
    assert np.max(np.abs(np.asarray(wrong) - np.asarray(textbook))) > 1.0


def test_the_numpy_gradient_is_the_analytic_one():
    x, y = np.linspace(-2.0, 3.0, 9), np.array([0, 0, 1, 0, 1, 1, 0, 1.0, 1.0])
    phi = np.array([-0.2, 1.7])
    numpy_grad, size = logistic.bce_gradient_numpy(phi, x, y)
    analytic = jax.jit(logistic.bce_gradient)(jnp.asarray(phi), jnp.asarray(x), jnp.asarray(y))
    np.testing.assert_allclose(numpy_grad, analytic, rtol=0, atol=1e-13)
    assert size >= np.max(np.abs(numpy_grad))


@pytest.mark.parametrize("matrix", [
    [[2.0, 0.0], [0.0, 2.0]],  # equal eigenvalues: sqrt(tr^2 - 4 det) would lose half the digits here
    [[1.0, 1e3], [1e3, 1e6]],  # rank one: lambda_min = 0, far below lambda_max
    [[4.0, 1.0], [1.0, 3.0]],
    [[1e-150, 0.0], [0.0, 1e-150]],  # saturated: every entry tiny (not so tiny that a d underflows)
])
def test_min_eigenvalue_2x2_closed_form_within_8_eps_of_the_largest_entry(matrix):
    matrix = np.array(matrix)
    expected = np.linalg.eigvalsh(matrix)[0]
    assert abs(float(logistic.min_eigenvalue_2x2(jnp.asarray(matrix))) - expected) <= 8 * np.finfo(float).eps * np.max(
        np.abs(matrix))
