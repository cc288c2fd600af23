"""1D logistic regression, Problem 8: Pr(y=1|x) = sig(phi0 + phi1 x).

Parameters are one array phi = [phi0, phi1]. Every formula here has an independent check in the tests
(jax.grad / jax.hessian / finite differences) and in the logreg experiment's metrics.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gradlab.problems.numerics import drawn_in_float64


def logits(phi: jax.Array, x: jax.Array) -> jax.Array:
    """z_i = phi0 + phi1 x_i."""
    return phi[0] + phi[1] * x


def sigmoid(z: jax.Array) -> jax.Array:
    """sig(z) = 1 / (1 + exp(-z)) (Problem 8 i)."""
    return jax.nn.sigmoid(z)


@jax.custom_jvp
def bce_terms(z: jax.Array, y: jax.Array) -> jax.Array:
    """Per-point cross-entropy -[y log sig(z) + (1 - y) log(1 - sig(z))] = max(z, 0) - y z + log1p(exp(-|z|)).

    -log sig(z) = max(-z, 0) + log1p(exp(-|z|)) and -log(1 - sig(z)) = max(z, 0) + log1p(exp(-|z|)). No exp can
    overflow, and for y in {0, 1} the large terms cancel exactly before the small log1p term is added, so tiny
    losses keep their value (3.7e-44 at z = 100, y = 1). One exp per point: on XLA's CPU backend this is
    several times faster than jax.nn.softplus(z) and softplus(-z).

    The derivative is given explicitly (d/dz = sig(z) - y, d/dy = -z): max and |.| are not differentiable at
    z = 0, and autodiff through them would pick subgradients that do not add up to sig(0) = 1/2.
    """
    return jnp.maximum(z, 0) - y * z + jnp.log1p(jnp.exp(-jnp.abs(z)))


@bce_terms.defjvp
def _bce_terms_jvp(primals, tangents):
    (z, y), (dz, dy) = primals, tangents
    return bce_terms(z, y), (sigmoid(z) - y) * dz - z * dy


def bce_loss(phi: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """Binary cross-entropy summed over the data (Problem 8 ii), in a numerically stable form (`bce_terms`):
    finite and accurate for |phi0 + phi1 x| up to 1e3 and beyond."""
    return jnp.sum(bce_terms(logits(phi, x), y))


def bce_value_and_grad(phi: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The summed loss L(phi) (Problem 8 ii) and its gradient (iii) from one pass with one exp per point.

    With z = phi0 + phi1 x and e = exp(-|z|) (never overflows):

        loss_i = log1p(e) + max((1 - y) z, -y z)          (= max(z, 0) - y z + log1p(e), as in `bce_terms`)
        r_i    = (1 if z >= 0 else e) / (1 + e) - y       (= sig(z) - y)
        L = sum_i loss_i,   grad L = [sum_i r_i, sum_i r_i x_i]

    The same numbers as `jax.value_and_grad(bce_loss)` to round-off, but autodiff evaluates the sigmoid with a
    second transcendental pass; here exp(-|z|) serves both log1p and the sigmoid. The max is written without a
    constant (z - y z against -y z) so that XLA's CPU reductions read no broadcast array.
    """
    z = logits(phi, x)
    e = jnp.exp(-jnp.abs(z))
    yz = y * z
    loss = jnp.sum(jnp.log1p(e) + jnp.maximum(z - yz, -yz))
    residual = jnp.where(z >= 0, 1, e) / (1 + e) - y
    return loss, jnp.stack([jnp.sum(residual), jnp.sum(residual * x)])


# make_train picks a loss's fused loss-and-gradient up from here (see problems/training.py)
bce_loss.value_and_grad = bce_value_and_grad


