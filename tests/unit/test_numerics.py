"""The shared error measures and finite check (problems/numerics.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradlab.problems import numerics
from gradlab.problems.numerics import all_finite, max_abs_error, max_rel_error, planted_errors


@pytest.mark.slow
def test_max_rel_error_flags_spurious_and_wrong_entries():
    reference = jnp.array([1e-300, 0.0, 2.0])
    assert float(max_rel_error(reference, reference)) == 0.0
    assert float(max_rel_error(jnp.array([1e-300, 1.0, 2.0]), reference)) == np.inf
    assert float(max_rel_error(jnp.array([2e-300, 0.0, 2.0]), reference)) == pytest.approx(1.0)


@pytest.mark.slow
def test_max_rel_error_takes_lists_numpy_and_float32():
    assert float(max_rel_error([1, 2], [1, 4])) == pytest.approx(0.5)
    assert float(max_rel_error(np.array([3.0]), np.array([2.0]))) == pytest.approx(0.5)
    assert max_rel_error(np.float32([1.0]), np.float32([1.5])).dtype == np.float32
    assert float(max_abs_error([1.0, 5.0], [2.0, 2.0])) == 3.0


@pytest.mark.parametrize(
    ("values", "finite"),
    [
        (3.0, True), ([[1, 2], [3, 4]], True), ({"a": jnp.ones(2), "b": {"c": jnp.array(True)}}, True),
        ([1.0, float("nan")], False), ({"a": jnp.ones(2), "b": jnp.array([np.inf])}, False),
        ([[1, 2], [3]], False), (None, False), ("a", False), (["a", "b"], False),
    ],
)
def test_all_finite(values, finite):
    assert all_finite(values) is finite


def test_the_error_measures_read_back_planted_errors_and_a_broken_measure_does_not(monkeypatch):
    calibration = planted_errors()
    for measure in ("max_abs_error", "max_rel_error"):
        assert abs(calibration[measure]["measured"] - calibration[measure]["planted"]) <= calibration["tolerance"]
    assert calibration["spurious_is_infinite"] is True
    # a measure that takes the smallest entry: the calibration sees it (as the claims on it would not)
    monkeypatch.setattr(numerics, "max_abs_error", lambda v, r: jnp.min(jnp.abs(jnp.asarray(v) - jnp.asarray(r))))
    with jax.disable_jit():  # the compiled calibration holds the measure it was traced with
        broken = planted_errors()["max_abs_error"]
    assert abs(broken["measured"] - broken["planted"]) > 0.2
