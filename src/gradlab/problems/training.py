"""Gradient-based training as one `lax.scan`: a pure `train(...)` that jit and vmap can take whole.

    train = make_train(loss_fn, optimizer="adam", steps=500)
    result = jax.jit(train)(phi_init, lr, momentum, data)          # one run
    results = jax.jit(jax.vmap(train))(phi_inits, lrs, moms, data)  # thousands of runs in one call
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

OPTIMIZERS = ("sgd", "momentum", "adam")


def make_optimizer(name: str, lr: Any, momentum: Any = 0.0) -> optax.GradientTransformation:
    """sgd: phi -= lr g; momentum: heavy-ball SGD with decay `momentum`; adam: Adam with default betas.

    `lr` and `momentum` may be traced arrays, so a vmapped sweep can vary them.
    """
    if name == "sgd":
        return optax.sgd(lr)
    if name == "momentum":
        return optax.sgd(lr, momentum=momentum)
    if name == "adam":
        return optax.adam(lr)
    raise ValueError(f"unknown optimizer {name!r}; allowed: {', '.join(OPTIMIZERS)}")


class Trajectory(NamedTuple):
    phi: jax.Array  # final parameters
    losses: jax.Array  # (steps,) loss before each update
    path: jax.Array  # (steps + 1, P) parameters before each update and the final ones (or just first, last)
    grad_norm: jax.Array  # gradient norm at the final parameters


def make_train(loss_fn: Callable, optimizer: str, steps: int, keep_path: bool = True,
               value_and_grad: Callable | None = None) -> Callable:
    """Return train(phi_init, lr, momentum, *data) -> Trajectory: `steps` optax updates in one lax.scan.

    Each step needs the loss (recorded) and its gradient: `value_and_grad(phi, *data) -> (loss, grad)` if given,
    else the loss's own fused version `loss_fn.value_and_grad` when it has one (`logistic.bce_loss` does: one
    pass over the data, one exp per point), else `jax.value_and_grad(loss_fn)`. keep_path=False keeps only the
    first and last parameters (a large vmapped sweep need not store them all).
    """
    value_and_grad = value_and_grad or getattr(loss_fn, "value_and_grad", None) or jax.value_and_grad(loss_fn)

    def train(phi_init: jax.Array, lr: Any, momentum: Any, *data: Any) -> Trajectory:
        opt = make_optimizer(optimizer, lr, momentum)

        def step(carry, _):
            phi, state = carry
            loss, grad = value_and_grad(phi, *data)
            updates, state = opt.update(grad, state, phi)
            new_phi = optax.apply_updates(phi, updates)
            return (new_phi, state), (loss, phi if keep_path else None)

        (phi, _), (losses, path) = lax.scan(step, (phi_init, opt.init(phi_init)), length=steps)
        path = jnp.concatenate([path if keep_path else phi_init[None], phi[None]], axis=0)
        grad_norm = jnp.linalg.norm(value_and_grad(phi, *data)[1])
        return Trajectory(phi, losses, path, grad_norm)

    return train


def first_non_finite_step(losses: jax.Array, path: jax.Array) -> int | None:
    """The first step whose loss or parameters are NaN/inf, or None if training stayed finite (on the host:
    a check of arrays already computed, not worth compiling)."""
    losses, path = np.asarray(losses), np.asarray(path)
    bad = ~np.isfinite(losses) | ~np.all(np.isfinite(path[:-1]), axis=-1)
    bad = np.concatenate([bad, ~np.all(np.isfinite(path[-1:]), axis=-1)])
    return int(np.argmax(bad)) if bad.any() else None


def numpy_train(grad: Callable, phi_init, optimizer: str, lr: float, momentum: float, steps: int,
                b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> tuple[np.ndarray, float]:
    """`make_train`'s updates written by hand in NumPy (no JAX, no optax): the independent route for a sweep row.

        sgd       phi <- phi - lr g
        momentum  m <- momentum m + g;  phi <- phi - lr m                      (optax.sgd's heavy ball)
        adam      Adam with optax.adam's defaults (b1, b2, eps outside the root), bias-corrected

    `grad(phi) -> (dL/dphi, sum_i |per-point term|)`; returns the final phi and the largest such sum met (it sizes
    the gradient's round-off)."""
    phi = np.asarray(phi_init, dtype=float)
    m, v, scale = np.zeros_like(phi), np.zeros_like(phi), 0.0
    for t in range(1, steps + 1):
        g, size = grad(phi)
        scale = max(scale, size)
        if optimizer == "sgd":
            phi = phi - lr * g
        elif optimizer == "momentum":
            m = momentum * m + g
            phi = phi - lr * m
        else:
            m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
            phi = phi - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return phi, scale
