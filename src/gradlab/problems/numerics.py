"""Error measures, finite checks and precision-independent draws shared by the experiments (Problems 1, 7, 8, 9, 10
and the answers checker)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@jax.jit  # one compiled call where it runs eagerly (op by op, each small operation would be compiled on its own)
def max_abs_error(value: Any, reference: Any) -> jax.Array:
    """max_i |value_i - ref_i|."""
    return jnp.max(jnp.abs(jnp.asarray(value) - jnp.asarray(reference)))


@jax.jit
def max_rel_error(value: Any, reference: Any) -> jax.Array:
    """max_i |value_i - ref_i| / |ref_i| over every entry, tiny ones included.

    Entries where the reference is below the smallest normal number (subnormal or 0) carry no relative
    precision and are skipped, unless the value is a normal number there: then the error is infinite.
    Works on scalars and arrays, inside `jax.jit` too; the result is a 0-d array of the inputs' float type.
    """
    value, reference = jnp.asarray(value), jnp.asarray(reference)
    dtype = jnp.result_type(value, reference, float)
    value, reference = value.astype(dtype), reference.astype(dtype)
    tiny = jnp.finfo(dtype).tiny
    normal = jnp.abs(reference) >= tiny
    rel = jnp.abs(value - reference) / jnp.where(normal, jnp.abs(reference), 1.0)
    spurious = ~normal & (jnp.abs(value) >= tiny)
    return jnp.max(jnp.where(normal, rel, jnp.where(spurious, jnp.inf, 0.0)))


def planted_errors() -> dict:
    """The error measures reading back errors planted in a known array: a calibration of the instruments that every
    claim on max_abs_error or max_rel_error rests on (a measure that took the smallest entry, or skipped the
    spurious ones, would make those claims pass whatever the data).

    reference r = [1, -2, 0, 4] in the run's float type; r + [0.01, -0.25, 0, 0.1] is 0.25 off at most (abs);
    r * [1.01, 1.1, 1, 0.99] is 0.1 off at most relative to r (the 0 entry has no relative error: skipped); and 1
    where r is 0 is an infinite relative error. Each planted value is one rounded operation on exact numbers: read
    back within `tolerance` = 4 eps of the float type.
    """
    dtype = jnp.result_type(float)
    reference = np.array([1.0, -2.0, 0.0, 4.0], dtype)
    abs_measured, rel_measured, spurious = jax.device_get(_read_back(
        reference, np.array([0.01, -0.25, 0.0, 0.1], dtype), np.array([1.01, 1.1, 1.0, 0.99], dtype)))
    return {"max_abs_error": {"planted": 0.25, "measured": float(abs_measured)},
            "max_rel_error": {"planted": 0.1, "measured": float(rel_measured)},
            "spurious_is_infinite": bool(np.isinf(spurious)), "tolerance": 4 * float(np.finfo(dtype).eps)}


@jax.jit
def _read_back(reference, shift, factor):
    reference = jnp.asarray(reference)
    return (max_abs_error(reference + shift, reference), max_rel_error(reference * factor, reference),
            max_rel_error(reference.at[2].set(1.0), reference))


def central_difference_gradient(fn, phi: jax.Array, step: Any) -> jax.Array:
    """(f(phi + h e_k) - f(phi - h e_k)) / (2 h) for every k: truncation error h^2 |d^3f/dphi_k^3| / 6, round-off
    about eps |f| / h (h ~ (3 eps |f| / |f'''|)^(1/3) balances them)."""
    basis = jnp.eye(phi.shape[0], dtype=phi.dtype) * step
    return jax.vmap(lambda e: (fn(phi + e) - fn(phi - e)) / (2 * step))(basis)


def all_finite(values: Any) -> bool:
    """True if `values` (a number, a nested list, an array or a pytree of arrays) holds only finite numbers.

    Anything that is not numeric (a string, a ragged list, None) is not finite.
    """
    try:
        leaves = jax.tree_util.tree_leaves(values, is_leaf=lambda leaf: isinstance(leaf, list))
        return len(leaves) > 0 and all(bool(np.all(np.isfinite(np.asarray(leaf, dtype=float)))) for leaf in leaves)
    except (TypeError, ValueError):
        return False


def drawn_in_float64(draw: Callable[..., Any], key: jax.Array, *args: Any) -> Any:
    """draw(key, *args) computed in float64, its arrays then cast to the run's float type (float32 with x64 off).

    One seed is then one data set in float32 and float64 runs: a float32 run's points are the float64 run's,
    rounded once (JAX's float32 and float64 samplers turn the same random bits into different numbers). A float64
    run draws exactly as before. Inside a trace (jit/vmap) of a float32 run float64 cannot be computed (XLA's
    64-bit threefry does not lower there): `draw` runs as it is, in float32.
    """
    if jax.config.jax_enable_x64 or isinstance(key, jax.core.Tracer):
        return draw(key, *args)
    with jax.enable_x64(True):
        drawn = jax.device_get(draw(key, *args))  # numpy float64, before x64 is off again
    return jax.tree.map(lambda array: jnp.asarray(array, dtype=jnp.result_type(float)), drawn)
