"""One training problem, many implementations: the logistic-regression benchmark (issue 7, Problem 8).

The problem: gradient descent on the mean binary cross-entropy of 1D logistic regression,

    phi <- phi - lr * (1/n) grad L(phi),   grad L = [sum_i (p_i - y_i), sum_i (p_i - y_i) x_i],  p = sig(phi0 + phi1 x),

from the same start, on the same data, for the same number of steps, in the same dtype, computing the loss
L(phi) = sum_i [y_i softplus(-z_i) + (1 - y_i) softplus(z_i)] at every step as a training loop would. Each
implementation is prepared into an `Implementation`: a zero-argument `call` that runs it once and returns
only when the result is ready, the seconds spent compiling (0 for eager code), and how to read the final
parameters back as float64 NumPy. Every GD implementation must land on the same parameters up to rounding;
Newton and scikit-learn solve to a gradient tolerance instead and must land within tolerance / mu of the
optimum (mu the smallest Hessian eigenvalue of the mean loss there).
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gradlab.problems import logistic
from gradlab.bench.timing import block, compile_timed
from gradlab.problems.training import make_train

GD, NEWTON, LBFGS = "gd step", "newton iteration", "lbfgs iteration"


def available(module: str) -> bool:
    """Whether an optional package (torch, sklearn) is importable, without importing it."""
    return importlib.util.find_spec(module) is not None


@dataclass
class Implementation:
    name: str
    step_kind: str  # what one "step" is: GD, NEWTON or LBFGS
    call: Callable[[], Any]  # one complete run; returns once its result is ready
    compile_time: float  # seconds of ahead-of-time compilation, measured on its own (0 for eager code)
    params: Callable[[Any], np.ndarray]  # the final [phi0, phi1] of a call's result, as float64
    steps: Callable[[Any], int]  # steps (GD) or iterations (Newton, L-BFGS) a call's result took


def _float64(phi: Any) -> np.ndarray:
    return np.asarray(phi, dtype=np.float64).reshape(2)


# ------------------------------------------------------------------------------------------------- JAX


def analytic_loss_and_gradient(phi: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """L and grad L of Problem 8 (ii, iii) written by hand, with one exp and one log1p per point.

    With e = exp(-|z|): softplus(+-z) = max(+-z, 0) + log1p(e) and sig(z) = (1 if z >= 0 else e) / (1 + e),
    so y softplus(-z) + (1 - y) softplus(z) = y max(-z, 0) + (1 - y) max(z, 0) + log1p(e). This is the
    NumPy loop's arithmetic, formula for formula; the library's autodiff route differentiates
    jax.nn.softplus (logaddexp, with a NaN guard) instead.
    """
    z = logistic.logits(phi, x)
    e = jnp.exp(-jnp.abs(z))
    loss = jnp.sum(y * jnp.maximum(-z, 0) + (1 - y) * jnp.maximum(z, 0) + jnp.log1p(e))
    residual = jnp.where(z >= 0, 1, e) / (1 + e) - y
    return loss, jnp.stack([jnp.sum(residual), jnp.sum(residual * x)])


def autodiff_step(phi: jax.Array, lr: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One GD step of the library loop: jax.value_and_grad of `logistic.bce_loss`, then phi - lr g."""
    loss, grad = jax.value_and_grad(logistic.bce_loss)(phi, x, y)
    return phi - lr * grad, loss


def make_analytic_train(steps: int) -> Callable:
    """train(phi_init, lr, x, y) -> (phi, losses): `steps` GD steps of the analytic step in one lax.scan."""

    def train(phi_init, lr, x, y):
        def step(phi, _):
            loss, grad = analytic_loss_and_gradient(phi, x, y)
            return phi - lr * grad, loss

        return lax.scan(step, phi_init, length=steps)

    return train