@jax.jit
def bce_gradient_and_hessian(phi: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The analytic gradient (Problem 8 iii) and Hessian (Problem 8 v) from one pass over the data:

        dL/dphi0 = sum_i (p_i - y_i),  dL/dphi1 = sum_i (p_i - y_i) x_i,  p_i = sig(z_i),
        H = sum_i p_i (1 - p_i) [[1, x_i], [x_i, x_i^2]].

    One exp per point serves both: with e = exp(-|z|), p = 1 / (1 + e) for z >= 0 and e / (1 + e) otherwise,
    and p (1 - p) = e / (1 + e)^2, which keeps its true tiny size for large |z| instead of 1 - p rounding to 0.
    H is a positive combination of the PSD matrices [1, x][1, x]^T, so it is PSD everywhere: L is convex.
    """
    z = logits(phi, x)
    e = jnp.exp(-jnp.abs(z))
    residual, weight = jnp.where(z >= 0, 1, e) / (1 + e) - y, e / (1 + e) ** 2
    grad = jnp.stack([jnp.sum(residual), jnp.sum(residual * x)])
    h01 = jnp.sum(weight * x)
    hess = jnp.stack([jnp.stack([jnp.sum(weight), h01]), jnp.stack([h01, jnp.sum(weight * x * x)])])
    return grad, hess


def bce_gradient(phi: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """The analytic gradient dL/dphi of `bce_gradient_and_hessian` (under jit the Hessian is not computed)."""
    return bce_gradient_and_hessian(phi, x, y)[0]


def bce_hessian(phi: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """The analytic Hessian d^2L/dphi^2 of `bce_gradient_and_hessian`."""
    return bce_gradient_and_hessian(phi, x, y)[1]


def sample_data(
    key: jax.Array, n_per_class: int, mean0: float, mean1: float, std: float
) -> tuple[jax.Array, jax.Array]:
    """Problem 8 iv: n points from N(mean0, std^2) labelled 0, then n from N(mean1, std^2) labelled 1; a batch of
    keys (shape (S,)) draws S data sets, (S, 2 n) each, in one vmapped draw.

    Drawn in float64 and cast to the run's precision: the same seed gives float32 and float64 runs the same points."""
    def draw(one_key):
        return _sample_data(one_key, n_per_class, mean0, mean1, std)

    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)  # else a raw uint32 key: its last axis is the key
    return drawn_in_float64(jax.vmap(draw) if key.ndim > (0 if typed else 1) else draw, key)


def _sample_data(key: jax.Array, n_per_class: int, mean0: float, mean1: float, std: float):
    means, eps, y = _class_means_and_standard_noise(key, n_per_class, mean0, mean1)
    # mean + std * eps outside the compiled draw: there XLA would fuse it into a multiply-add, whose single rounding
    # moves points by up to ~20 ulps from the same draw's operations one by one (tests/unit/test_data_draw.py)
    return means + std * eps, y


@functools.partial(jax.jit, static_argnames="n_per_class")
def _class_means_and_standard_noise(key: jax.Array, n_per_class: int, mean0: float, mean1: float):
    """(each point's class mean, eps ~ N(0, 1), its label), class 0 then class 1: one compiled draw, not its
    operations compiled (or loaded from the cache) one by one, ~10 ms apiece."""
    key0, key1 = jax.random.split(key)
    eps = jnp.concatenate([jax.random.normal(key0, (n_per_class,)), jax.random.normal(key1, (n_per_class,))])
    return jnp.repeat(jnp.stack([mean0, mean1]), n_per_class), eps, jnp.repeat(jnp.array([0.0, 1.0]), n_per_class)


def on_grid(fn, phi0_values: jax.Array, phi1_values: jax.Array, *per_point) -> jax.Array:
    """fn(phi) at every grid point, in one vmapped call: out[i, j] = fn([phi0_values[j], phi1_values[i]]); with
    per_point pytrees of (n1, n0, ...) arrays (an earlier on_grid's output), fn(phi, *their [i, j] entries).

    One vmap over the n1 n0 points of the flattened grid, not a vmap of a vmap over its rows and columns: the same
    arithmetic, traced through one batching level instead of two (Problem 8's grid routes trace in half the time)."""
    grid = jnp.stack(jnp.meshgrid(phi0_values, phi1_values), axis=-1)  # (n1, n0, 2)
    rows_cols = grid.shape[:2]

    def flatten(array):
        return array.reshape(-1, *array.shape[2:])

    out = jax.vmap(fn)(*jax.tree.map(flatten, (grid, *per_point)))
    return jax.tree.map(lambda array: array.reshape(*rows_cols, *array.shape[1:]), out)


def min_eigenvalue(matrix: jax.Array) -> jax.Array:
    """Smallest eigenvalue of a symmetric matrix (eigvalsh sorts ascending)."""
    return jnp.linalg.eigvalsh(matrix)[0]


def min_eigenvalue_2x2(matrix: jax.Array) -> jax.Array:
    """Smallest eigenvalue of a symmetric 2x2 [[a, b], [b, d]] in closed form, no eigensolver:

        lambda_min = 2 det / (tr + s),  s = hypot(a - d, 2 b) = lambda_max - lambda_min

    s from the entries (not sqrt(tr^2 - 4 det), which cancels when the eigenvalues are close) and lambda_min from
    det / lambda_max (not (tr - s) / 2, which cancels when lambda_min << lambda_max): within ~8 eps max|entry|,
    unless the products a d, b^2 underflow (entries below ~1e-154 in float64): then within max|entry|.
    (`linreg.smallest_eigenvalue` is Problem 7's: from the trace and the closed-form det of its Hessian.)
    """
    (a, b), (_, d) = matrix
    return 2 * (a * d - b * b) / (a + d + jnp.hypot(a - d, 2 * b))


class NewtonResult(NamedTuple):
    phi: jax.Array
    iterations: jax.Array
    grad_norm: jax.Array
    path: jax.Array | None  # (max_iter + 1, 2); rows after `iterations` repeat the last iterate; None unkept


