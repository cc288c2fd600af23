"""Problem 7: the least-squares Hessian against jax.hessian, its eigenvalues, and the degenerate case."""

from __future__ import annotations

from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_refused_over_budget, experiment_module, validated_config
from hypothesis import example, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from gradlab.figures.linreg_hessian import FIGURES
from gradlab.problems import linreg
from gradlab.runner.config import ConfigError
from gradlab.runner.plotting import load_plot_data

N_POINTS = 12  # one shape for every example: each new shape costs a compilation
# The absolute floor of an entry sum_i 2 x_i^2 compared across two routes: a backend that flushes subnormals (XLA's
# CPU kernels, in one route and not always in the other) loses < 2 tiny per term, n terms; one that keeps them (a
# GPU) rounds a subnormal to a multiple of tiny * eps, so 6.7e-313 carries a relative error ~7e-12 > rtol. Both
# routes may do either: 2 routes x 2 n tiny.
SUBNORMAL_FLOOR = 4 * N_POINTS * np.finfo(float).tiny
# the test's own route: jax.hessian of the loss, jitted
AUTODIFF_HESSIAN = jax.jit(jax.hessian(linreg.least_squares_loss))
SMALL = "surface_grid_points=21"


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


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(data=datasets)
@example(data=([0.0] * (N_POINTS - 1) + [5.788345104826704e-157], [0.0] * N_POINTS, (0.0, 0.0)))  # det 1.5e-311
@example(data=([0.0] * (N_POINTS - 1) + [1.4891246794800811e-154], [0.0] * N_POINTS, (0.0, 0.0)))  # x^2 subnormal
def test_hessian_matches_autodiff_and_eigenvalues(data):
    xs, ys, phi = data
    x, y = jnp.asarray(xs), jnp.asarray(ys)
    report = linreg.convexity_report(x, y, jnp.asarray(phi), 1e-12)
    analytic = np.asarray(report["hessian"]["analytic"])
    np.testing.assert_allclose(analytic, AUTODIFF_HESSIAN(jnp.asarray(phi), x, y), rtol=1e-12,
                               atol=SUBNORMAL_FLOOR)
    exact = exact_determinant(xs)
    assert float(report["det"]) >= 0 and exact >= 0  # Cauchy-Schwarz
    # (+ 4 n^2 times the smallest normal number: XLA's CPU kernels flush a subnormal det, such as 1.5e-311, or a
    # subnormal square (x_i - mean)^2 < 2.2e-308, to 0; n such terms, times 4 n)
    assert float(report["det"]) == pytest.approx(
        float(exact), rel=1e-10, abs=1e-9 * float(analytic[1, 1]) ** 2 + 4 * N_POINTS**2 * np.finfo(float).tiny)
    assert float(report["trace"]) == pytest.approx(2 * (N_POINTS + sum(v * v for v in xs)), rel=1e-13)
    eigenvalues = np.asarray(report["eigenvalues"])
    np.testing.assert_allclose(eigenvalues, np.linalg.eigvalsh(analytic), rtol=1e-10, atol=1e-10 * eigenvalues[-1])
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


@pytest.mark.parametrize("flush", [True, False])
def test_the_subnormal_floor_allows_a_subnormal_entry_kept_or_flushed(flush):
    # the example x = 5.8e-157 gives H11 = 2 x^2 = 6.7e-313 (subnormal): NumPy keeps it and rounds in subnormal
    # steps, as a GPU does; the CPU's XLA kernels may flush it to 0. The comparison must pass either way.
    x = np.array([0.0] * (N_POINTS - 1) + [5.788345104826704e-157])
    exact = float(2 * sum(Fraction(float(v)) ** 2 for v in x))
    assert 0 < exact < np.finfo(float).tiny
    kept = float(np.nextafter(exact, 1.0))  # one subnormal step off: relative error ~7e-12 > rtol
    assert abs(kept - exact) / exact > 1e-12
    np.testing.assert_allclose(0.0 if flush else kept, exact, rtol=1e-12, atol=SUBNORMAL_FLOOR)
    with pytest.raises(AssertionError):  # the floor is tight enough that a normal-sized error still fails
        np.testing.assert_allclose(exact + 10 * SUBNORMAL_FLOOR, exact, rtol=1e-12, atol=SUBNORMAL_FLOOR)


@settings(max_examples=30, deadline=None)
@given(data=datasets, scale=st.sampled_from([1.0, 1e6, 1e12]))
def test_loss_roundoff_bounds_the_error_of_the_loss(data, scale):
    xs, ys, phi = data
    ys = [scale * v for v in ys]
    phi = (scale * phi[0], scale * phi[1])
    computed = float(linreg.least_squares_loss(jnp.asarray(phi), jnp.asarray(xs), jnp.asarray(ys)))
    p0, p1 = Fraction(phi[0]), Fraction(phi[1])
    exact = sum((p0 + p1 * Fraction(v) - Fraction(w)) ** 2 for v, w in zip(xs, ys, strict=True))
    bound = float(linreg.loss_roundoff(jnp.asarray(phi), jnp.asarray(xs), jnp.asarray(ys)))
    assert abs(Fraction(computed) - exact) <= Fraction(bound) + Fraction(np.finfo(float).tiny)


