"""One training problem, many implementations: the logistic-regression benchmark (Problem 8).

The problem: gradient descent on the mean binary cross-entropy of 1D logistic regression,

    phi <- phi - lr * (1/n) grad L(phi),   grad L = [sum_i (p_i - y_i), sum_i (p_i - y_i) x_i],  p = sig(phi0 + phi1 x),

from the same start, on the same data, in the same dtype, computing the loss
L(phi) = sum_i [y_i softplus(-z_i) + (1 - y_i) softplus(z_i)] at every step as a training loop would. Each
implementation is prepared into an `Implementation`: a zero-argument `call` that runs it once and returns
only when the result is ready, the seconds spent compiling (0 for eager code), how many steps one call takes,
and how to read the final parameters back as float64 NumPy. Every GD implementation must land on the same
parameters as the library's scan after as many steps, up to rounding; Newton and scikit-learn solve to a
gradient tolerance instead and must land within tolerance / mu of the optimum (mu the smallest Hessian
eigenvalue of the mean loss there).

PyTorch and scikit-learn are optional (the `bench` extra); `skipped_optional` says why one is left out.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.bench.timing import block, compile_timed
from gradlab.problems import logistic
from gradlab.problems.training import make_train

GD, NEWTON, LBFGS = "gd step", "newton iteration", "lbfgs iteration"
# the optional comparisons: implementation -> (module it needs, what it is)
OPTIONAL = {"torch_loop": ("torch", "PyTorch"), "sklearn_lbfgs": ("sklearn", "scikit-learn")}
HOW_TO_GET = "`make bench` installs the `bench` extra (PyTorch, scikit-learn): pip install -e '.[bench]'"


def available(module: str) -> bool:
    """Whether an optional package (torch, sklearn) is importable, without importing it."""
    return importlib.util.find_spec(module) is not None


def skipped_optional(wanted: dict[str, bool]) -> dict[str, str]:
    """{implementation: why it is not in the line-up} for the optional ones that are off or not installed."""
    reasons = {}
    for name, (module, label) in OPTIONAL.items():
        if not wanted.get(name, True):
            reasons[name] = f"left out by the config (optional.{module}=false)"
        elif not available(module):
            reasons[name] = f"{label} is not installed; {HOW_TO_GET}"
    return reasons


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


def fused_step(phi: jax.Array, lr: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One GD step as a hand-written loop would take it: the library's fused loss and gradient, phi - lr g."""
    loss, grad = logistic.bce_value_and_grad(phi, x, y)
    return phi - lr * grad, loss


@functools.lru_cache
def library_train(steps: int, autodiff: bool = False) -> Callable:
    """The library loop `make_train(bce_loss, "sgd", steps)` (fused loss and gradient), or with
    `jax.value_and_grad(bce_loss)` in its place (autodiff: a second transcendental pass for the sigmoid).
    One function per (steps, autodiff), so that jax.jit compiles each once per process and shape."""
    value_and_grad = jax.value_and_grad(logistic.bce_loss) if autodiff else None
    return make_train(logistic.bce_loss, "sgd", steps, value_and_grad=value_and_grad)


def _scan(name: str, phi_init, lr, x, y, steps: int, autodiff: bool) -> Implementation:
    momentum = jnp.zeros((), x.dtype)
    compiled, seconds = compile_timed(library_train(steps, autodiff), phi_init, lr, momentum, x, y)
    return Implementation(name, GD, lambda: block(compiled(phi_init, lr, momentum, x, y)), seconds,
                          lambda out: _float64(out.phi), lambda out: steps)


def jax_scan(phi_init, lr, x, y, steps: int) -> Implementation:
    """The library loop, the whole loop in one jit-compiled lax.scan with the fused step."""
    return _scan("jax_scan", phi_init, lr, x, y, steps, autodiff=False)


def jax_scan_autodiff(phi_init, lr, x, y, steps: int) -> Implementation:
    """The library loop with jax.value_and_grad of `logistic.bce_loss` instead of the fused step."""
    return _scan("jax_scan_autodiff", phi_init, lr, x, y, steps, autodiff=True)


def jax_python_loop(phi_init, lr, x, y, steps: int) -> Implementation:
    """A Python loop over the jit-compiled fused step: one dispatch per step (the common first JAX loop)."""
    step, seconds = compile_timed(fused_step, phi_init, lr, x, y)

    def call():
        phi = phi_init
        for _ in range(steps):
            phi, _loss = step(phi, lr, x, y)
        return block(phi)

    return Implementation("jax_python_loop", GD, call, seconds, _float64, lambda out: steps)


def jax_no_jit(phi_init, lr, x, y, steps: int) -> Implementation:
    """The same step without jit: JAX dispatches every primitive one at a time."""

    def call():
        phi = phi_init
        for _ in range(steps):
            phi, _loss = fused_step(phi, lr, x, y)
        return block(phi)

    return Implementation("jax_no_jit", GD, call, 0.0, _float64, lambda out: steps)


