"""One seed, one data set, whatever the precision (issue 23 item 6): the homework's data sets are drawn in float64
and cast, so a float32 run's points are the float64 run's rounded once (JAX's float32 and float64 samplers turn the
same random bits into different numbers: before, `precision=float32` drew another data set)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from gradlab.problems import linreg, logistic

DRAWS = {
    "logistic": lambda: logistic.sample_data(jax.random.key(7), 40, -1.0, 1.5, 0.8),
    "linreg": lambda: linreg.sample_data(jax.random.key(7), 30, 0.5, -2.0, 0.3, -1.0, 2.0),
}


def _in(precision: str, draw):
    jax.config.update("jax_enable_x64", precision == "float64")
    try:
        return [np.asarray(a) for a in draw()]
    finally:
        jax.config.update("jax_enable_x64", True)


@pytest.mark.parametrize("name", DRAWS)
def test_a_float32_run_draws_the_float64_data_set_rounded(name):
    wide, narrow = _in("float64", DRAWS[name]), _in("float32", DRAWS[name])
    for x64, x32 in zip(wide, narrow, strict=True):
        assert x64.dtype == np.float64 and x32.dtype == np.float32
        np.testing.assert_array_equal(x32, x64.astype(np.float32))
    # the float32 sampler's own numbers are another data set: what a float32 run drew before
    own = np.asarray(jax.random.normal(jax.random.key(0), (40,), dtype=np.float32))
    assert not np.array_equal(own, np.asarray(jax.random.normal(jax.random.key(0), (40,))).astype(np.float32))


def test_a_float64_run_draws_what_it_drew_before():
    """The float64 data sets (and every verified number in float64) are unchanged."""
    key0, key1 = jax.random.split(jax.random.key(7))
    x0 = -1.0 + 0.8 * np.asarray(jax.random.normal(key0, (40,)))
    x1 = 1.5 + 0.8 * np.asarray(jax.random.normal(key1, (40,)))
    np.testing.assert_array_equal(_in("float64", DRAWS["logistic"])[0], np.concatenate([x0, x1]))
    key_x, key_noise = jax.random.split(jax.random.key(7))
    x = np.asarray(jax.random.uniform(key_x, (30,), minval=-1.0, maxval=2.0))
    y = 0.5 + -2.0 * x + 0.3 * np.asarray(jax.random.normal(key_noise, (30,)))  # NumPy: no fused multiply-add
    for drawn, expected in zip(_in("float64", DRAWS["linreg"]), (x, y), strict=True):
        np.testing.assert_array_equal(drawn, expected)