def test_a_surface_of_round_off_noise_is_not_resolved_whichever_way_it_rounds():
    # the degenerate case at slope 1e12: L(phi*) ~ 3e25, the window's rise ~80, the round-off of L ~1e11. The CPU
    # read the excess as <= 0 everywhere; a GPU's summation order gave it positive noise: unresolved on both.
    grid = np.linspace(-2.0, 2.0, 11)
    noise = 1.3e11
    rng = np.random.default_rng(0)
    flushed_like = -np.abs(rng.normal(0, noise, (11, 11)))
    positive_noise = rng.uniform(-noise, noise, (11, 11))
    assert positive_noise.max() > 0 and np.ptp(positive_noise) > 0  # the old test (max > 0, ptp > 0) read it drawn
    assert not linreg.surface_resolved(flushed_like, noise, grid, grid)
    assert not linreg.surface_resolved(positive_noise, noise, grid, grid)
    rise = 3 * noise * np.add.outer(grid**2, grid**2)  # a rise above the round-off is resolved
    assert linreg.surface_resolved(rise, noise, grid, grid)
    assert not linreg.surface_resolved(rise, noise, grid, np.full(11, 1e12))  # phi collapsed by its own round-off
    assert not linreg.surface_resolved(np.where(rise > 0, np.inf, rise), noise, grid, grid)


