"""Convexity of the least-squares loss of 1D linear regression (Problem 7).

The model f(x, phi) = phi_0 + phi_1 x and the loss L[phi] = sum_i (phi_0 + phi_1 x_i - y_i)^2 have the
constant Hessian

    H = 2 [[I,        sum x  ],
           [sum x,    sum x^2]],

with trace 2 (I + sum x^2) > 0 and determinant

    det H = 4 (I sum x^2 - (sum x)^2) = 4 I sum_i (x_i - mean x)^2 >= 0     (Cauchy-Schwarz).

Both eigenvalues are positive (L strictly convex, one minimum) exactly when det > 0, i.e. when the x_i
are not all equal. When they are all equal, det = 0, one eigenvalue is 0, and L is constant along its
eigenvector (-x, 1): every (phi_0, phi_1) with phi_0 + phi_1 x = mean y is a minimum, a line, not a point.
The determinant is computed in the centred form, a sum of squares, so it does not cancel to a spurious
nonzero (or negative) value.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.problems.numerics import drawn_in_float64, max_abs_error


def sample_targets(key: jax.Array, x: jax.Array, intercept: float, slope: float, noise_sigma: float) -> jax.Array:
    """y_i = intercept + slope x_i + noise_sigma * eps_i, eps_i ~ N(0, 1)."""
    return targets(x, jax.random.normal(key, x.shape, dtype=x.dtype), intercept, slope, noise_sigma)


def targets(x: jax.Array, eps: jax.Array, intercept: float, slope: float, noise_sigma: float) -> jax.Array:
    """y_i = intercept + slope x_i + noise_sigma * eps_i for given standard normal eps_i."""
    return intercept + slope * x + noise_sigma * eps


def sample_data(
    key: jax.Array, n_points: int, intercept: float, slope: float, noise_sigma: float, x_low: float, x_high: float
) -> tuple[jax.Array, jax.Array]:
    """x ~ Uniform(x_low, x_high), y = intercept + slope x + noise_sigma * Norm(0, 1) (Problems 2, 3, 7).

    Drawn in float64 and cast to the run's precision: the same seed gives float32 and float64 runs the same points."""
    return drawn_in_float64(_sample_data, key, n_points, intercept, slope, noise_sigma, x_low, x_high)


def _sample_data(key, n_points, intercept, slope, noise_sigma, x_low, x_high):
    x, eps = _inputs_and_standard_noise(key, n_points, x_low, x_high)
    # the targets outside the compiled draw: there XLA would fuse their products and sums into multiply-adds,
    # changing the targets' last bits (tests/unit/test_data_draw.py)
    return x, targets(x, eps, intercept, slope, noise_sigma)


@functools.partial(jax.jit, static_argnames="n_points")
def _inputs_and_standard_noise(key, n_points, x_low, x_high):
    """(x ~ Uniform(x_low, x_high), eps ~ N(0, 1)) as `sample_targets` draws them: one compiled draw, not its
    operations compiled (or loaded from the cache) one by one, ~10 ms apiece."""
    key_x, key_noise = jax.random.split(key)
    x = jax.random.uniform(key_x, (n_points,), minval=x_low, maxval=x_high)
    return x, jax.random.normal(key_noise, x.shape, dtype=x.dtype)