def jax_scan(phi_init, lr, x, y, steps: int) -> Implementation:
    """The library loop, `make_train(bce_loss, "sgd", steps)`: the whole loop in one jit-compiled scan."""
    train = make_train(logistic.bce_loss, "sgd", steps)
    momentum = jnp.zeros((), x.dtype)
    compiled, seconds = compile_timed(train, phi_init, lr, momentum, x, y)
    return Implementation("jax_scan", GD, lambda: block(compiled(phi_init, lr, momentum, x, y)), seconds,
                          lambda out: _float64(out.phi), lambda out: steps)


def jax_scan_analytic(phi_init, lr, x, y, steps: int) -> Implementation:
    """The scanned loop with `analytic_loss_and_gradient`: the same arithmetic as the NumPy loop."""
    compiled, seconds = compile_timed(make_analytic_train(steps), phi_init, lr, x, y)
    return Implementation("jax_scan_analytic", GD, lambda: block(compiled(phi_init, lr, x, y)), seconds,
                          lambda out: _float64(out[0]), lambda out: steps)


def jax_python_loop(phi_init, lr, x, y, steps: int) -> Implementation:
    """A Python loop over a jit-compiled step: one dispatch per step (the common first JAX training loop)."""
    step, seconds = compile_timed(autodiff_step, phi_init, lr, x, y)

    def call():
        phi = phi_init
        for _ in range(steps):
            phi, _loss = step(phi, lr, x, y)
        return block(phi)

    return Implementation("jax_python_loop", GD, call, seconds, _float64, lambda out: steps)


def jax_no_jit(phi_init, lr, x, y, steps: int) -> Implementation:
    """The same step without jit: JAX dispatches every primitive (and its derivative) one at a time."""

    def call():
        phi = phi_init
        for _ in range(steps):
            phi, _loss = autodiff_step(phi, lr, x, y)
        return block(phi)

    return Implementation("jax_no_jit", GD, call, 0.0, _float64, lambda out: steps)


def jax_newton(phi_init, x, y, tolerance: float, max_iter: int) -> Implementation:
    """`logistic.newton` jit-compiled, stopping at ||mean gradient|| < tolerance (summed: n * tolerance)."""
    tol_sum = jnp.asarray(tolerance * x.shape[0], x.dtype)
    compiled, seconds = compile_timed(partial(logistic.newton, max_iter=max_iter), phi_init, x, y, tol_sum)
    return Implementation("jax_newton", NEWTON, lambda: block(compiled(phi_init, x, y, tol_sum)), seconds,
                          lambda out: _float64(out.phi), lambda out: int(out.iterations))


