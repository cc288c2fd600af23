"""Problem 7: the least-squares Hessian against jax.hessian, its eigenvalues, and the degenerate case."""

from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import experiment_module, read_metrics
from hypothesis import given, settings
from hypothesis import strategies as st

from gradlab.problems import linreg
from gradlab.runner.config import ConfigError, validate
from gradlab.runner.run import execute

jax.config.update("jax_enable_x64", True)

N_POINTS = 12  # one shape for every example: each new shape costs a compilation


def exact_determinant(x) -> Fraction:
    """det H = 4 (I sum x^2 - (sum x)^2) in exact rational arithmetic."""
    values = [Fraction(float(v)) for v in x]
    return 4 * (len(values) * sum(v * v for v in values) - sum(values) ** 2)


values = st.floats(-10, 10, allow_nan=False)
datasets = st.tuples(
    st.lists(values, min_size=N_POINTS, max_size=N_POINTS),
    st.lists(values, min_size=N_POINTS, max_size=N_POINTS),
    st.tuples(values, values),
)


@settings(max_examples=25, deadline=None)
@given(data=datasets)
def test_hessian_matches_autodiff_and_eigenvalues(data):
    xs, ys, phi = data
    x, y = jnp.asarray(xs), jnp.asarray(ys)
    report = linreg.convexity_report(x, y, jnp.asarray(phi), 1e-12)
    analytic = np.asarray(report["hessian"]["analytic"])
    np.testing.assert_allclose(
        analytic, jax.hessian(linreg.least_squares_loss)(jnp.asarray(phi), x, y), rtol=1e-12
    )
    exact = exact_determinant(xs)
    assert float(report["det"]) >= 0 and exact >= 0  # Cauchy-Schwarz
    assert float(report["det"]) == pytest.approx(
        float(exact), rel=1e-10, abs=1e-9 * float(analytic[1, 1]) ** 2
    )
    assert float(report["trace"]) == pytest.approx(2 * (N_POINTS + sum(v * v for v in xs)), rel=1e-13)
    eigenvalues = np.asarray(report["eigenvalues"])
    np.testing.assert_allclose(
        eigenvalues, np.linalg.eigvalsh(analytic), rtol=1e-10, atol=1e-10 * eigenvalues[-1]
    )
    assert float(report["min_eigenvalue_closed_form"]) == pytest.approx(
        eigenvalues[0], rel=1e-8, abs=1e-12 * eigenvalues[-1]
    )
    # L(phi* + v) - L(phi*) = lambda_min / 2 along the unit eigenvector of the smallest eigenvalue
    assert float(report["loss_rise_unit_step_along_flattest"]) == pytest.approx(
        eigenvalues[0] / 2, abs=1e-9 * eigenvalues[-1]
    )
    if float(exact) > 1e-6 * float(report["trace"]) ** 2:
        assert bool(report["strictly_convex"])
        np.testing.assert_allclose(report["minimizer"], np.polyfit(xs, ys, 1)[::-1], rtol=1e-8, atol=1e-8)


@settings(max_examples=20, deadline=None)
@given(value=st.floats(-50, 50, allow_nan=False), ys=st.lists(values, min_size=N_POINTS, max_size=N_POINTS))
def test_all_x_equal_is_degenerate(value, ys):
    x, y = jnp.full(N_POINTS, value), jnp.asarray(ys)
    report = linreg.convexity_report(x, y, jnp.zeros(2), 1e-12)
    assert not bool(report["strictly_convex"])
    trace = float(report["trace"])
    assert 0 <= float(report["det"]) <= 1e-12 * trace**2
    assert abs(float(report["eigenvalues"][0])) <= 1e-12 * trace
    assert float(report["eigenvalues"][1]) == pytest.approx(trace, rel=1e-12)
    # the flat direction is (-x, 1) up to sign: phi0 + phi1 x stays constant along it
    flat = np.asarray(report["eigenvectors"])[:, 0]
    assert abs(flat[0] + value * flat[1]) <= 1e-12 * (1 + abs(value))
    # the loss is constant along the line of minima, and every point on it fits mean y
    center = np.asarray(report["minimizer"])
    losses = [
        float(linreg.least_squares_loss(jnp.asarray(center + t * flat), x, y)) for t in (-3.0, 0.0, 5.0)
    ]
    np.testing.assert_allclose(losses, losses[1], rtol=1e-9, atol=1e-9)
    assert center[0] + center[1] * value == pytest.approx(float(np.mean(ys)), rel=1e-9, abs=1e-9)