def jax_newton(phi_init, x, y, tolerance: float, max_iter: int) -> Implementation:
    """`logistic.newton` jit-compiled, stopping at ||mean gradient|| < tolerance (summed: n * tolerance)."""
    tol_sum = jnp.asarray(tolerance * x.shape[0], x.dtype)
    compiled, seconds = compile_timed(partial(logistic.newton, max_iter=max_iter), phi_init, x, y, tol_sum)
    return Implementation("jax_newton", NEWTON, lambda: block(compiled(phi_init, x, y, tol_sum)), seconds,
                          lambda out: _float64(out.phi), lambda out: int(out.iterations))


def jax_newton_analytic(phi_init, x, y, tolerance: float, max_iter: int) -> Implementation:
    """`logistic.newton` without recording its path (only the last iterate kept), the same stopping rule as
    `jax_newton`."""
    tol_sum = jnp.asarray(tolerance * x.shape[0], x.dtype)
    compiled, seconds = compile_timed(partial(logistic.newton, max_iter=max_iter, keep_path=False),
                                      phi_init, x, y, tol_sum)
    return Implementation("jax_newton_analytic", NEWTON, lambda: block(compiled(phi_init, x, y, tol_sum)),
                          seconds, lambda out: _float64(out.phi), lambda out: int(out.iterations))


# ----------------------------------------------------------------------------------------- NumPy, torch


def numpy_loss_and_gradient(phi: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[Any, np.ndarray]:
    """L and grad L in NumPy (a hand-written gradient: NumPy has no autodiff), one exp and one log1p per point:
    e = exp(-|z|), L = sum y max(-z, 0) + (1 - y) max(z, 0) + log1p(e), p = (1 if z >= 0 else e) / (1 + e)."""
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


# the implementations whose calls are slow at a large size (eager Python, host code): each gets a time budget
SLOW = ("jax_no_jit", "numpy_loop", "torch_loop", "sklearn_lbfgs")
EAGER = ("jax_no_jit", "torch_loop")  # a dispatch per primitive: these take `slow_steps` a call


def build(name: str, x, y, *, lr_mean: float, steps: int, slow_steps: int, tolerance: float, newton_max_iter: int,
          sklearn_max_iter: int) -> Implementation:
    """One implementation by name on (x, y) in x's dtype, compiled. GD ones take `steps` steps at
    lr = lr_mean / n; the eager ones, JAX without jit and PyTorch (a dispatch per primitive), take `slow_steps`."""
    phi_init = jnp.zeros(2, x.dtype)
    lr = jnp.asarray(lr_mean / x.shape[0], x.dtype)
    builders = {
        "jax_scan": lambda: jax_scan(phi_init, lr, x, y, steps),
        "jax_scan_autodiff": lambda: jax_scan_autodiff(phi_init, lr, x, y, steps),
        "jax_python_loop": lambda: jax_python_loop(phi_init, lr, x, y, steps),
        "jax_no_jit": lambda: jax_no_jit(phi_init, lr, x, y, slow_steps),
        "numpy_loop": lambda: numpy_loop(phi_init, lr, x, y, steps),
        "jax_newton": lambda: jax_newton(phi_init, x, y, tolerance, newton_max_iter),
        "jax_newton_analytic": lambda: jax_newton_analytic(phi_init, x, y, tolerance, newton_max_iter),
        "torch_loop": lambda: torch_loop(phi_init, lr, x, y, slow_steps),
        "sklearn_lbfgs": lambda: sklearn_lbfgs(x, y, tolerance, sklearn_max_iter),
    }
    return builders[name]()


NAMES = ("jax_scan", "jax_scan_autodiff", "jax_python_loop", "jax_no_jit", "numpy_loop", "jax_newton",
         "jax_newton_analytic", "torch_loop", "sklearn_lbfgs")


def prepare(x, y, *, lr_mean: float, steps: int, slow_steps: int, tolerance: float, newton_max_iter: int,
            sklearn_max_iter: int, optional: dict[str, bool] | None = None,
            leave_out: frozenset[str] = frozenset()) -> dict[str, Implementation]:
    """Every implementation (`build`) on (x, y) but those in `leave_out` (over their time budget). `optional`
    ({"torch_loop": bool, "sklearn_lbfgs": bool}) leaves optional ones out; those not installed are left out."""
    skipped = set(skipped_optional(optional or {})) | set(leave_out)
    return {name: build(name, x, y, lr_mean=lr_mean, steps=steps, slow_steps=slow_steps, tolerance=tolerance,
                        newton_max_iter=newton_max_iter, sklearn_max_iter=sklearn_max_iter)
            for name in NAMES if name not in skipped}
