"""Weight decay versus L2 regularization (Problem 3), and where the equivalence stops (AdamW).

Problem 3: the weight-decay update with decay rate lambda and learning rate alpha,

    phi <- (1 - lambda) phi - alpha dL/dphi,

is plain gradient descent on the L2-regularized loss

    L~[phi] = L[phi] + lambda / (2 alpha) sum_k phi_k^2,

because dL~/dphi = dL/dphi + (lambda / alpha) phi, so phi - alpha dL~/dphi = (1 - lambda) phi - alpha dL/dphi.

optax writes the same decay as `add_decayed_weights(w)` (adds w * phi to the gradient) followed by the
learning-rate scaling, so one SGD step shrinks phi by alpha * w: the homework's lambda is alpha * w, i.e.
w = lambda / alpha. `optax.adamw(alpha, weight_decay=w)` applies that decay AFTER Adam's per-coordinate
rescaling (decoupled weight decay, Loshchilov & Hutter 2019), so it is no longer gradient descent on L~.

Every run here is a whole trajectory in one `lax.scan`: row t of the result is phi after t steps.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from gradlab.problems.numerics import max_abs_error

Loss = Callable[[jax.Array], jax.Array]


# --------------------------------------------------------------------------------------------------------
# The mapping between the homework's (lambda, alpha) and optax's weight_decay


def l2_coefficient(lam: float, alpha: float) -> float:
    """The coefficient c of the penalty c sum_k phi_k^2 that decay rate lambda implies: lambda/(2 alpha)."""
    return lam / (2.0 * alpha)


def optax_weight_decay(lam: float, alpha: float) -> float:
    """optax's `weight_decay` w with per-step shrink (1 - alpha w) = (1 - lambda): w = lambda / alpha."""
    return lam / alpha


def weight_decay_mapping(lam: float, alpha: float) -> dict:
    """One decay written every way, for metrics: lambda, alpha, w = lambda/alpha, c = lambda/(2 alpha)."""
    return {
        "lam": lam,
        "alpha": alpha,
        "optax_weight_decay": optax_weight_decay(lam, alpha),
        "optax_weight_decay_formula": "lam / alpha",
        "per_step_shrink_factor": 1.0 - lam,
        "l2_coefficient": l2_coefficient(lam, alpha),
        "l2_coefficient_formula": "lam / (2 alpha): L~ = L + l2_coefficient * sum_k phi_k^2",
    }


def l2_penalty(phi: jax.Array, lam: float, alpha: float) -> jax.Array:
    """lambda / (2 alpha) sum_k phi_k^2."""
    return l2_coefficient(lam, alpha) * jnp.sum(phi**2)


def l2_penalty_gradient(phi: jax.Array, lam: float, alpha: float) -> jax.Array:
    """Problem 3's derivation step by hand: d/dphi [lambda/(2 alpha) sum phi_k^2] = (lambda/alpha) phi."""
    return (lam / alpha) * phi


def regularized_loss(loss: Loss, lam: float, alpha: float) -> Loss:
    """L~[phi] = L[phi] + lambda / (2 alpha) sum_k phi_k^2."""
    return lambda phi: loss(phi) + l2_penalty(phi, lam, alpha)


# --------------------------------------------------------------------------------------------------------
# Trajectories


def manual_weight_decay_trajectory(loss: Loss, phi_init: jax.Array, alpha, lam, steps: int) -> jax.Array:
    """phi_{t+1} = (1 - lambda) phi_t - alpha dL/dphi(phi_t), written by hand; shape (steps + 1, P)."""
    grad = jax.grad(loss)

    def step(phi, _):
        phi = (1.0 - lam) * phi - alpha * grad(phi)
        return phi, phi

    _, path = lax.scan(step, phi_init, length=steps)
    return jnp.concatenate([phi_init[None], path])


def optax_trajectory(loss: Loss, optimizer: optax.GradientTransformation, phi_init: jax.Array, steps: int) -> jax.Array:
    """Run `optimizer` on `loss` from `phi_init`; row t is phi after t steps; shape (steps + 1, P)."""
    grad = jax.grad(loss)

    def step(carry, _):
        phi, state = carry
        updates, state = optimizer.update(grad(phi), state, phi)
        phi = optax.apply_updates(phi, updates)
        return (phi, state), phi

    _, path = lax.scan(step, (phi_init, optimizer.init(phi_init)), length=steps)
    return jnp.concatenate([phi_init[None], path])