def test_naive_determinant_cancels_where_the_centred_one_does_not():
    x = jnp.full(20, 0.1)  # not exactly representable: I sum x^2 - (sum x)^2 rounds to a nonzero value
    naive = 4 * (x.shape[0] * jnp.sum(x**2) - jnp.sum(x) ** 2)
    assert float(naive) != 0.0
    report = linreg.convexity_report(x, jnp.zeros(20), jnp.zeros(2), 1e-12)
    assert abs(float(report["det"])) < 1e-12 * float(report["trace"]) ** 2
    assert not bool(report["strictly_convex"])


def test_two_distinct_points_are_strictly_convex():
    report = linreg.convexity_report(jnp.array([0.0, 1.0]), jnp.array([0.0, 1.0]), jnp.zeros(2), 1e-12)
    np.testing.assert_array_equal(report["hessian"]["analytic"], [[4.0, 2.0], [2.0, 2.0]])
    assert float(report["det"]) == 4.0 and bool(report["strictly_convex"])
    np.testing.assert_allclose(report["eigenvalues"], [3 - np.sqrt(5), 3 + np.sqrt(5)], rtol=1e-14)


def test_cli_default_run_and_reproducible(cli):
    proc, first = cli("linreg_hessian", "surface_grid_points=21")
    assert proc.returncode == 0, proc.stderr
    assert first["status"] == "ok"
    assert first["hessian"]["max_abs_err"] < 1e-12
    assert first["strictly_convex"] is True and first["det"] > 0
    assert min(first["eigenvalues"]) > 0
    degenerate = first["degenerate"]
    assert degenerate["det"] == 0.0 and degenerate["strictly_convex"] is False
    assert abs(degenerate["eigenvalues"][0]) < 1e-12 * degenerate["trace"]
    assert degenerate["hessian"]["max_abs_err"] < 1e-12
    assert len(first["data"]["x"]) == 20
    assert "loss_surface.png" in first["plots"]
    proc, second = cli("linreg_hessian", "surface_grid_points=21")
    assert proc.returncode == 0, proc.stderr
    assert second["data"] == first["data"] and second["hessian"] == first["hessian"]


def test_given_data_in_process(tmp_path):
    experiment = experiment_module("linreg_hessian")
    raw = {"x": [0, 1], "y": [0, 1], "surface_grid_points": 11}
    assert execute("linreg_hessian", experiment.Config, experiment.main, raw, tmp_path) == 0
    metrics = read_metrics(tmp_path)
    assert metrics["hessian"]["analytic"] == [[4.0, 2.0], [2.0, 2.0]]
    assert metrics["degenerate"]["strictly_convex"] is False


def test_cli_length_mismatch_is_a_config_error(cli):
    proc, _ = cli("linreg_hessian", "x=[0,1,2]", "y=[0,1]")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "y=" in lines[0], proc.stderr


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"x": []}, "x"),
        ({"y": [1.0, float("inf")]}, "y"),
        ({"x_range": [1.0, -1.0]}, "x_range"),
        ({"noise_std": -0.1}, "noise_std"),
        ({"hessian_point": [1.0]}, "hessian_point"),
        ({"convexity_rtol": 0.0}, "convexity_rtol"),
        ({"num_points": 0}, "num_points"),
        ({"degenerate_x": float("nan")}, "degenerate_x"),
    ],
)
def test_config_errors_name_the_key(override, key):
    schema = experiment_module("linreg_hessian").Config
    with pytest.raises(ConfigError) as err:
        validate(override, schema)
    assert err.value.key == key and "\n" not in str(err.value)