def newton(phi_init: jax.Array, x: jax.Array, y: jax.Array, tol: float, max_iter: int,
           keep_path: bool = True) -> NewtonResult:
    """Newton's method phi <- phi - H^{-1} g with the analytic 2x2 Hessian, until ||g|| < tol or max_iter.

    One `lax.while_loop` (jit with `max_iter` and `keep_path` static); each iteration makes one pass over the
    data, which gives both the gradient for the stopping test and the Hessian for the next step.
    """
    path = jnp.zeros((max_iter + 1, 2), phi_init.dtype).at[:].set(phi_init) if keep_path else None

    def keep_going(state):
        _, it, grad, _, _ = state
        return (jnp.linalg.norm(grad) >= tol) & (it < max_iter)

    def step(state):
        phi, it, grad, hess, path = state
        phi = phi - jnp.linalg.solve(hess, grad)
        if keep_path:
            path = jnp.where(jnp.arange(max_iter + 1)[:, None] > it, phi, path)
        return phi, it + 1, *bce_gradient_and_hessian(phi, x, y), path

    start = (phi_init, 0, *bce_gradient_and_hessian(phi_init, x, y), path)
    phi, it, grad, _, path = lax.while_loop(keep_going, step, start)
    norm = jnp.linalg.norm(grad)
    return NewtonResult(phi, it, norm, path)


def bce_loss_textbook(phi: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """L = -sum_i [y_i log sig(z_i) + (1 - y_i) log(1 - sig(z_i))], z_i = phi0 + phi1 x_i, as the textbook writes it.

    The independent route for autodiff: no custom derivative rule of ours (log sig(z) = jax.nn.log_sigmoid(z),
    log(1 - sig(z)) = log sig(-z)), and its own logits, so `jax.grad` / `jax.hessian` of it check
    `bce_gradient_and_hessian`, `bce_terms`' JVP rule and the fused `bce_value_and_grad` from outside.
    """
    z = phi[0] + phi[1] * x
    return -jnp.sum(y * jax.nn.log_sigmoid(z) + (1.0 - y) * jax.nn.log_sigmoid(-z))


def bce_reference(z: float, y: float) -> float:
    """-[y log sig(z) + (1-y) log(1 - sig(z))] in plain Python floats, case by case (an independent route).

    -log sig(z) = log1p(exp(-z)) for z >= 0 and -z + log1p(exp(z)) for z < 0; -log(1 - sig(z)) = -log sig(-z).
    """
    def minus_log_sigmoid(t: float) -> float:
        return math.log1p(math.exp(-t)) if t >= 0 else -t + math.log1p(math.exp(t))

    return y * minus_log_sigmoid(z) + (1.0 - y) * minus_log_sigmoid(-z)


def is_separable(x: jax.Array, y: jax.Array) -> jax.Array:
    """Whether the maximum-likelihood (phi0, phi1) fails to exist (the cases of `separation`), as a traceable
    boolean for vmapped data sets: max x|y=0 <= min x|y=1 or the reverse; an empty class is -inf / +inf here,
    so it counts as separated."""
    def extremes(label):
        return jnp.max(jnp.where(y == label, x, -jnp.inf)), jnp.min(jnp.where(y == label, x, jnp.inf))

    (max0, min0), (max1, min1) = extremes(0), extremes(1)
    return (max0 <= min1) | (max1 <= min0)


def separation(x, y) -> str | None:
    """Why the maximum-likelihood (phi0, phi1) does not exist for 1D data, or None if it does.

    The summed BCE has a finite minimiser only if the classes overlap. If one class is empty, or a threshold
    on x puts every y=0 on one side and every y=1 on the other (max x|y=0 <= min x|y=1, or the reverse), the
    loss keeps falling as |phi1| grows: gradient methods and Newton run off to infinity (Problem 8).
    """
    x, y = np.asarray(x), np.asarray(y)
    zeros, ones = x[y == 0], x[y == 1]
    if zeros.size == 0 or ones.size == 0:
        return f"all {x.size} points have label {int(y[0])}: no finite optimum (the loss decreases without bound)"
    if zeros.max() <= ones.min() or ones.max() <= zeros.min():
        return ("the classes are separable by a threshold on x: no finite optimum (the loss decreases towards 0 "
                "as |phi1| grows)")
    return None


def bce_gradient_numpy(phi, x, y) -> tuple[np.ndarray, float]:
    """dL/dphi = [sum (p - y), sum (p - y) x] in NumPy float64, p = 1 / (1 + exp(-z)) by cases (no overflow),
    and sum_i |p_i - y_i| (1 + |x_i|), which sizes its round-off: a route for checking trajectories by hand."""
    phi, x, y = (np.asarray(a, dtype=float) for a in (phi, x, y))
    z = phi[0] + phi[1] * x
    e = np.exp(-np.abs(z))
    p = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    r = p - y
    return np.array([r.sum(), (r * x).sum()]), float(np.sum(np.abs(r) * (1 + np.abs(x))))