@pytest.mark.slow
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
    losses = [float(linreg.least_squares_loss(jnp.asarray(center + t * flat), x, y)) for t in (-3.0, 0.0, 5.0)]
    np.testing.assert_allclose(losses, losses[1], rtol=1e-9, atol=1e-9)
    assert center[0] + center[1] * value == pytest.approx(float(np.mean(ys)), rel=1e-9, abs=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("value", [1.1125369292536007e-308, 5e-324, -3e-310])  # subnormal: found by hypothesis
def test_subnormal_equal_x_still_give_the_least_norm_minimum(value):
    ys = np.arange(12.0)
    center = np.asarray(linreg.minimizer(jnp.full(12, value), jnp.asarray(ys)))
    np.testing.assert_allclose(center, [np.mean(ys), 0.0], rtol=1e-12, atol=1e-300)


@pytest.mark.slow
def test_naive_determinant_cancels_where_the_centred_one_does_not():
    x = jnp.full(20, 0.1)  # not exactly representable: I sum x^2 - (sum x)^2 rounds to a nonzero value
    naive = 4 * (x.shape[0] * jnp.sum(x**2) - jnp.sum(x) ** 2)
    assert float(naive) != 0.0
    report = linreg.convexity_report(x, jnp.zeros(20), jnp.zeros(2), 1e-12)
    assert abs(float(report["det"])) < 1e-12 * float(report["trace"]) ** 2
    assert not bool(report["strictly_convex"])


@pytest.mark.slow
def test_two_distinct_points_are_strictly_convex():
    report = linreg.convexity_report(jnp.array([0.0, 1.0]), jnp.array([0.0, 1.0]), jnp.zeros(2), 1e-12)
    np.testing.assert_array_equal(report["hessian"]["analytic"], [[4.0, 2.0], [2.0, 2.0]])
    assert float(report["det"]) == 4.0 and bool(report["strictly_convex"])
    np.testing.assert_allclose(report["eigenvalues"], [3 - np.sqrt(5), 3 + np.sqrt(5)], rtol=1e-14)


def test_default_run_in_process_and_its_figure(run_experiment):
    code, metrics, run_dir = run_experiment("linreg_hessian", SMALL, figures=True)
    assert code == 0 and metrics["status"] == "ok"
    assert metrics["hessian"]["max_abs_err"] < 1e-12
    assert metrics["strictly_convex"] is True and metrics["det"] > 0
    assert min(metrics["eigenvalues"]) > 0
    degenerate = metrics["degenerate"]
    assert degenerate["det"] == 0.0 and degenerate["strictly_convex"] is False
    assert abs(degenerate["eigenvalues"][0]) < 1e-12 * degenerate["trace"]
    assert degenerate["hessian"]["max_abs_err"] < 1e-12
    assert len(metrics["data"]["x"]) == 20  # the homework's linear data, configs/data/linear.yaml
    assert "loss_surface.png" in metrics["plots"] and (run_dir / "loss_surface.png").is_file()
    # one unit of phi0 as long as one of phi1 on both panels: the orthogonal eigenvectors look orthogonal
    (draw,) = [f.draw for f in FIGURES.figures if f.name == "loss_surface.png"]
    arrays = load_plot_data(run_dir / "plot_data.npz")
    # the homework's surfaces rise far above the loss's round-off: both drawn with contours, no warning
    assert bool(arrays["data_surface_resolved"]) and bool(arrays["degenerate_surface_resolved"])
    assert not any("flat to round-off" in w for w in metrics["warnings"])
    fig = draw(arrays, OmegaConf.create(metrics["config"]))
    panels = [ax for ax in fig.axes if ax.get_xlabel().startswith("phi0")]
    assert len(panels) == 2 and all(ax.get_aspect() == 1.0 for ax in panels)


def test_given_data_in_process(run_experiment):
    code, metrics, _ = run_experiment("linreg_hessian", "data.x=[0,1]", "data.y=[0,1]", SMALL)
    assert code == 0, metrics.get("error")
    assert metrics["hessian"]["analytic"] == [[4.0, 2.0], [2.0, 2.0]]
    assert metrics["degenerate"]["strictly_convex"] is False


@pytest.mark.slow
def test_x_alone_gets_y_from_the_model_and_y_alone_gets_x_drawn():
    data = validated_config("linreg_hessian", "data.x=[0,1,2]", "data.noise_sigma=1e-300").data
    x, y = data.load()
    np.testing.assert_allclose(y, data.intercept + data.slope * np.array([0.0, 1.0, 2.0]))
    data = validated_config("linreg_hessian", "data.y=[4,5,6,7]").data
    x, y = data.load()
    assert x.shape == (4,) and np.all((data.x_range[0] <= x) & (x <= data.x_range[1]))
    np.testing.assert_array_equal(y, [4, 5, 6, 7])


def test_length_mismatch_is_a_config_error():
    expected = r"^config error: data\.y=\[0\.0, 1\.0\] is not allowed: a list as long as data\.x \(3 values\)$"
    with pytest.raises(ConfigError, match=expected):
        validated_config("linreg_hessian", "data.x=[0,1,2]", "data.y=[0,1]")


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("data.x=[]", "data.x"),
        ("data.y=[1.0,inf]", "data.y"),
        ("data.x_range=[1.0,-1.0]", "data.x_range"),
        ("data.noise_sigma=-0.1", "data.noise_sigma"),
        ("hessian_point=[1.0]", "hessian_point"),
        ("convexity_rtol=0.0", "convexity_rtol"),
        ("data.n_points=0", "data.n_points"),
        ("degenerate_x=nan", "degenerate_x"),
        ("surface_grid_points=4", "surface_grid_points"),
    ],
)
@pytest.mark.slow
def test_config_errors_name_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        validated_config("linreg_hessian", override)
    assert err.value.key == key and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (("surface_grid_points=1000000",), "surface_grid_points"),  # two 1e6 x 1e6 loss surfaces
        (("data.n_points=100000000000",), "data.n_points"),
        (("data.x=[1.0,2.0,3.0]", "memory_budget_gb=0.0000001"), "surface_grid_points"),
    ],
)
def test_a_config_over_the_memory_budget_is_refused_before_any_array(run_experiment, overrides, key):
    assert_refused_over_budget(run_experiment("linreg_hessian", *overrides), key)


@pytest.mark.slow
def test_the_memory_estimate_names_the_key_that_sets_the_points():
    estimate = experiment_module("linreg_hessian").memory_estimate
    assert "data.x" in estimate(validated_config("linreg_hessian", "data.x=[1.0,2.0]"))
    assert "data.y" in estimate(validated_config("linreg_hessian", "data.y=[1.0,2.0]"))
    assert "data.n_points" in estimate(validated_config("linreg_hessian"))


@pytest.mark.parametrize(("slope", "flat"), [("1000000000000", {"degenerate"}),
                                            ("1.0e19", {"data", "degenerate"})])
def test_a_surface_flat_to_round_off_is_stated_and_still_drawn(run_experiment, slope, flat):
    # slope 1e12: the degenerate case's L(phi*) ~ 3e25 has round-off ~1e11, its window's rise ~80 (flat on any
    # backend, whatever sign its round-off takes); the data case's rise (~240) is far above its round-off (~0.4).
    # slope 1e19: phi1 +- 2 is below the round-off of phi itself (ulp 2048): both flat
    code, metrics, run_dir = run_experiment("linreg_hessian", f"data.slope={slope}", "surface_grid_points=11",
                                            figures=True)
    assert code == 0 and metrics["status"] == "ok", metrics.get("error")
    warned = {case for case in ("data", "degenerate") for w in metrics["warnings"]
              if f"the {case} loss surface is flat to round-off" in w}
    assert warned == flat
    assert (run_dir / "loss_surface.png").stat().st_size > 0
