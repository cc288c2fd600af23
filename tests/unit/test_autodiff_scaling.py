"""jvp vs vjp cost (Problem 10): the gradient routes agree, FLOPs are counted right, the budget skips and records,
time slopes are fitted with an honest interval, and the experiment runs in-process."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from conftest import assert_refused_over_budget, experiment_module, validated_config
from hypothesis import given, settings
from hypothesis import strategies as st

from gradlab.bench import autodiff as measure
from gradlab.bench.timing import compile_timed, xla_cost
from gradlab.problems import autodiff_cost as cost
from gradlab.runner.config import ConfigError


def _flops(fn, *args) -> float:
    return xla_cost(compile_timed(fn, *args)[0])["flops"]


@pytest.mark.parametrize(("P", "n_samples", "seed"), [(1, 3, 0), (7, 20, 1), (40, 5, 2)])
def test_linear_routes_equal_closed_form(P, n_samples, seed):
    problem = cost.linear_family(P, n_samples, np.random.default_rng(seed))
    closed = cost.logistic_grad(problem.theta, *problem.data)  # numpy, float64
    for route in ("rev", "fwd_batched", "fwd_sequential"):
        grad = jax.jit(cost.routes(problem.loss)[route])(problem.theta, *problem.data)
        np.testing.assert_allclose(grad, closed, rtol=1e-12, atol=1e-15, err_msg=route)


@settings(max_examples=3, deadline=None)
@given(st.integers(1, 6), st.integers(1, 3), st.integers(0, 2**16))
def test_mlp_routes_agree_with_each_other_and_a_finite_difference(width, depth, seed):
    problem = cost.mlp_family(width, depth, 3, 5, np.random.default_rng(seed))
    assert problem.theta.shape == (cost.mlp_parameter_count(3, width, depth),)
    routes = {name: jax.jit(fn) for name, fn in cost.routes(problem.loss).items()}
    rev = routes["rev"](problem.theta, *problem.data)
    for route in ("fwd_batched", "fwd_sequential"):
        np.testing.assert_allclose(routes[route](problem.theta, *problem.data), rev, rtol=1e-11, err_msg=route)
    # A central difference along one random direction checks the reverse route against the loss itself.
    direction = np.random.default_rng(seed + 1).standard_normal(problem.P)
    h = 1e-6
    loss = lambda th: float(routes["f"](th, *problem.data))  # noqa: E731
    fd = (loss(problem.theta + h * direction) - loss(problem.theta - h * direction)) / (2 * h)
    assert abs(fd - float(rev @ direction)) <= 1e-6 * max(1.0, abs(fd))


def test_mlp_parameter_count_by_hand():
    # 8 -> 16 -> 16 -> 1: (8*16 + 16) + (16*16 + 16) + (16*1 + 1) = 144 + 272 + 17
    assert cost.mlp_parameter_count(8, 16, 2) == 433


def test_sequential_flops_accounting_against_an_unrolled_loop():
    P = 12
    problem = cost.linear_family(P, 16, np.random.default_rng(0))
    args = (problem.theta, *problem.data)
    f = _flops(problem.loss, *args)
    one = _flops(cost.one_jvp(problem.loss), problem.theta, jnp.zeros(P), *problem.data)
    unrolled = _flops(cost.unrolled_sequential_forward_gradient(problem.loss, P), *args)
    looped = _flops(cost.sequential_forward_gradient(problem.loss), *args)
    # The loop recomputes the primal in every iteration, so it executes P x one jvp: what the experiment
    # reports. Unrolled, XLA may share primal work among the P jvps, but never the P tangent passes.
    assert P * (one - f) <= unrolled <= P * one
    assert looped < 0.5 * P * one  # XLA counts the lax.map body once: reading it directly is wrong


def test_forward_over_reverse_flops_grow_like_P():
    ratios = []
    for P in (16, 256):
        problem = cost.linear_family(P, 32, np.random.default_rng(P))
        args = (problem.theta, *problem.data)
        ratios.append(_flops(jax.jacfwd(problem.loss), *args) / _flops(jax.grad(problem.loss), *args))
    assert ratios[1] / ratios[0] == pytest.approx(16.0, rel=0.1)


@pytest.mark.parametrize("strategy", ["per_layer", "sqrt_segments"])
def test_checkpointing_changes_memory_not_the_gradient(strategy):
    Ws, X = cost.deep_problem(64, 16, 16, np.random.default_rng(0))
    plain, _ = compile_timed(jax.grad(cost.deep_loss("none")), Ws, X)
    checkpointed, _ = compile_timed(jax.grad(cost.deep_loss(strategy)), Ws, X)
    np.testing.assert_allclose(checkpointed(Ws, X), plain(Ws, X), rtol=1e-12)
    assert xla_cost(checkpointed)["temp_bytes"] < 0.6 * xla_cost(plain)["temp_bytes"]


@pytest.mark.parametrize(("depth", "segment"), [(64, 8), (100, 10), (128, 8), (13, 1)])
def test_segment_length_tiles_depth(depth, segment):
    assert cost.segment_length(depth) == segment


def test_budget_skips_with_prediction_and_memory_limit():
    timer = measure.BudgetedTimer(measure.Budget(seconds=1.0, temp_bytes=2**40, repeats=5, warmup=1))
    fn, x = (lambda v: v * 2.0), np.ones(4)
    timer.last["k"] = (100.0, 0.01)  # 0.01 s for 100 FLOPs measured before
    record, output = timer.measure("k", fn, (x,), flops=10_000.0)  # predicted 1 s per call, 6 calls
    assert output is None and record["skipped"]["reason"] == "time"
    assert record["skipped"]["predicted_s"] == pytest.approx(1.0)
    assert record["compile_s"] is None  # a loop skipped on its known FLOPs is never compiled
    tight = measure.BudgetedTimer(measure.Budget(seconds=10.0, temp_bytes=-1, repeats=5, warmup=1))
    record, output = tight.measure("k", fn, (x,))
    assert output is None and record["skipped"]["reason"] == "memory"
    ok, output = measure.BudgetedTimer(measure.Budget(10.0, 2**40, 5, 1)).measure("k", fn, (x,))
    np.testing.assert_allclose(output, 2.0 * x)
    assert ok["time"]["repeats"] >= 5 and "skipped" not in ok


def test_tall_and_wide_jacobians_agree_and_favour_the_right_mode():
    timer = measure.BudgetedTimer(measure.Budget(10.0, 2**40, 5, 1))
    tall = measure.measure_jacobians("tall", 64, 8, np.random.default_rng(0), timer, 1e-12)
    wide = measure.measure_jacobians("wide", 64, 8, np.random.default_rng(1), timer, 1e-12)
    assert tall["jacobians_match"] and wide["jacobians_match"]
    assert tall["flops_jacfwd"] < tall["flops_jacrev"] / 10
    assert wide["flops_jacrev"] < wide["flops_jacfwd"] / 10


# ------------------------------------------------------------------------------------------------------
# Log-log fits: slope, standard error and t interval, against synthetic data with a known slope


def test_loglog_slope_recovers_power_law_and_needs_two_sizes():
    P = [10, 100, 1000, 10000]
    assert cost.loglog_slope(P, [3.0 * p**2 for p in P]) == pytest.approx(2.0)
    assert cost.loglog_slope(P, [5.0 * p for p in P]) == pytest.approx(1.0)
    assert cost.loglog_slope([10, 100], [1.0, None]) is None


def test_loglog_fit_of_an_exact_power_law_has_a_zero_width_interval():
    P = np.array([100, 200, 500, 1000])
    fit = cost.loglog_fit(P, 3e-7 * P**1.5, confidence=0.95)
    assert fit.slope == pytest.approx(1.5, abs=1e-12) and fit.intercept == pytest.approx(np.log(3e-7), abs=1e-10)
    assert fit.points == 4 and fit.dof == 2 and fit.stderr == pytest.approx(0.0, abs=1e-12)
    assert fit.interval == pytest.approx((1.5, 1.5), abs=1e-10)


def test_loglog_fit_of_two_points_has_a_slope_but_no_interval():
    fit = cost.loglog_fit([10, 100], [1.0, 10.0], confidence=0.95)
    assert fit.slope == pytest.approx(1.0) and fit.stderr is None and fit.interval is None and fit.dof == 0
    assert cost.loglog_fit([10, 10], [1.0, 2.0], confidence=0.95) is None  # one distinct size: no slope


@settings(max_examples=20, deadline=None)
@given(st.floats(-1.0, 3.0), st.integers(3, 12), st.integers(0, 2**16))
def test_loglog_fit_matches_scipy_linregress(slope, points, seed):
    rng = np.random.default_rng(seed)
    P = np.geomspace(100, 1e5, points)
    costs = 1e-6 * P**slope * np.exp(0.2 * rng.standard_normal(points))
    fit = cost.loglog_fit(P, costs, confidence=0.9)
    reference = scipy.stats.linregress(np.log(P), np.log(costs))
    assert fit.slope == pytest.approx(reference.slope, abs=1e-10)
    assert fit.intercept == pytest.approx(reference.intercept, abs=1e-9)
    # tiny residuals (3 points) make stderr a difference of near-equal sums: absolute, in units of the slope
    assert fit.stderr == pytest.approx(reference.stderr, rel=1e-9, abs=1e-9)
    half = scipy.stats.t.ppf(0.95, points - 2) * reference.stderr
    assert fit.interval == pytest.approx((reference.slope - half, reference.slope + half), abs=1e-9)


def test_loglog_fit_interval_covers_the_true_slope_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    P = np.array([200, 500, 1000, 2000, 5000])
    trials = 2000
    covered = 0
    for _ in range(trials):
        times = 2e-9 * P**2.0 * np.exp(0.3 * rng.standard_normal(P.size))
        low, high = cost.loglog_fit(P, times, confidence=0.95).interval
        covered += low <= 2.0 <= high
    # binomial(2000, 0.95): standard deviation 0.5 %, so 93.5 % .. 96.5 % is a 3-sigma band
    assert 0.935 <= covered / trials <= 0.965


def test_slope_difference_of_equal_fits_has_twice_their_dof():
    rng = np.random.default_rng(3)
    P = np.geomspace(10, 1e4, 6)
    noise = np.exp(0.1 * rng.standard_normal(6))
    forward = cost.loglog_fit(P, 1e-9 * P**2 * noise, confidence=0.95)
    reverse = cost.loglog_fit(P, 1e-6 * P * noise, confidence=0.95)  # the same residuals: the same stderr
    difference = cost.slope_difference(forward, reverse, 0.95)
    assert difference["value"] == pytest.approx(1.0, abs=1e-12)  # the same noise cancels in the difference
    assert difference["stderr"] == pytest.approx(np.sqrt(2) * forward.stderr)
    assert difference["dof"] == pytest.approx(2 * forward.dof)  # Welch-Satterthwaite for equal variances
    half = scipy.stats.t.ppf(0.975, 2 * forward.dof) * difference["stderr"]
    assert difference["interval"] == pytest.approx((1.0 - half, 1.0 + half))
    two_points = cost.loglog_fit([10, 100], [1.0, 10.0])
    assert cost.slope_difference(forward, two_points, 0.95) is None


def _rows(P, times: dict) -> list[dict]:
    """`sizes` rows with FLOPs proportional to time and the given times (None: not measured)."""
    return [
        {"P": p, **{measure.FLOPS_KEY[r]: 1e9 * (t[i] or 1.0) for r, t in times.items()},
         **{f"time_{r}": t[i] for r, t in times.items()}}
        for i, p in enumerate(P)
    ]  # fmt: skip


def test_time_slopes_fit_only_sizes_above_the_floor_and_need_enough_of_them():
    P = np.array([100, 200, 500, 1000, 2000, 5000, 10000])
    dispatch = 2e-5  # below the floor every call costs the same: it must not flatten the fitted slope
    rev = np.maximum(2e-8 * P, dispatch)  # above the floor from P = 5000: two sizes only
    f = np.maximum(1e-8 * P, dispatch)  # above from 5000 too, but ...
    fwd = np.maximum(4e-10 * P**2.0, dispatch)  # above from 1000: four sizes
    times = {"f": list(f), "rev": list(rev), "fwd_batched": list(fwd), "fwd_sequential": [*fwd[:5], None, None]}
    slopes = measure.slopes(_rows(P, times), fit_min_seconds=5e-5, fit_min_sizes=3, confidence=0.95)
    assert slopes["time_fit_sizes"]["rev"] == [5000, 10000]
    assert slopes["time"]["rev"] is None and slopes["time_fit"]["rev"] is None  # 2 sizes: no slope, no guess
    assert slopes["time_fit_sizes"]["fwd_batched"] == [500, 1000, 2000, 5000, 10000]
    assert slopes["time"]["fwd_batched"] == pytest.approx(2.0)
    assert slopes["time_fit"]["fwd_batched"]["points"] == 5
    assert slopes["time_fit_sizes"]["fwd_sequential"] == [500, 1000, 2000]  # skipped sizes have no time
    assert slopes["time"]["fwd_sequential"] == pytest.approx(2.0)
    assert slopes["time_slope_difference"] is None  # the reverse slope is missing
    assert slopes["flops"]["fwd_batched"] == pytest.approx(cost.loglog_slope(P, fwd))

    relaxed = measure.slopes(_rows(P, times), fit_min_seconds=1e-5, fit_min_sizes=3, confidence=0.95)
    assert relaxed["time_fit_sizes"]["rev"] == list(P)  # the dispatch floor is fitted too: slope flattened
    assert relaxed["time"]["rev"] < 0.8


def test_time_slope_difference_with_known_slopes():
    rng = np.random.default_rng(11)
    P = np.array([200, 500, 1000, 2000, 5000, 10000, 20000])
    noise = lambda: np.exp(0.05 * rng.standard_normal(P.size))  # noqa: E731
    times = {"f": list(1e-8 * P * noise()), "rev": list(2e-8 * P * noise()),
             "fwd_batched": list(3e-10 * P**2 * noise()), "fwd_sequential": list(1e-9 * P**2 * noise())}  # fmt: skip
    slopes = measure.slopes(_rows(P, times), fit_min_seconds=1e-6, fit_min_sizes=3, confidence=0.95)
    for key, forward in (("time_slope_difference", "fwd_sequential"), ("time_slope_difference_batched", "fwd_batched")):
        difference = slopes[key]
        assert difference["forward_route"] == forward and difference["reverse_route"] == "rev"
        assert difference["value"] == pytest.approx(slopes["time"][forward] - slopes["time"]["rev"])
        low, high = difference["interval"]
        assert low < 1.0 < high and high - low < 0.3


# ------------------------------------------------------------------------------------------------------
# Config errors (one line, naming the key)


@pytest.mark.parametrize(
    ("override", "key"),
    [("linear.P=[100,10]", "linear.P"), ("timing.repeats=3", "timing.repeats"), ("families=[cnn]", "families"),
     ("timing.fit_min_sizes=2", "timing.fit_min_sizes"), ("timing.confidence=1.0", "timing.confidence"),
     ("mirror.sizes=[0]", "mirror.sizes"), ("seed=-1", "seed"), ("seed=4294967296", "seed")],
)
def test_config_errors_name_the_key(override, key):
    with pytest.raises(ConfigError, match="^config error: " + re.escape(key) + "="):
        validated_config("autodiff_scaling", override)


@pytest.mark.parametrize(
    ("overrides", "keys"),
    [
        (("linear.P=[1000000000]",), "linear.P, n_samples"),  # X is n_samples x P: 1.86 TiB in float64
        (("families=[mlp]", "mlp.widths=[1000000]"), "mlp.widths"),
        (("budget.temp_mib=100000000",), "budget.temp_mib"),  # the XLA temporaries a function may use
        (("memory.depths=[100000000]",), "memory.depths, memory.width"),
        (("families=[mlp]", "mlp.widths=[8]", "mlp.depth=100000"), "mlp.depth"),  # a traced, compiled layer each
        (("families=[mlp]", "mlp.depth=100000"), "mlp.depth, mlp.widths"),  # ... and 1e11 parameters
        (("timing.repeats=1000000000000",), "timing.repeats"),  # every call's time is kept
    ],
)
def test_a_config_over_the_memory_budget_is_refused_before_any_array(run_experiment, overrides, keys):
    assert_refused_over_budget(run_experiment("autodiff_scaling", *overrides), keys)


def test_the_memory_estimate_counts_only_the_parts_that_run():
    estimate = experiment_module("autodiff_scaling").memory_estimate
    both = estimate(validated_config("autodiff_scaling"))
    linear = estimate(validated_config("autodiff_scaling", "families=[linear]", "mirror.sizes=[]", "memory.depths=[]"))
    assert set(linear) == {"budget.temp_mib", "timing.repeats", "linear.P", "n_samples"} and set(both) > set(linear)
    # 256 x 1e5 float64 inputs, drawn with numpy and copied to the device: 0.4 GB
    assert linear["linear.P"] + linear["n_samples"] == 256 * 100_000 * 16


def test_empty_mirror_and_memory_lists_are_allowed():
    cfg = validated_config("autodiff_scaling", "mirror.sizes=[]", "memory.depths=[]")
    assert cfg.mirror.sizes == [] and cfg.memory.depths == []


# ------------------------------------------------------------------------------------------------------
# The experiment, in-process

TINY = (
    "families=[linear,mlp]",
    "linear.P=[10,100,1000,10000]",
    "mlp.widths=[2]",
    "n_samples=16",
    "budget.seconds=0.01",
    "timing.min_window_s=0.002",
    "mirror.sizes=[1,8]",
    "memory.depths=[4,16]",
    "memory.width=8",
    "memory.n_samples=8",
)
# The same config twice: the smallest that still runs every route.
REPEATED = ("families=[linear]", "linear.P=[10,100]", "n_samples=8", "timing.min_window_s=0.001",
            "mirror.sizes=[]", "memory.depths=[]")  # fmt: skip
SIZE_KEYS = {
    "P", "flops_f", "flops_rev", "flops_fwd", "time_f", "time_rev", "time_fwd_batched", "time_fwd_sequential",
    "temp_bytes_rev", "temp_bytes_fwd", "grads_match",
}  # fmt: skip


def _deterministic(metrics: dict) -> list:
    """What does not depend on the clock: sizes, FLOP counts, FLOP slopes, gradient differences."""
    keys = ("P", "flops_f", "flops_rev", "flops_fwd", "flops_fwd_sequential", "grad_max_rel_diff")
    rows = [[r[k] for k in keys] for rows in metrics["sizes"].values() for r in rows]
    return [rows, {family: s["flops"] for family, s in metrics["slopes"].items()}]


def test_tiny_run_in_process(run_experiment):
    code, metrics, run_dir = run_experiment("autodiff_scaling", *TINY, figures=True)
    assert code == 0, metrics.get("error")
    assert metrics["status"] == "ok" and metrics["all_grads_match"] is True
    linear = metrics["sizes"]["linear"]
    assert [r["P"] for r in linear] == [10, 100, 1000, 10000]
    assert [r["P"] for r in metrics["sizes"]["mlp"]] == [cost.mlp_parameter_count(8, 2, 2)]
    assert metrics["slopes"]["mlp"]["flops"]["rev"] is None  # one size: no slope, not a made-up one
    assert set(linear[0]) >= SIZE_KEYS
    assert linear[0]["grads_match"] is True and "fwd_batched_vs_rev" in linear[0]["grads_compared"]
    # 10000 jvps predicted from 1000 (x ~100 FLOPs) cannot fit 0.01 s: skipped, with the prediction.
    skipped = {(s["family"], s["P"], s["route"]): s for s in metrics["skipped"]}
    for route in ("fwd_batched", "fwd_sequential"):
        assert skipped[("linear", 10000, route)]["predicted_s"] > 0
        assert linear[-1][f"time_{route}"] is None
    assert linear[-1]["flops_fwd"] > 0  # FLOPs are read from the compile even where the run is skipped
    slopes = metrics["slopes"]["linear"]["flops"]
    assert slopes["fwd_batched"] - slopes["rev"] == pytest.approx(1.0, abs=0.1)
    ratio = metrics["cheap_gradient_ratio"]["linear"]["flops_rev_range"]
    assert ratio[0] > 1.0 and ratio[1] < 5.0
    assert metrics["mirror"]["tall"][1]["jacobians_match"] is True
    depth_rows = metrics["memory_vs_depth"]["rows"]
    assert depth_rows[1]["temp_bytes_sqrt_segments"] < depth_rows[1]["temp_bytes_none"]
    assert set(metrics["plots"]) == {"cost_vs_parameters.png", "tall_wide_crossover.png", "memory_vs_depth.png"}
    assert all((run_dir / name).is_file() for name in metrics["plots"])
    # a time slope exists exactly where enough sizes were above the floor, and is then fitted over all of them
    for family, family_slopes in metrics["slopes"].items():
        for route, fitted_sizes in family_slopes["time_fit_sizes"].items():
            fit = family_slopes["time_fit"][route]
            assert (fit is None) == (len(fitted_sizes) < 3), (family, route)
            assert fit is None or (fit["points"] == len(fitted_sizes) and fit["interval"][0] < fit["slope"])
    with np.load(run_dir / "plot_data.npz") as data:
        assert data["linear_time"].shape == (4, 4) and np.isnan(data["linear_time"][-1, 2:]).all()
        np.testing.assert_array_equal(data["linear_P"], [10, 100, 1000, 10000])


def test_same_config_same_numbers(run_experiment):
    (code, first, _), (_, second, _) = (run_experiment("autodiff_scaling", *REPEATED, figures=True) for _ in range(2))
    assert code == 0, first.get("error")
    assert first["sizes"]["linear"][1]["grads_match"] is True
    assert _deterministic(first) == _deterministic(second)
    assert set(first["plots"]) == {"cost_vs_parameters.png"}  # empty mirror/memory lists skip those parts
