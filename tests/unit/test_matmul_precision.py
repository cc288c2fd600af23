"""float32 matrix products at full float32 precision on every backend (issue 22 item 3): a GPU's default would
compute them in TF32 (relative error ~1e-3), above the float32 tolerances the claims use."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradlab.runner.meta import set_precision


@pytest.fixture
def restore_precision():
    saved = jax.config.jax_enable_x64, jax.config.jax_default_matmul_precision
    yield
    jax.config.update("jax_enable_x64", saved[0])
    jax.config.update("jax_default_matmul_precision", saved[1])


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_every_run_asks_for_full_precision_products(restore_precision, precision):
    jax.config.update("jax_default_matmul_precision", None)
    set_precision(precision)
    assert jax.config.jax_default_matmul_precision == "highest"
    # what it buys: a float32 product within float32 rounding of the float64 one (TF32 would miss by ~1e-3)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(64, 256)), rng.normal(size=(256, 64))
    product = np.asarray(jnp.asarray(a, jnp.float32) @ jnp.asarray(b, jnp.float32), np.float64)
    scale = np.abs(a) @ np.abs(b)
    # float32 rounding: ~3e-7 of the scale here; TF32 inputs (2^-11 each) would give ~5e-5 to 2e-4
    assert np.max(np.abs(product - a @ b) / scale) < 16 * np.finfo(np.float32).eps
