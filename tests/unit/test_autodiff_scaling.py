"""jvp vs vjp cost (Problem 10): the gradient routes agree, FLOPs are counted right on the jaxpr, the HVP matches
its closed form, rounds interleave and summarise with one statistic, fits keep only sizes above the floor, the
crossover is located, the claims can fail, and the experiment runs in-process."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TEST_COMPILE_CACHE, assert_refused_over_budget, experiment_module, validated_config
from hypothesis import given, settings
from hypothesis import strategies as st

from gradlab.bench import autodiff as measure
from gradlab.bench import autodiff_summary as summarise
from gradlab.bench import resident
from gradlab.bench.autodiff_study import depth_problem
from gradlab.bench.timing import compile_timed, xla_cost
from gradlab.problems import autodiff_cost as cost
from gradlab.problems import scaling_fits as fits
from gradlab.runner.config import ConfigError, for_backend


def _flops(fn, *args) -> float:
    return xla_cost(compile_timed(fn, *args)[0])["flops"]


@pytest.mark.slow
@pytest.mark.parametrize(("P", "n_samples", "seed"), [(1, 3, 0), (7, 20, 1), (40, 5, 2)])
def test_linear_routes_equal_closed_form(P, n_samples, seed):
    problem = cost.linear_family(P, n_samples, np.random.default_rng(seed))
    closed = cost.logistic_grad(problem.theta, *problem.data)  # numpy, float64
    for route in ("rev", "fwd_batched", "fwd_sequential"):
        grad = jax.jit(cost.routes(problem.loss)[route])(problem.theta, *problem.data)
        np.testing.assert_allclose(grad, closed, rtol=1e-12, atol=1e-15, err_msg=route)


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_forward_over_reverse_flops_grow_like_P():
    ratios = []
    for P in (16, 256):
        problem = cost.linear_family(P, 32, np.random.default_rng(P))
        args = (problem.theta, *problem.data)
        ratios.append(_flops(jax.jacfwd(problem.loss), *args) / _flops(jax.grad(problem.loss), *args))
    assert ratios[1] / ratios[0] == pytest.approx(16.0, rel=0.1)


@pytest.mark.slow
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


# ------------------------------------------------------------------------------------------------------
# Log-log fits: slope, standard error and t interval, against synthetic data with a known slope


def test_loglog_slope_recovers_power_law_and_needs_two_sizes():
    P = [10, 100, 1000, 10000]
    assert fits.loglog_slope(P, [3.0 * p**2 for p in P]) == pytest.approx(2.0)
    assert fits.loglog_slope(P, [5.0 * p for p in P]) == pytest.approx(1.0)
    assert fits.loglog_slope([10, 100], [1.0, None]) is None


def test_loglog_fit_of_an_exact_power_law_has_a_zero_width_interval():
    P = np.array([100, 200, 500, 1000])
    fit = fits.loglog_fit(P, 3e-7 * P**1.5, confidence=0.95)
    assert fit.slope == pytest.approx(1.5, abs=1e-12) and fit.intercept == pytest.approx(np.log(3e-7), abs=1e-10)
    assert fit.points == 4 and fit.dof == 2 and fit.stderr == pytest.approx(0.0, abs=1e-12)
    assert fit.interval == pytest.approx((1.5, 1.5), abs=1e-10)


def test_loglog_fit_of_two_points_has_a_slope_but_no_interval():
    fit = fits.loglog_fit([10, 100], [1.0, 10.0], confidence=0.95)
    assert fit.slope == pytest.approx(1.0) and fit.stderr is None and fit.interval is None and fit.dof == 0
    assert fits.loglog_fit([10, 10], [1.0, 2.0], confidence=0.95) is None  # one distinct size: no slope


@settings(max_examples=20, deadline=None)
@given(st.floats(-1.0, 3.0), st.integers(3, 12), st.integers(0, 2**16))
def test_loglog_fit_matches_scipy_linregress(slope, points, seed):
    import scipy.stats  # the reference route, imported by the worker that runs it (0.8 s), not at collection

    rng = np.random.default_rng(seed)
    P = np.geomspace(100, 1e5, points)
    costs = 1e-6 * P**slope * np.exp(0.2 * rng.standard_normal(points))
    fit = fits.loglog_fit(P, costs, confidence=0.9)
    reference = scipy.stats.linregress(np.log(P), np.log(costs))
    assert fit.slope == pytest.approx(reference.slope, abs=1e-10)
    assert fit.intercept == pytest.approx(reference.intercept, abs=1e-9)
    # tiny residuals (3 points) make stderr a difference of near-equal sums: absolute, in units of the slope
    assert fit.stderr == pytest.approx(reference.stderr, rel=1e-9, abs=1e-9)
    half = scipy.stats.t.ppf(0.95, points - 2) * reference.stderr
    assert fit.interval == pytest.approx((reference.slope - half, reference.slope + half), abs=1e-9)


@pytest.mark.slow
def test_loglog_fit_interval_covers_the_true_slope_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    P = np.array([200, 500, 1000, 2000, 5000])
    trials = 2000
    covered = 0
    for _ in range(trials):
        times = 2e-9 * P**2.0 * np.exp(0.3 * rng.standard_normal(P.size))
        low, high = fits.loglog_fit(P, times, confidence=0.95).interval
        covered += low <= 2.0 <= high
    # binomial(2000, 0.95): standard deviation 0.5 %, so 93.5 % .. 96.5 % is a 3-sigma band
    assert 0.935 <= covered / trials <= 0.965


def test_slope_difference_of_equal_fits_has_twice_their_dof():
    import scipy.stats  # the reference route, imported by the worker that runs it (0.8 s), not at collection

    rng = np.random.default_rng(3)
    P = np.geomspace(10, 1e4, 6)
    noise = np.exp(0.1 * rng.standard_normal(6))
    forward = fits.loglog_fit(P, 1e-9 * P**2 * noise, confidence=0.95)
    reverse = fits.loglog_fit(P, 1e-6 * P * noise, confidence=0.95)  # the same residuals: the same stderr
    difference = fits.slope_difference(forward, reverse, 0.95)
    assert difference["value"] == pytest.approx(1.0, abs=1e-12)  # the same noise cancels in the difference
    assert difference["stderr"] == pytest.approx(np.sqrt(2) * forward.stderr)
    assert difference["dof"] == pytest.approx(2 * forward.dof)  # Welch-Satterthwaite for equal variances
    half = scipy.stats.t.ppf(0.975, 2 * forward.dof) * difference["stderr"]
    assert difference["interval"] == pytest.approx((1.0 - half, 1.0 + half))
    two_points = fits.loglog_fit([10, 100], [1.0, 10.0])
    assert fits.slope_difference(forward, two_points, 0.95) is None


# ------------------------------------------------------------------------------------------------------
# FLOPs counted on the jaxpr, against counts by hand


def test_dot_flops_by_hand_for_the_logistic_model():
    P, N = 5, 7
    problem = cost.linear_family(P, N, np.random.default_rng(0))
    args = (problem.theta, *problem.data)
    assert cost.dot_flops(problem.loss, *args) == 2 * N * P  # z = X theta
    assert cost.dot_flops(jax.grad(problem.loss), *args) == 4 * N * P  # ... and X^T r
    # P jvps in a lax.map: the scan body (X theta and X e_i) counted P times
    assert cost.dot_flops(cost.sequential_forward_gradient(problem.loss), *args) == P * 4 * N * P


@pytest.mark.parametrize(("input_dim", "width", "depth"), [(1, 3, 1), (8, 5, 2), (2, 16, 3)])
def test_mlp_gradient_flop_ratio_matches_the_formula(input_dim, width, depth):
    problem = cost.mlp_family(width, depth, input_dim, 4, np.random.default_rng(0))
    args = (problem.theta, *problem.data)
    counted = cost.dot_flops(jax.grad(problem.loss), *args) / cost.dot_flops(problem.loss, *args)
    assert counted == pytest.approx(cost.mlp_grad_flop_ratio(cost.mlp_shapes(input_dim, width, depth)), rel=1e-15)
    # by hand for depth 1, input 1: forward 4Nw, weight gradients 4Nw, the delta through the output layer 2Nw
    assert cost.mlp_grad_flop_ratio(cost.mlp_shapes(1, width, 1)) == 2.5


@pytest.mark.slow
def test_hvp_forward_over_reverse_equals_the_closed_form():
    problem = cost.linear_family(6, 9, np.random.default_rng(3))
    v = np.random.default_rng(4).standard_normal(6)
    got = jax.jit(cost.hessian_vector_product(problem.loss))(problem.theta, v, *problem.data)
    np.testing.assert_allclose(got, cost.logistic_hvp(problem.theta, v, *problem.data), rtol=1e-12, atol=1e-15)
    H = jax.jit(jax.hessian(problem.loss))(problem.theta, *problem.data)  # a third route: dense Hessian @ v
    np.testing.assert_allclose(got, np.asarray(H) @ v, rtol=1e-12, atol=1e-15)


def test_crossover_is_interpolated_in_log_n():
    n = np.array([1, 4, 16, 64])
    # t_fwd / t_rev = 2 n_in / n_out (forward twice as dear per column as reverse per row): exact crossing at
    # n_in = n_out / 2, which log-linear interpolation of a power law recovers exactly
    found = cost.crossovers(n, n, 2.0 * n[:, None] / n[None, :])
    assert found[0] is None  # n_out = 1: the ratio is already >= 1 at n_in = 1, no crossing inside the grid
    assert found[1:] == pytest.approx([2.0, 8.0, 32.0], rel=1e-12)
    assert cost.crossovers(n, n, np.full((4, 4), np.nan)) == [None] * 4


# ------------------------------------------------------------------------------------------------------
# Rounds, the one statistic, the floor


def test_rounds_interleave_every_function_once_per_round_in_changing_orders():
    visits = []

    def call(name):
        def fn():
            visits.append(name)
            return np.zeros(1)

        return fn

    names = [f"fn{i}" for i in range(6)]
    minima, share, failed = measure.timed_rounds({n: (call(n), ()) for n in names}, {n: 1 for n in names}, rounds=4)
    assert all(len(minima[n]) == 4 and all(t >= 0 for t in minima[n]) for n in names) and failed == {}
    rounds = [visits[i * len(names):(i + 1) * len(names)] for i in range(4)]  # one call each (k = 1: no re-warm)
    assert all(sorted(r) == names for r in rounds) and len({tuple(r) for r in rounds}) > 1
    assert share["process_share"] >= 0.0


def test_a_function_that_fails_while_timing_leaves_the_rounds_and_the_others_go_on():
    def fails():
        raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 534.26GiB")

    items = {"ok": (lambda: np.zeros(1), ()), "oom": (fails, ())}
    minima, _, failed = measure.timed_rounds(items, {"ok": 1, "oom": 1}, rounds=3)
    assert list(minima) == ["ok"] and len(minima["ok"]) == 3
    assert list(failed) == ["oom"] and failed["oom"].startswith("JaxRuntimeError: RESOURCE_EXHAUSTED")


def test_a_fast_call_is_repeated_within_a_round_and_its_minimum_kept():
    calls = {"n": 0}

    def fn():
        calls["n"] += 1
        return np.zeros(1)

    output, seconds = measure.first_call(fn, (), min_window_s=1.0)
    assert calls["n"] == 2 and seconds < 1.0  # output + a timed call (the first was faster than the window)
    k = measure.calls_per_round({"fast": (fn, ())}, {"fast": seconds}, min_window_s=1.0, max_calls=7,
                                recheck_s=10.0)
    assert k == {"fast": 7} and calls["n"] == 3  # timed again (as it will be timed), then max_calls a round
    measure.timed_rounds({"fast": (fn, ())}, k, rounds=3)
    assert calls["n"] == 3 + 3 * (1 + 7)  # per round a re-warm and max_calls timed calls


def test_a_first_call_slowed_by_other_runs_does_not_set_how_often_a_fast_call_is_timed():
    """A first call that took 2.5 windows (beside the main job's other runs) of a function that takes microseconds
    alone: timed again, it gets max_calls, not one cold call a round. Past recheck_s it is not called again."""
    calls = {"n": 0}

    def fn():
        calls["n"] += 1
        return np.zeros(1)

    items = {"fast": (fn, ())}
    assert measure.calls_per_round(items, {"fast": 2.5}, min_window_s=1.0, max_calls=7, recheck_s=10.0) == \
        {"fast": 7} and calls["n"] == 1
    assert measure.calls_per_round(items, {"fast": 25.0}, min_window_s=1.0, max_calls=7, recheck_s=10.0) == \
        {"fast": 1} and calls["n"] == 1  # past recheck_s: its first time stands, no call made
    # a call slower alone than its first time keeps the first (the faster of two single calls)
    slower_now = {"slow": (lambda: time.sleep(0.02), ())}
    assert measure.calls_per_round(slower_now, {"slow": 0.002}, min_window_s=0.01, max_calls=7, recheck_s=1.0) == \
        {"slow": 5}


def test_summary_is_the_minimum_of_round_minima_with_their_range():
    assert measure.summary([3.0, 1.0, 2.0]) == {"best": 1.0, "median": 2.0, "interval": [1.0, 3.0], "rounds": 3}
    # a ratio: of the best times, with the range of the round-by-round ratios (same round, same machine state)
    ratio = measure.ratio_summary([2.0, 4.0, 9.0], [1.0, 2.0, 3.0], scale=2.0)
    assert ratio == {"best": 1.0, "median": 1.0, "interval": [1.0, 1.5], "rounds": 3}
    assert measure.ratio_summary([4.0, 2.0], [1.0, 4.0])["interval"] == [0.5, 4.0]  # best 2 / 1 lies inside


def test_fit_above_floor_keeps_only_sizes_above_their_floor():
    P = [10, 100, 1000, 10000]
    times = [1e-5, 1e-5, 1e-3, 1e-2]  # the two smallest are the call floor
    kept = fits.fit_above_floor(P, times, [1e-4] * 4, 0.95, 2)
    assert kept["sizes"] == [1000, 10000] and kept["decades"] == pytest.approx(1.0)
    assert kept["fit"].slope == pytest.approx(1.0)
    assert fits.fit_above_floor(P, times, [1e-4] * 4, 0.95, 3)["fit"] is None


def test_peak_resident_memory_sees_a_large_temporary():
    size = 64 * 2**20
    peak = resident.peak_resident_bytes(lambda: np.ones(size // 8).sum(), ())
    if peak is None:
        pytest.skip("no /proc/self/clear_refs here")
    assert 0.8 * size <= peak <= 4 * size


def test_one_gradient_call_alone_in_a_new_process_takes_what_xla_planned_and_a_reused_process_does_not():
    """The memory claims fit XLA's plan (temp bytes); the operating system's account of one call checks it.
    Planted: the same measurement in a process that has run the call before (freed buffers stay resident and are
    reused: the rise misses the plan by MiBs), and a plan without the outputs (misses by the 8 MiB gradient)."""
    cfg = SimpleNamespace(memory=SimpleNamespace(width=64, n_samples=64), seed=0, precision="float64",
                          compile_cache=TEST_COMPILE_CACHE)  # as a run passes its own: the probes load, not compile
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("no /proc/self/clear_refs here")
    checked = resident.summary(resident.in_fresh_processes(cfg, 256), 256)
    assert set(checked["per_strategy"]) == set(cost.CHECKPOINT_STRATEGIES)
    assert checked["max_abs_excess_bytes"] <= resident.ALLOWANCE_BYTES, checked
    assert checked["per_strategy"]["none"]["output_bytes"] == 256 * 64 * 64 * 8  # the weights' gradient, float64

    args = depth_problem(0, 256, 64, 64)  # the study's data, float64 (conftest)
    in_this_process = {}
    for strategy, fresh in checked["per_strategy"].items():
        executable = jax.jit(jax.grad(cost.deep_loss(strategy))).lower(*args).compile()
        for _ in range(2):  # warm: what the study's process has done before it could measure
            jax.block_until_ready(executable(*args))
        in_this_process[strategy] = {**fresh, "rise_bytes": resident.peak_resident_bytes(executable, args)}
    assert resident.summary(in_this_process, 256)["max_abs_excess_bytes"] > resident.ALLOWANCE_BYTES, in_this_process
    without_outputs = {s: {**r, "output_bytes": 0} for s, r in checked["per_strategy"].items()}
    assert resident.summary(without_outputs, 256)["max_abs_excess_bytes"] > resident.ALLOWANCE_BYTES


@pytest.mark.parametrize(("load_1min", "others_busy", "overloaded"), [
    (3.0, 0.5, True),    # a load above the 2 cores, others still using a core
    (3.0, 0.1, False),   # the average still counts runs that ended (or wait): others use a fifth of a core now
    (3.0, None, True),   # no /proc/stat: the load average alone
    (1.5, 1.0, False),   # both cores busy, but no more runnable than cores
])
def test_machine_load_flags_a_load_above_the_cores_while_others_still_compute(monkeypatch, load_1min, others_busy,
                                                                              overloaded):
    monkeypatch.setattr(measure, "machine_cores", lambda: 2)
    monkeypatch.setattr(measure.os, "getloadavg", lambda: (load_1min, 1.0, 1.0))
    share = {"process_share": 0.0, "machine_busy_share": others_busy}
    monkeypatch.setattr(measure.CpuShare, "read", lambda self: share)
    load = measure.machine_load(0.0)
    assert load["overloaded"] is overloaded and load["others_busy_share"] == others_busy


# ------------------------------------------------------------------------------------------------------
# Config errors (one line, naming the key) and the memory budget


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "key"),
    [("linear.P=[100,10]", "linear.P"), ("timing.rounds=2", "timing.rounds"), ("families=[cnn]", "families"),
     ("timing.fit_min_sizes=2", "timing.fit_min_sizes"), ("timing.confidence=1.0", "timing.confidence"),
     ("mirror.sizes=[0]", "mirror.sizes"), ("seed=-1", "seed"), ("timing.floor_factor=0.5", "timing.floor_factor"),
     ("mlp.flops_depth=1", "mlp.flops_depth"), ("device_memory_fraction=0", "device_memory_fraction"),
     ("timing.max_call_s=0", "timing.max_call_s")],
)
def test_config_errors_name_the_key(override, key):
    with pytest.raises(ConfigError, match="^config error: " + re.escape(key) + "="):
        validated_config("autodiff_scaling", override)


@pytest.mark.parametrize(
    ("override", "key"),
    [("backend=metal", "backend"), ("presets.gpu.linear.P=[100,10]", "presets.gpu.linear.P"),
     ("+presets.gpu.timing.max_call_s=-1", "presets.gpu.timing.max_call_s"),
     ("+presets.gpu.linear.p=[10,100]", "presets.gpu.linear.p")],
)
def test_a_bad_backend_or_preset_is_refused_before_the_run_on_any_machine(override, key):
    """A preset holds the keys it changes under their top-level names, checked as those are (runner/config.py)."""
    with pytest.raises(ConfigError, match="^config error: " + re.escape(key) + "="):
        experiment_module("autodiff_scaling").check_config(validated_config("autodiff_scaling", override))


@pytest.mark.parametrize(
    ("overrides", "keys"),
    [
        (("linear.P=[1000000000]",), "linear.P, n_samples"),  # X is n_samples x P
        (("families=[mlp]", "mlp.widths=[1000000]"), "mlp.widths, mlp.n_samples"),  # jacfwd's P x n x width tangents
        (("memory.depths=[100000000]",), "memory.depths, memory.width"),
    ],
)
def test_a_config_over_the_memory_budget_is_refused_before_any_array(run_experiment, overrides, keys):
    assert_refused_over_budget(run_experiment("autodiff_scaling", *overrides), keys)


@pytest.mark.slow
def test_scale_full_is_a_longer_study():
    main, full = validated_config("autodiff_scaling"), validated_config("autodiff_scaling", "scale=full")
    assert full.timing.rounds > main.timing.rounds and max(full.linear.P) > max(main.linear.P)
    assert len(full.mirror.sizes) > len(main.mirror.sizes) and full.scale == "full"


# ------------------------------------------------------------------------------------------------------
# The experiment, in-process, and its claims

TINY = ("linear.P=[2,4,8]", "n_samples=64", "mlp.widths=[1,2]", "mlp.n_samples=16", "mlp.flops_width=64",
        "timing.min_window_s=0.0005", "timing.repeats=5", "timing.load_sample_s=0.01", "mirror.sizes=[1,2]",
        "mirror.hidden=4", "memory.depths=[4,16]", "memory.width=4", "memory.n_samples=4",
        "backend=cpu")  # fmt: skip  (backend=cpu: these sizes on any device, not presets.gpu's)


@pytest.mark.slow  # ~120 small compiles: 5-15 s on a busy 2-core machine
def test_tiny_run_times_every_route_at_every_size_and_states_its_claims(run_experiment):
    from gradlab.verify.claims import CLAIMS
    from gradlab.verify.report import evaluate

    code, metrics, run_dir = run_experiment("autodiff_scaling", *TINY, figures=True)
    assert code == 0, metrics.get("error")
    assert metrics["all_grads_match"] is True
    assert metrics["skipped"] == []  # this tiny run fits any device: every function ran ...
    for family, names in (("linear", {"f", "rev", "fwd_batched", "fwd_sequential", "jvp", "hvp", "empty"}),
                          ("mlp", {"f", "rev", "fwd_batched", "fwd_sequential", "jvp", "empty"})):  # fmt: skip
        for row in metrics["sizes"][family]:  # nothing predicted: every function that ran timed in every round
            # ... but the expectations follow the routes that ran (row["ran"]), not a list of all routes: on a
            # device where one does not fit it is skipped with its reason (metrics["skipped"]), not compared
            assert set(row["time"]) == set(row["ran"]) <= names
            ran = set(row["ran"])
            expected = {f"{r}_vs_rev" for r in ("fwd_batched", "fwd_sequential") if {r, "rev"} <= ran}
            expected |= {"rev_vs_closed_form"} if family == "linear" and "rev" in ran else set()
            assert set(row["compared"]) == expected
            assert all(t["rounds"] == 3 and t["interval"][0] == t["best"] <= t["median"] <= t["interval"][1]
                       for t in row["time"].values())  # fmt: skip
            assert row["floor_s"] == pytest.approx(10 * row["time"]["empty"]["best"])
            assert set(row["calls_per_round"]) == set(row["time"]) and min(row["calls_per_round"].values()) >= 1
    for when in ("before", "after"):
        assert metrics["load"][when]["cores"] >= 1 and len(metrics["load"][when]["loadavg"]) == 3
        assert metrics["load"][when]["process_cores"] == 1  # timed on one core (the study's default, cores: 1)
    assert len(metrics["meta"]["cores"]["used"]) == 1
    assert metrics["flop_ratio"]["linear"]["max_rel_err"] == 0.0
    assert metrics["hvp"]["max_ratio_to_bound"] < 1.0
    assert np.array(metrics["mirror"]["ratio"]).shape == (2, 2) and metrics["mirror"]["jacobians_match"]
    assert set(metrics["plots"]) == {"time_vs_parameters.png", "ratios_vs_parameters.png", "jacobian_crossover.png",
                                     "memory_vs_depth.png"}  # fmt: skip
    assert all((run_dir / name).is_file() for name in metrics["plots"])
    assert "t_seq/(P t_jvp)" in (run_dir / "report_tables.md").read_text()  # the report includes it
    rows = [evaluate(c, metrics) for c in CLAIMS if c.experiment == "autodiff_scaling"]
    exact = [r for r in rows if r.claim.quantity.startswith(("matrix-product FLOPs", "MLP: cost(grad)", "HVP forward",
                                                             "reverse, batched"))]  # fmt: skip
    assert len(exact) == 5 and all(r.verdict == "pass" for r in exact), [(r.claim.quantity, r.verdict) for r in exact]
    # a planted error fails its claim: the slope difference moved off 1 by more than its interval
    broken = json.loads(json.dumps(metrics))
    difference = broken["slopes"]["linear"]["time_slope_difference"]
    if difference is not None:
        difference["value"] = 1.0 + 2 * difference["half_width"] + 0.1
        claim = next(c for c in CLAIMS if c.quantity == "linear: time slope forward (P jvps) - reverse = 1")
        assert evaluate(claim, broken).verdict == "FAIL"
    broken["flop_ratio"]["linear"]["max_rel_err"] = 0.02
    claim = next(c for c in CLAIMS if c.quantity.startswith("matrix-product FLOPs"))
    assert evaluate(claim, broken).verdict == "FAIL"


def _jacfwd_that_runs_out_of_memory_at(P: int):
    """cost.batched_forward_gradient whose program fails at run time at size P, as XLA failed on a GPU
    (RESOURCE_EXHAUSTED): a host callback raising inside the compiled call surfaces as a JaxRuntimeError."""
    real = cost.batched_forward_gradient

    def batched(loss):
        jacobian = real(loss)

        def grad(theta, *data):
            if theta.shape != (P,):
                return jacobian(theta, *data)

            def exhausted(x):
                raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 534.26GiB.")

            return jax.pure_callback(exhausted, jax.ShapeDtypeStruct(theta.shape, theta.dtype), theta)

        return grad

    return batched


SMALL_LINEAR = ("families=[linear]", "linear.P=[2,4,8]", "n_samples=64", "timing.min_window_s=0.0005",
                "timing.repeats=5", "timing.load_sample_s=0.01", "mirror.sizes=[]", "memory.depths=[]",
                "backend=cpu")  # fmt: skip


@pytest.mark.slow  # ~20 small compiles
def test_a_route_that_runs_out_of_device_memory_is_recorded_and_the_run_goes_on(run_experiment, monkeypatch):
    monkeypatch.setattr(cost, "batched_forward_gradient", _jacfwd_that_runs_out_of_memory_at(4))
    code, metrics, run_dir = run_experiment("autodiff_scaling", *SMALL_LINEAR)
    assert code == 0, metrics.get("error")
    (skipped,) = metrics["skipped"]
    assert (skipped["part"], skipped["size"], skipped["function"], skipped["status"]) == ("linear", 4, "fwd_batched",
                                                                                          "failed")  # fmt: skip
    assert skipped["reason"].startswith("JaxRuntimeError") and "RESOURCE_EXHAUSTED" in skipped["reason"]
    assert "\n" not in skipped["reason"]
    rows = {r["P"]: r for r in metrics["sizes"]["linear"]}
    assert "fwd_batched" not in rows[4]["ran"] and "fwd_batched_vs_rev" not in rows[4]["compared"]
    assert all("fwd_batched" in rows[P]["time"] and "fwd_batched_vs_rev" in rows[P]["compared"] for P in (2, 8))
    assert metrics["all_grads_match"] and any("not run" in w for w in metrics["warnings"])
    # every size's record was written as it completed, then again once timed
    records = [json.loads(line) for line in (run_dir / "sizes.jsonl").read_text().splitlines()]
    assert [(r["P"], r["stage"]) for r in records] == [(P, "compiled and called once") for P in (2, 4, 8)] + [
        (P, "timed") for P in (2, 4, 8)]
    assert "fwd_batched" not in records[1]["ran"] and "| linear | 4 | fwd_batched |" in (
        run_dir / "report_tables.md").read_text()


def test_device_memory_takes_the_devices_free_bytes_or_the_host_budget(monkeypatch):
    guard = measure.DeviceMemory(fallback_bytes=1000.0, fraction=0.5)
    if jax.devices()[0].memory_stats() is None:  # the CPU: no device statistics, the host budget stands in
        assert guard.refuse(500) is None
        assert "the host memory budget" in guard.refuse(501) and "0.5 x" in guard.refuse(501)

    class Device:
        def memory_stats(self):
            return {"bytes_limit": 10 * 2**30, "bytes_in_use": 4 * 2**30}

    monkeypatch.setattr(measure.jax, "devices", lambda: [Device()])
    assert guard.free_bytes() == (6 * 2**30, "the device's memory_stats()")
    assert guard.refuse(3 * 2**30) is None
    assert guard.refuse(3 * 2**30 + 1).startswith("needs 3 GiB, over 0.5 x the 6 GiB free")


def test_records_are_rewritten_whole_and_keep_every_completed_one(tmp_path):
    records = measure.Records(tmp_path / "sizes.jsonl")
    records.add({"P": 2})
    records.add({"P": 4, "time": 1.5})
    assert [json.loads(line) for line in (tmp_path / "sizes.jsonl").read_text().splitlines()] == [
        {"P": 2}, {"P": 4, "time": 1.5}]
    assert [p.name for p in tmp_path.iterdir()] == ["sizes.jsonl"]  # no temporary left behind


@pytest.mark.slow
def test_the_backend_preset_replaces_only_the_keys_it_sets():
    schema = experiment_module("autodiff_scaling").Config
    cfg = validated_config("autodiff_scaling", "presets.gpu.linear.P=[100,1000]")
    on_gpu, which = for_backend(cfg, schema, "gpu")
    assert which == "gpu (presets.gpu)" and on_gpu.linear.P == [100, 1000]
    assert on_gpu.mlp.widths == cfg.presets["gpu"]["mlp"]["widths"] and on_gpu.mlp.depth == cfg.mlp.depth
    assert on_gpu.n_samples == cfg.presets["gpu"]["n_samples"] and on_gpu.timing == cfg.timing  # not in the preset
    assert for_backend(cfg, schema, "cpu") == (cfg, "cpu (top-level keys)")
    forced = validated_config("autodiff_scaling", "backend=cpu")
    assert for_backend(forced, schema, "gpu") == (forced, "cpu (top-level keys)")  # overridable on the command line


def test_hvp_bound_allows_subnormals_kept_or_flushed():
    # theta drives p(1 - p) v to ~1e-310: the closed form's entries are subnormal in float64, and a device that
    # flushes subnormals returns 0 there. Both are within the bound (its smallest-normal term); 1e-300 is not.
    X = -np.array([[1.0, 0.5], [1.0, 0.25], [1.0, 0.0], [1.0, 0.125]])  # z = X theta = -706: p = e^-706 ~ 2e-307
    theta, v, t = np.array([706.0, 0.0]), np.array([1e-3, -2e-3]), np.zeros(4)
    exact = cost.logistic_hvp(theta, v, X, t)
    assert 0 < np.abs(exact).max() < np.finfo(np.float64).smallest_normal  # subnormal
    args = (theta, v, X, t)
    flushed = np.where(np.abs(exact) < np.finfo(np.float64).smallest_normal, 0.0, exact)
    assert summarise.hvp_check([args], [flushed])["max_ratio_to_bound"] <= 1.0
    assert summarise.hvp_check([args], [exact])["max_ratio_to_bound"] == 0.0
    assert summarise.hvp_check([args], [exact + 1e-300])["max_ratio_to_bound"] > 1.0


def _ops_under(computations: dict, calls: dict, name: str, seen=frozenset()) -> set:
    found = set(computations.get(name, set()))
    for callee in calls.get(name, ()):
        if callee not in seen:
            found |= _ops_under(computations, calls, callee, seen | {name})
    return found


@pytest.mark.parametrize("family", ["linear", "mlp"])
def test_the_loop_of_jvps_shares_the_primal_xla_hoists_it_out_of_the_loop(family):
    # Why t_seq / (P t_jvp) < 1 and why the MLP's forward - reverse slope exceeds 1 at small P: the P jvps of
    # lax.map recompute only tangents; the primal's exp/log1p (and the MLP's tanh) run once, outside the loop.
    import re

    problem = (cost.linear_family(4, 16, np.random.default_rng(0)) if family == "linear"
               else cost.mlp_family(4, 1, 1, 16, np.random.default_rng(0)))  # fmt: skip
    text = jax.jit(cost.sequential_forward_gradient(problem.loss)).lower(problem.theta, *problem.data).compile()
    text = re.sub(r", metadata=\{[^}]*\}", "", text.as_text())
    blocks = {b.split(" ", 1)[0]: b for b in re.split(r"\n(?=\S)", text)}
    computations = {k: set(re.findall(r" (tanh|exponential|log-plus-one|dot)\(", b)) for k, b in blocks.items()}
    calls = {k: set(re.findall(r"(?:calls|body|condition)=(%[\w.\-]+)", b)) for k, b in blocks.items()}
    (body,) = set(re.findall(r"body=(%[\w.\-]+)", text))
    entry = next(k for k, b in blocks.items() if b.startswith("ENTRY"))
    primal = {"tanh", "exponential", "log-plus-one"}
    assert _ops_under(computations, calls, body) & primal == set()  # the loop: tangent products only
    assert {"exponential", "log-plus-one"} <= _ops_under(computations, calls, entry)  # the primal, once


def _jvp_bound_claim_on(jvp_rounds_at_40: list[float]):
    """`linear: one jvp costs <= 3 f` judged on synthetic rounds: f takes 1, 2, 2 ms at P = 40 (its best in a
    quiet round), 1 ms elsewhere; one jvp 1.5 f everywhere but P = 40, where it takes `jvp_rounds_at_40`."""
    from types import SimpleNamespace

    from gradlab.verify.claims import CLAIMS
    from gradlab.verify.report import evaluate

    sizes, minima, rows = [10, 20, 40, 80], {}, []
    for i, P in enumerate(sizes):
        f = [1e-3, 2e-3, 2e-3] if P == 40 else [1e-3] * 3
        times = {"empty": [1e-6] * 3, "f": f, "rev": [2 * v for v in f], "fwd_sequential": [2 * P * v for v in f],
                 "jvp": jvp_rounds_at_40 if P == 40 else [1.5 * v for v in f]}
        minima.update({("linear", i, name): value for name, value in times.items()})
        rows.append({"P": P, "floor_s": 1e-5, "time": {name: measure.summary(v) for name, v in times.items()}})
    out = summarise.ratios("linear", rows, minima, SimpleNamespace(confidence=0.95, fit_min_sizes=3))
    (claim,) = [c for c in CLAIMS if c.quantity == "linear: one jvp costs <= 3 f"]
    return out, evaluate(claim, {"status": "ok", "ratios": {"linear": out}})


def test_the_jvp_bound_fails_a_jvp_dearer_in_every_round_not_one_quiet_moment_of_f():
    """A size breaks a cost bound only if every round does: f's quick round alone (best ratio 3.2, rounds 3.2 / 1.6
    / 1.6) passes; a jvp 4 f in every round (a planted bug) fails."""
    out, row = _jvp_bound_claim_on([3.2e-3, 3.2e-3, 3.2e-3])
    assert out["jvp_over_f_max"] == pytest.approx(3.2) and out["jvp_over_f_max_low"] == pytest.approx(1.6)
    assert row.verdict == "pass"
    out, row = _jvp_bound_claim_on([4e-3, 8e-3, 8e-3])
    assert out["jvp_over_f_max_low"] == pytest.approx(4.0) and row.verdict == "FAIL"
