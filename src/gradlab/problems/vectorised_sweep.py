"""Thousands of logistic-regression trainings (Problem 8) in one `jax.jit(jax.vmap(train))` call.

Each configuration is (data seed, learning rate, momentum): the seed draws the data set exactly as the logreg
experiment does (`sample_data(jax.random.key(seed), ...)`), so a row of the sweep reproduces a single run.
When JAX sees several devices, the batch axis is sharded across them with `jax.sharding`; every configuration
is computed independently, so the results do not depend on the number of devices.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gradlab.problems import logistic
from gradlab.problems.training import make_train


class SweepGrid(NamedTuple):
    seeds: np.ndarray  # (B,) int
    lrs: np.ndarray  # (B,)
    momenta: np.ndarray  # (B,)


def full_grid(seeds, lrs, momenta) -> SweepGrid:
    """Every combination, seed-major: row = (i_seed * n_lr + i_lr) * n_momentum + i_momentum."""
    s, l, m = np.meshgrid(np.asarray(seeds), np.asarray(lrs), np.asarray(momenta), indexing="ij")
    return SweepGrid(s.ravel(), l.ravel(), m.ravel())


class SweepResult(NamedTuple):
    phi: jax.Array  # (B, 2) final parameters
    losses: jax.Array  # (B, steps) loss before each update
    final_loss: jax.Array  # (B,)
    grad_norm: jax.Array  # (B,)


def sample_all(data: dict, seeds) -> tuple[jax.Array, jax.Array]:
    """Every seed's data set of Problem 8 (iv), (S, 2 n_per_class) each (`data`: n_per_class, mean0, mean1, std, as
    configs/data/logistic.yaml), drawn in one call before the sweep is traced, as the logreg experiment draws it: a
    float32 run rounds the float64 draw once. Inside the sweep's trace a float32 run can only draw in float32
    (`numerics.drawn_in_float64`), other numbers: its rows then trained on other data than the run reports."""
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, dtype=jnp.uint32))
    return logistic.sample_data(keys, data["n_per_class"], data["mean0"], data["mean1"], data["std"])


def make_sweep(optimizer: str, steps: int, first_seed: int):
    """Return sweep(seeds, lrs, momenta, xs, ys) -> SweepResult, one vmapped training per configuration (not
    jitted); the configuration of seed s trains on row s - first_seed of xs, ys (`sample_all`)."""
    train = make_train(logistic.bce_loss, optimizer, steps, keep_path=False)

    def one(seed, lr, momentum, xs, ys):
        x, y = xs[seed - first_seed], ys[seed - first_seed]
        result = train(jnp.zeros(2, x.dtype), lr, momentum, x, y)
        return SweepResult(result.phi, result.losses, logistic.bce_loss(result.phi, x, y), result.grad_norm)

    return jax.vmap(one, in_axes=(0, 0, 0, None, None))


class Optima(NamedTuple):
    loss: jax.Array  # (S,) the loss where Newton's method stopped
    grad_norm: jax.Array  # (S,) |grad| there: below tol where it converged
    iterations: jax.Array  # (S,)
    separable: jax.Array  # (S,) no minimum exists (logistic.is_separable): the loss is where Newton stopped


def optima(xs, ys, tol: float, max_iter: int) -> Optima:
    """The minimum loss for each data set (rows of xs, ys: `sample_all`), by Newton's method (vmapped) stopped at
    |grad| < tol or after max_iter iterations; grad_norm tells which stopped short of the tolerance, separable which
    have none."""

    def one(x, y):
        result = logistic.newton(jnp.zeros(2, x.dtype), x, y, tol, max_iter)
        return Optima(logistic.bce_loss(result.phi, x, y), result.grad_norm, result.iterations,
                      logistic.is_separable(x, y))

    return jax.jit(jax.vmap(one))(xs, ys)


def shard_batch(grid: SweepGrid, devices: list) -> tuple[tuple[jax.Array, ...], int]:
    """Put the batch on `devices`, split along its axis (padded to a multiple of the device count).

    Returns the device arrays and the number of real rows (padding rows repeat the last configuration).
    """
    rows = len(grid.seeds)
    padded = -(-rows // len(devices)) * len(devices)
    sharding = NamedSharding(Mesh(np.asarray(devices), ("batch",)), PartitionSpec("batch"))
    arrays = []
    for column, dtype in ((grid.seeds, jnp.uint32), (grid.lrs, None), (grid.momenta, None)):
        values = np.concatenate([column, np.repeat(column[-1:], padded - rows)])
        arrays.append(jax.device_put(jnp.asarray(values, dtype=dtype), sharding))
    return tuple(arrays), rows