def decoupled_momentum(alpha, momentum, weight_decay) -> optax.GradientTransformation:
    """SGD with heavy-ball momentum and decoupled decay (SGDW): phi <- phi - alpha m_t - alpha w phi.

    The decay enters after the momentum buffer, so it is not the gradient of any penalty that momentum sees.
    """
    return optax.chain(
        optax.trace(decay=momentum),
        optax.add_decayed_weights(weight_decay),
        optax.scale_by_learning_rate(alpha),
    )


def weight_decay_runs(
    loss: Loss,
    phi_init: jax.Array,
    alpha,
    lam,
    steps: int,
    momentum: float,
    b1: float,
    b2: float,
    eps: float,
) -> dict[str, jax.Array]:
    """Every trajectory of the comparison, same start, same number of steps:

        sgd_manual          the Problem 3 update written by hand, on L
        sgd_l2              optax.sgd(alpha) on L~
        sgd_optax_decay     chain(add_decayed_weights(lambda/alpha), sgd(alpha)) on L
        momentum_l2         sgd(alpha, momentum) on L~
        momentum_decay      chain(add_decayed_weights(lambda/alpha), sgd(alpha, momentum)) on L: coupled
        momentum_decoupled  trace -> add_decayed_weights -> scale(-alpha) on L: decoupled (SGDW)
        adam_l2             adam(alpha) on L~
        adamw               adamw(alpha, weight_decay=lambda/alpha) on L: decoupled

    alpha and lam may be traced (the whole comparison vmaps over a grid of them); steps is static.
    """
    decay = optax_weight_decay(lam, alpha)
    penalized = regularized_loss(loss, lam, alpha)
    with_decay = optax.chain(optax.add_decayed_weights(decay), optax.sgd(alpha))
    with_decay_momentum = optax.chain(optax.add_decayed_weights(decay), optax.sgd(alpha, momentum=momentum))
    runs = {
        "sgd_manual": manual_weight_decay_trajectory(loss, phi_init, alpha, lam, steps),
        "sgd_l2": optax_trajectory(penalized, optax.sgd(alpha), phi_init, steps),
        "sgd_optax_decay": optax_trajectory(loss, with_decay, phi_init, steps),
        "momentum_l2": optax_trajectory(penalized, optax.sgd(alpha, momentum=momentum), phi_init, steps),
        "momentum_decay": optax_trajectory(loss, with_decay_momentum, phi_init, steps),
        "momentum_decoupled": optax_trajectory(loss, decoupled_momentum(alpha, momentum, decay), phi_init, steps),
        "adam_l2": optax_trajectory(penalized, optax.adam(alpha, b1=b1, b2=b2, eps=eps), phi_init, steps),
        "adamw": optax_trajectory(loss, optax.adamw(alpha, b1=b1, b2=b2, eps=eps, weight_decay=decay), phi_init, steps),
    }
    return runs


# The pairs compared, each as (metric group, metric name, run, reference run).
COMPARISONS = (
    ("sgd", "max_abs_diff_manual_vs_l2", "sgd_manual", "sgd_l2"),
    ("sgd", "max_abs_diff_optax_decay_vs_l2", "sgd_optax_decay", "sgd_l2"),
    ("momentum", "max_abs_diff_decay_vs_l2", "momentum_decay", "momentum_l2"),
    ("momentum", "max_abs_diff_decoupled_vs_l2", "momentum_decoupled", "momentum_l2"),
    ("adam", "max_abs_diff_adamw_vs_l2", "adamw", "adam_l2"),
)


def per_step_difference(path: jax.Array, reference: jax.Array) -> jax.Array:
    """max_k |phi_k^(t) - phi_ref_k^(t)| at every step t; shape (steps + 1,)."""
    return jax.vmap(max_abs_error)(path, reference)


@jax.jit
def penalty_gradient_error(phis: jax.Array, lam: float, alpha: float) -> jax.Array:
    """max |jax.grad(penalty) - (lambda/alpha) phi| over a batch of points phis (N, P)."""
    autodiff = jax.vmap(jax.grad(lambda phi: l2_penalty(phi, lam, alpha)))(phis)
    return max_abs_error(autodiff, l2_penalty_gradient(phis, lam, alpha))


# --------------------------------------------------------------------------------------------------------
# The independent route: every update written by hand in NumPy, with a NumPy gradient of L