def least_squares_loss(phi: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """L[phi] = sum_i (phi_0 + phi_1 x_i - y_i)^2."""
    return jnp.sum((phi[0] + phi[1] * x - y) ** 2)


def hessian_analytic(x: jax.Array) -> jax.Array:
    """H = 2 [[I, sum x], [sum x, sum x^2]], independent of phi and y."""
    count, total, squares = x.shape[0], jnp.sum(x), jnp.sum(x**2)
    return 2.0 * jnp.array([[count, total], [total, squares]], dtype=x.dtype)


@jax.jit
def hessian_autodiff(phi: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """jax.hessian of the loss at phi (jitted: check_answers' grader calls it outside jit)."""
    return jax.hessian(least_squares_loss)(phi, x, y)


def hessian_determinant(x: jax.Array) -> jax.Array:
    """det H = 4 I sum_i (x_i - mean x)^2: the Cauchy-Schwarz gap as a sum of squares, never < 0."""
    return 4.0 * x.shape[0] * jnp.sum((x - jnp.mean(x)) ** 2)


def smallest_eigenvalue(trace: jax.Array, det: jax.Array) -> jax.Array:
    """lambda_min = 2 det / (trace + sqrt(trace^2 - 4 det)): the root of the characteristic polynomial
    written without the cancellation of (trace - sqrt(...)) / 2, so it is exactly 0 when det is."""
    return 2.0 * det / (trace + jnp.sqrt(jnp.maximum(trace**2 - 4.0 * det, 0.0)))


def minimizer(x: jax.Array, y: jax.Array) -> jax.Array:
    """A least-squares minimum; the one of least norm when the minima form a line (all x_i equal).

    Subnormal x_i (|x_i| < 2.2e-308 in float64) are read as 0: on XLA's CPU backend the SVD behind lstsq returns
    NaN for a column of them, and the answer differs from the exact one by less than the smallest normal number.
    """
    x = jnp.where(jnp.abs(x) < jnp.finfo(x.dtype).tiny, jnp.zeros_like(x), x)
    design = jnp.stack([jnp.ones_like(x), x], axis=1)
    return jnp.linalg.lstsq(design, y)[0]


def roundoff_bounds(x: jax.Array, hessian: jax.Array) -> dict:
    """Round-off bounds of the comparisons (eps = machine epsilon, n points):

        hessian      4 n eps sum_i (1 + x_i^2)          each route sums n terms 2 x_i^2 (Higham: n eps each)
        det          8 eps (|H00 H11| + H01^2) + d (|H00| + |H11| + 2 |H01|)    the 2x2 LU's own round-off plus
                                                        the entries' error d (first-order perturbation of ad - b^2)
        min_eig      d + 8 eps max|H|                    Weyl: an entry error d moves an eigenvalue by <= 2 d
    """
    eps, n = jnp.finfo(x.dtype).eps, x.shape[0]
    entry = 4 * n * eps * jnp.sum(1 + x**2)
    (a, b), (_, d) = jnp.abs(hessian)
    return {"hessian": entry, "det": 8 * eps * (a * d + b * b) + entry * (a + d + 2 * b),
            "min_eig": 2 * entry + 8 * eps * jnp.max(jnp.abs(hessian))}


@jax.jit
def convexity_report(x: jax.Array, y: jax.Array, phi: jax.Array, convexity_rtol: float) -> dict:
    """The analytic Hessian against jax.hessian at phi, its trace, determinant and eigen-decomposition.

    `strictly_convex` is det > 0, read with a relative tolerance: det > convexity_rtol * trace^2
    (lambda_min / lambda_max is about det / trace^2), so round-off in an exactly singular H is not read
    as convexity.
    """
    analytic = hessian_analytic(x)
    autodiff = hessian_autodiff(phi, x, y)
    eigenvalues, eigenvectors = jnp.linalg.eigh(analytic)
    trace, det = jnp.trace(analytic), hessian_determinant(x)
    center = minimizer(x, y)
    bounds = roundoff_bounds(x, autodiff)
    det_autodiff = jnp.linalg.det(autodiff)
    flattest = eigenvectors[:, 0]
    loss_at_min = least_squares_loss(center, x, y)
    min_eig = smallest_eigenvalue(trace, det)
    # L(phi* + v) - L(phi*) = lambda_min / 2 exactly (L is quadratic): within lambda_min's round-off / 2 and the
    # round-off of the two loss evaluations
    rise = bounds["min_eig"] / 2 + loss_roundoff(center + flattest, x, y) + loss_roundoff(center, x, y)
    return {
        "hessian": {
            "analytic": analytic,
            "autodiff": autodiff,
            "max_abs_err": max_abs_error(analytic, autodiff),
        },
        "trace": trace,
        "det": det,
        "det_autodiff": det_autodiff,
        "det_abs_err": jnp.abs(det - det_autodiff),
        "tolerance": {**bounds, "rise": rise},
        # det > 0 read on autodiff's H, beyond its round-off: the closed form is not judged by itself
        "strictly_convex_autodiff": det_autodiff > bounds["det"],
        "min_eigenvalue_autodiff": jnp.linalg.eigvalsh(autodiff)[0],
        "eigenvalues": eigenvalues,
        "eigenvectors": eigenvectors,  # columns, smallest eigenvalue first
        "min_eigenvalue_closed_form": min_eig,
        "strictly_convex": det > convexity_rtol * trace**2,
        "minimizer": center,
        "loss_at_minimizer": loss_at_min,
        # L(phi* + t v) - L(phi*) = t^2 lambda / 2 for an eigenvector v: 0 along a line of minima
        "loss_rise_unit_step_along_flattest": least_squares_loss(center + flattest, x, y) - loss_at_min,
        "half_min_eigenvalue": min_eig / 2,  # from the trace and det formulas: no eigendecomposition
    }


@jax.jit
def loss_roundoff(phi: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """A bound on the round-off of one evaluation of L[phi] (eps = machine epsilon, n points, r_i the residual):

        eps sum_i (2 |r_i| (|phi_0| + |phi_1 x_i| + |y_i|) + n r_i^2)

    the first term: r_i carries eps (|phi_0| + |phi_1 x_i| + |y_i|), doubled by the square; the second: the sum of
    n squares (Higham: n eps each). A rise of L smaller than this is round-off, whichever way it happens to round
    (a flat surface reads all-0 on one backend and +-noise on another: it is flat on both).
    """
    eps, n = jnp.finfo(x.dtype).eps, x.shape[0]
    r = phi[0] + phi[1] * x - y
    return eps * jnp.sum(2 * jnp.abs(r) * (jnp.abs(phi[0]) + jnp.abs(phi[1] * x) + jnp.abs(y)) + n * r**2)


def surface_resolved(excess: np.ndarray, noise: float, phi0_grid: np.ndarray, phi1_grid: np.ndarray) -> bool:
    """Whether a loss surface L - L(phi*) on a grid shows the loss's rise: every value finite, the largest rise
    above twice the round-off `noise` of one evaluation of L (the excess is a difference of two), and both grids
    strictly increasing (a window below the round-off of phi itself collapses them)."""
    excess = np.asarray(excess)
    return bool(np.all(np.isfinite(excess)) and np.max(excess) > 2 * noise
                and np.all(np.diff(phi0_grid) > 0) and np.all(np.diff(phi1_grid) > 0))


@jax.jit
def loss_surface(x: jax.Array, y: jax.Array, phi0_grid: jax.Array, phi1_grid: jax.Array) -> jax.Array:
    """L on the grid phi0_grid x phi1_grid, shape (len(phi1_grid), len(phi0_grid)) for contour plots."""
    on_row = jax.vmap(lambda p0, p1: least_squares_loss(jnp.stack([p0, p1]), x, y), in_axes=(0, None))
    return jax.vmap(lambda p1: on_row(phi0_grid, p1))(phi1_grid)


def least_squares_gradient_numpy(phi, x, y) -> tuple[np.ndarray, float]:
    """dL/dphi = 2 [sum r, sum r x], r = phi0 + phi1 x - y, in NumPy float64, and sum_i 2 |r_i| (1 + |x_i|) (the
    size of its round-off): a route for checking trajectories by hand."""
    phi, x, y = (np.asarray(a, dtype=float) for a in (phi, x, y))
    r = phi[0] + phi[1] * x - y
    return 2 * np.array([r.sum(), (r * x).sum()]), float(np.sum(2 * np.abs(r) * (1 + np.abs(x))))
