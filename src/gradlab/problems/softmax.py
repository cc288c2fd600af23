"""The derivative of the softmax function (Problem 1).

Softmax s_i = exp(z_i) / sum_j exp(z_j) has the Jacobian

    J_ij = d s_i / d z_j = s_i (delta_ij - s_j),   i.e.   J = diag(s) - s s^T,

which is symmetric and whose rows sum to zero (sum_i s_i = 1 for every z).

Saturated logits (one z_k far above the rest) are a real case: every entry of J is tiny but not zero.
Written as s_k (1 - s_k), the dominant diagonal entry collapses to 0 once s_k rounds to 1.0; here
1 - s_i is computed as sum_{j != i} s_j, which keeps its true magnitude. JAX's own `jax.nn.softmax`
Jacobian collapses that entry (its JVP is s * (t - <s, t>)), so the autodiff reference differentiates
softmax written per class as a logistic of the logit against the log-sum-exp of the others,

    s_i = sigmoid(z_i - logsumexp_{j != i} z_j),

where no term z_i - z_i (and no 1 - s_i) appears, so forward and reverse mode both keep tiny entries.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from gradlab.problems.numerics import max_abs_error, max_rel_error


@functools.partial(jax.jit, static_argnames="count")
def sample_logits(key: jax.Array, count: int, scale: float) -> jax.Array:
    """z_i ~ N(0, scale^2), i = 1..count."""
    return scale * jax.random.normal(key, (count,))


def softmax_stable(logits: jax.Array) -> jax.Array:
    """s = exp(z - logsumexp(z)): no overflow for large logits."""
    return jnp.exp(jax.nn.log_softmax(logits))


@jax.jit
def softmax_jacobian_analytic(logits: jax.Array) -> jax.Array:
    """J = diag(s) - s s^T with the diagonal s_i (1 - s_i) computed as s_i * sum_{j != i} s_j."""
    s = softmax_stable(logits)
    others = ~jnp.eye(s.shape[0], dtype=bool)
    # sum of the OTHER probabilities: equal to 1 - s_i, but without cancelling when s_i rounds to 1
    complement = jnp.sum(jnp.where(others, s[None, :], 0.0), axis=1)
    return jnp.where(others, -jnp.outer(s, s), jnp.diag(s * complement))


def softmax_per_class(logits: jax.Array) -> jax.Array:
    """s_i = sigmoid(z_i - logsumexp_{j != i} z_j), the autodiff reference (needs at least 2 logits).

    Equal to softmax, evaluated through log_sigmoid so neither the value nor its derivative subtracts
    from 1: d s_i / d z_i = s_i * sigmoid(-(z_i - lse_{j != i})), and sigmoid(-a) is computed directly.
    """
    n = logits.shape[0]
    others_only = jnp.where(jnp.eye(n, dtype=bool), -jnp.inf, logits[None, :])
    margin = logits - jax.nn.logsumexp(others_only, axis=1)
    return jnp.exp(jax.nn.log_sigmoid(margin))


@functools.partial(jax.jit, static_argnames="mode")
def softmax_jacobian_autodiff(logits: jax.Array, mode: str) -> jax.Array:
    """jax.jacfwd ("jacfwd") or jax.jacrev ("jacrev") of `softmax_per_class`."""
    transform = {"jacfwd": jax.jacfwd, "jacrev": jax.jacrev}[mode]
    return transform(softmax_per_class)(logits)


def collapsed_entries(value: jax.Array, reference: jax.Array) -> jax.Array:
    """How many entries are exactly 0 in `value` where the reference is a normal (nonzero) number."""
    return jnp.sum((value == 0) & (jnp.abs(reference) >= jnp.finfo(reference.dtype).tiny))


def tolerances(logits: jax.Array, jacobian: jax.Array) -> dict:
    """Round-off bounds for n logits z, eps = machine epsilon:

        rel       (n + 8) eps (1 + max|z|)     each s_i is exp of a margin z_i - lse(...) whose absolute error is
                                               about (n + 4) eps (1 + max|z|) (log-sum-exp of n terms), and exp turns
                                               an absolute error of the exponent into the same relative error of s_i
        abs       rel * max|J|                 the same, on the largest entry
        row_sum   (n + 8) eps max_i sum_j|J_ij|  n entries of relative error <= rel summed (Higham)
        symmetry  2 rel                        J_ij and J_ji each within rel of the truth, relative
    """
    n, eps = logits.shape[0], jnp.finfo(logits.dtype).eps
    rel = (n + 8) * eps * (1 + jnp.max(jnp.abs(logits)))
    return {"rel": rel, "abs": rel * jnp.max(jnp.abs(jacobian)), "symmetry_rel": 2 * rel,
            "row_sum": (n + 8) * eps * jnp.max(jnp.sum(jnp.abs(jacobian), axis=1)) + rel * jnp.max(jnp.abs(jacobian))}


@jax.jit
def jacobian_report(logits: jax.Array) -> dict:
    """The analytic Jacobian checked against both autodiff modes, and the structure the problem states (rows sum
    to 0, J symmetric) checked on jax.jacfwd's J, which is computed without the formula; and jax.nn.softmax."""
    jacobian = softmax_jacobian_analytic(logits)
    references = {mode: softmax_jacobian_autodiff(logits, mode) for mode in ("jacfwd", "jacrev")}
    autodiff = references["jacfwd"]
    naive = jax.jacfwd(jax.nn.softmax)(logits)
    magnitude = jnp.abs(jacobian)
    smallest = jnp.unravel_index(jnp.argmin(jnp.where(magnitude > 0, magnitude, jnp.inf)), jacobian.shape)
    return {
        "logits": logits,
        "softmax": softmax_stable(logits),
        "jacobian": jacobian,
        "max_abs_err": {mode: max_abs_error(jacobian, ref) for mode, ref in references.items()},
        "max_rel_err": {mode: max_rel_error(jacobian, ref) for mode, ref in references.items()},
        "row_sum_max_abs": jnp.max(jnp.abs(jacobian.sum(axis=1))),
        # J_ij = -s_i s_j = J_ji exactly (floating-point products commute): true of the formula by construction
        "symmetric": jnp.all(jacobian == jacobian.T),
        "autodiff_row_sum_max_abs": jnp.max(jnp.abs(autodiff.sum(axis=1))),
        "autodiff_symmetry_max_rel": max_rel_error(autodiff, autodiff.T),
        "tolerance": tolerances(logits, jacobian),
        "jacfwd": references["jacfwd"],
        "jacrev": references["jacrev"],
        "smallest_entry": {
            "index": jnp.stack(smallest),
            "analytic": jacobian[smallest],
            "jacfwd": references["jacfwd"][smallest],
            "jacrev": references["jacrev"][smallest],
        },
        "jax_nn_softmax": {
            "max_abs_err": max_abs_error(jacobian, naive),
            "max_rel_err": max_rel_error(naive, jacobian),
            "collapsed_entries": collapsed_entries(naive, jacobian),
        },
    }