def numpy_reference_runs(grad, phi_init, alpha: float, lam: float, steps: int, momentum: float, b1: float,
                         b2: float, eps: float) -> tuple[dict[str, np.ndarray], float]:
    """The updates of `weight_decay_runs` written from their papers in plain NumPy (no JAX, no optax), with
    w = lambda / alpha and `grad(phi) -> (dL/dphi, sum_i |per-point term|)` a hand-written NumPy gradient of L:

        sgd_decay      phi <- (1 - lambda) phi - alpha g                          (Problem 3)
        momentum_l2    m <- momentum m + (g + w phi);  phi <- phi - alpha m       (heavy ball on L~)
        momentum_decoupled  m <- momentum m + g;  phi <- phi - alpha (m + w phi)  (SGDW: decay after the buffer)
        adam_l2        Adam (Kingma & Ba) on g + w phi, bias-corrected, eps outside the root
        adamw          phi <- phi - alpha (m^ / (sqrt(v^) + eps) + w phi), Adam on g alone (Loshchilov & Hutter)

    Returns the trajectories (steps + 1, P) and the largest sum_i |per-point gradient term| met, which sizes
    the gradient's round-off for the tolerance."""
    w = lam / alpha
    phi0 = np.asarray(phi_init, dtype=float)
    scale = 0.0

    def g(phi):
        nonlocal scale
        value, size = grad(phi)
        scale = max(scale, size)
        return value

    paths = {name: [phi0] for name in ("sgd_decay", "momentum_l2", "momentum_decoupled", "adam_l2", "adamw")}
    m_heavy, m_decoupled = np.zeros_like(phi0), np.zeros_like(phi0)
    adam = {name: (np.zeros_like(phi0), np.zeros_like(phi0)) for name in ("adam_l2", "adamw")}
    for t in range(1, steps + 1):
        phi = paths["sgd_decay"][-1]
        paths["sgd_decay"].append((1.0 - lam) * phi - alpha * g(phi))
        phi = paths["momentum_l2"][-1]
        m_heavy = momentum * m_heavy + (g(phi) + w * phi)
        paths["momentum_l2"].append(phi - alpha * m_heavy)
        phi = paths["momentum_decoupled"][-1]
        m_decoupled = momentum * m_decoupled + g(phi)
        paths["momentum_decoupled"].append(phi - alpha * (m_decoupled + w * phi))
        for name in ("adam_l2", "adamw"):
            phi = paths[name][-1]
            gradient = g(phi) + (w * phi if name == "adam_l2" else 0.0)
            m, v = adam[name]
            m, v = b1 * m + (1 - b1) * gradient, b2 * v + (1 - b2) * gradient**2
            adam[name] = (m, v)
            step = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
            paths[name].append(phi - alpha * (step + (w * phi if name == "adamw" else 0.0)))
    return {name: np.stack(path) for name, path in paths.items()}, scale


# Each JAX/optax run against the NumPy route it must match: (metric name, run, reference)
REFERENCE_COMPARISONS = (
    ("sgd_manual", "sgd_manual", "sgd_decay"),
    ("sgd_l2", "sgd_l2", "sgd_decay"),
    ("sgd_optax_decay", "sgd_optax_decay", "sgd_decay"),
    ("momentum_decay", "momentum_decay", "momentum_l2"),
    ("momentum_l2", "momentum_l2", "momentum_l2"),
    ("momentum_decoupled", "momentum_decoupled", "momentum_decoupled"),
    ("adam_l2", "adam_l2", "adam_l2"),
    ("adamw", "adamw", "adamw"),
)


def penalty_gradient_fd_ratio(phis: np.ndarray, lam: float, alpha: float) -> float:
    """max over points and components of |(lambda/alpha) phi_k - central difference of the penalty| / bound.

    The penalty is quadratic, so the difference has no truncation error; the bound is the round-off of two
    penalty values, 8 eps P(phi) / h, plus the rounded step, eps |phi_k| |g_k| / h, with h = eps^(1/3) max(1, |phi_k|).
    Evaluated in NumPy (float64), a route that shares only the formula's statement with `l2_penalty_gradient`.
    """
    eps = np.finfo(float).eps
    worst = 0.0
    c = lam / (2.0 * alpha)
    for phi in np.asarray(phis, dtype=float):
        analytic = np.asarray(l2_penalty_gradient(phi, lam, alpha))
        for k in range(phi.size):
            h = eps ** (1 / 3) * max(1.0, abs(phi[k]))
            up, down = phi.copy(), phi.copy()
            up[k] += h
            down[k] -= h
            fd = (c * np.sum(up**2) - c * np.sum(down**2)) / (2 * h)
            bound = (8 * eps * c * np.sum(phi**2) + eps * abs(phi[k]) * abs(analytic[k])) / h + np.finfo(float).tiny
            worst = max(worst, abs(analytic[k] - fd) / bound)
    return worst