def analytic_gradient_and_hessian(phi: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """grad L and H (Problem 8 iii, v) from one exp per point: sig(z) sig(-z) = e / (1 + e)^2, e = exp(-|z|)."""
    z = logistic.logits(phi, x)
    e = jnp.exp(-jnp.abs(z))
    residual = jnp.where(z >= 0, 1, e) / (1 + e) - y
    weight = e / (1 + e) ** 2
    g = jnp.stack([jnp.sum(residual), jnp.sum(residual * x)])
    h01 = jnp.sum(weight * x)
    return g, jnp.stack([jnp.stack([jnp.sum(weight), h01]), jnp.stack([h01, jnp.sum(weight * x * x)])])


def newton_analytic(phi_init, x, y, tol, max_iter: int) -> tuple[jax.Array, jax.Array]:
    """Newton's method with gradient and Hessian from one pass over the data per iteration (the library's
    `logistic.newton` makes three: Hessian, gradient, and the gradient again for the stopping test)."""

    def keep_going(state):
        _, it, g, _ = state
        return (jnp.linalg.norm(g) >= tol) & (it < max_iter)

    def step(state):
        phi, it, g, h = state
        phi = phi - jnp.linalg.solve(h, g)
        return phi, it + 1, *analytic_gradient_and_hessian(phi, x, y)

    phi, it, _, _ = lax.while_loop(keep_going, step, (phi_init, 0, *analytic_gradient_and_hessian(phi_init, x, y)))
    return phi, it


def jax_newton_analytic(phi_init, x, y, tolerance: float, max_iter: int) -> Implementation:
    """`newton_analytic` jit-compiled, with the same stopping rule as `jax_newton`."""
    tol_sum = jnp.asarray(tolerance * x.shape[0], x.dtype)
    compiled, seconds = compile_timed(partial(newton_analytic, max_iter=max_iter), phi_init, x, y, tol_sum)
    return Implementation("jax_newton_analytic", NEWTON, lambda: block(compiled(phi_init, x, y, tol_sum)),
                          seconds, lambda out: _float64(out[0]), lambda out: int(out[1]))


# ----------------------------------------------------------------------------------------- NumPy, torch


def numpy_loss_and_gradient(phi: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[Any, np.ndarray]:
    """`analytic_loss_and_gradient` in NumPy, formula for formula (a hand-written gradient: NumPy has no autodiff)."""
    z = phi[0] + phi[1] * x
    e = np.exp(-np.abs(z))
    loss = np.sum(y * np.maximum(-z, 0) + (1 - y) * np.maximum(z, 0) + np.log1p(e))
    residual = np.where(z >= 0, 1, e) / (1 + e) - y
    return loss, np.array([residual.sum(), residual @ x], dtype=x.dtype)


def numpy_loop(phi_init, lr, x, y, steps: int) -> Implementation:
    """A plain NumPy loop over the hand-written step."""
    phi0, x, y, lr = np.array(phi_init), np.asarray(x), np.asarray(y), np.asarray(lr, dtype=np.asarray(x).dtype)

    def call():
        phi = phi0.copy()
        for _ in range(steps):
            _loss, grad = numpy_loss_and_gradient(phi, x, y)
            phi = phi - lr * grad
        return phi

    return Implementation("numpy_loop", GD, call, 0.0, _float64, lambda out: steps)


def torch_loop(phi_init, lr, x, y, steps: int) -> Implementation:
    """The idiomatic PyTorch eager loop: BCE-with-logits (summed), loss.backward(), torch.optim.SGD."""
    import torch

    x_t, y_t = torch.from_numpy(np.array(x)), torch.from_numpy(np.array(y))
    phi0, lr = np.array(phi_init), float(lr)

    def call():
        phi = torch.tensor(phi0, requires_grad=True)
        optimizer = torch.optim.SGD([phi], lr=lr)
        for _ in range(steps):
            optimizer.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(phi[0] + phi[1] * x_t, y_t,
                                                                        reduction="sum")
            loss.backward()
            optimizer.step()
        return phi.detach().numpy()

    return Implementation("torch_loop", GD, call, 0.0, _float64, lambda out: steps)


def sklearn_lbfgs(x, y, tolerance: float, max_iter: int) -> Implementation:
    """scikit-learn's LogisticRegression (L-BFGS, no penalty: C=inf) on the mean loss.

    Its `tol` bounds the largest gradient component, so tolerance / sqrt(2) bounds the 2-norm by tolerance.
    """
    from sklearn.linear_model import LogisticRegression

    features, labels = np.asarray(x).reshape(-1, 1), np.asarray(y)

    def call():
        model = LogisticRegression(C=math.inf, solver="lbfgs", tol=tolerance / math.sqrt(2), max_iter=max_iter)
        return model.fit(features, labels)

    return Implementation("sklearn_lbfgs", LBFGS, call, 0.0,
                          lambda m: _float64([m.intercept_[0], m.coef_[0, 0]]), lambda m: int(m.n_iter_[0]))


# ------------------------------------------------------------------------------------ the whole line-up


def prepare(x, y, *, lr_mean: float, steps: int, tolerance: float, newton_max_iter: int,
            sklearn_max_iter: int, include_optional: bool = True) -> dict[str, Implementation]:
    """Every implementation on (x, y) in x's dtype, compiled; GD ones take `steps` steps at lr = lr_mean / n."""
    phi_init = jnp.zeros(2, x.dtype)
    lr = jnp.asarray(lr_mean / x.shape[0], x.dtype)
    line_up = [
        jax_scan(phi_init, lr, x, y, steps),
        jax_scan_analytic(phi_init, lr, x, y, steps),
        jax_python_loop(phi_init, lr, x, y, steps),
        jax_no_jit(phi_init, lr, x, y, steps),
        numpy_loop(phi_init, lr, x, y, steps),
        jax_newton(phi_init, x, y, tolerance, newton_max_iter),
        jax_newton_analytic(phi_init, x, y, tolerance, newton_max_iter),
    ]
    if include_optional and available("torch"):
        line_up.append(torch_loop(phi_init, lr, x, y, steps))
    if include_optional and available("sklearn"):
        line_up.append(sklearn_lbfgs(x, y, tolerance, sklearn_max_iter))
    return {impl.name: impl for impl in line_up}


def measure_alternating(impls: dict[str, Implementation], repeats: int) -> dict[str, dict]:
    """Time every implementation `repeats` times, alternating, each round in a rotated order.

    Each timed call directly follows an untimed call of the same implementation: right after PyTorch or
    scikit-learn ran, a JAX call pays to wake its parked thread pool (the 20-point jitted scan measured
    2.8 us per step cold against 1.0 us warm), and that wake-up is not the implementation's cost.

    One untimed warm-up call each first (its time, less the median, is the one-time cost of eager code:
    caches, dispatch tables). Returns per name: the timed seconds, the warm-up seconds, the last result.
    """
    names = list(impls)
    record = {name: {"times": [], "warmup": 0.0, "result": None} for name in names}
    for name in names:
        start = time.perf_counter()
        record[name]["result"] = impls[name].call()
        record[name]["warmup"] = time.perf_counter() - start
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            impls[name].call()  # untimed: wakes this implementation's threads after the previous one ran
            start = time.perf_counter()
            record[name]["result"] = impls[name].call()
            record[name]["times"].append(time.perf_counter() - start)
    return record


# ------------------------------------------------------------------------------------- reference numbers


def mean_gradient_norm(phi: np.ndarray, x: jax.Array, y: jax.Array) -> float:
    """||(1/n) grad L(phi)||_2 with the library's analytic gradient, in x's dtype."""
    return float(jnp.linalg.norm(logistic.bce_gradient(jnp.asarray(phi, x.dtype), x, y)) / x.shape[0])


@partial(jax.jit, static_argnames="max_steps")
def gd_steps_to_tolerance(phi_init, lr, x, y, tolerance, max_steps: int) -> tuple[jax.Array, jax.Array]:
    """GD steps until ||mean gradient|| < tolerance (one lax.while_loop); returns (steps, final phi)."""

    def keep_going(state):
        _, steps, norm = state
        return (norm >= tolerance) & (steps < max_steps)

    def step(state):
        phi, steps, _ = state
        phi = phi - lr * logistic.bce_gradient(phi, x, y)
        return phi, steps + 1, jnp.linalg.norm(logistic.bce_gradient(phi, x, y)) / x.shape[0]

    start_norm = jnp.linalg.norm(logistic.bce_gradient(phi_init, x, y)) / x.shape[0]
    phi, steps, _ = lax.while_loop(keep_going, step, (phi_init, 0, start_norm))
    return steps, phi


def optimum(x: jax.Array, y: jax.Array, iterations: int) -> tuple[np.ndarray, float]:
    """The optimum phi* by `iterations` full Newton steps (tol 0), and mu, the smallest eigenvalue of the
    mean-loss Hessian there (so ||phi - phi*|| <~ ||mean gradient(phi)|| / mu near phi*)."""
    result = jax.jit(partial(logistic.newton, max_iter=iterations))(jnp.zeros(2, x.dtype), x, y, 0.0)
    mu = float(logistic.min_eigenvalue(logistic.bce_hessian(result.phi, x, y))) / x.shape[0]
    return _float64(result.phi), mu
