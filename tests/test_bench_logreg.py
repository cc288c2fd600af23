"""The logistic-regression benchmark (issue 7): every implementation computes the same thing; no test times anything.

torch and scikit-learn are optional (the `bench` extra): their implementations are checked when installed and
skipped when not; everything else is compared either way.
"""

from __future__ import annotations

from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradlab.bench import impls as bench_impls
from gradlab.bench import limits as bench_limits
from gradlab.problems import logistic

jax.config.update("jax_enable_x64", True)

HAS_TORCH, HAS_SKLEARN = bench_impls.available("torch"), bench_impls.available("sklearn")
TINY = ("sizes.small.steps=20", "sizes.large.n_per_class=1000", "sizes.large.steps=5", "timing.repeats=2",
        "timing.probe_repeats=2", "sweep.configs=8", "sweep.steps=20")


def _data(seed: int = 0, n_per_class: int = 10, dtype=jnp.float64):
    x, y = logistic.sample_data(jax.random.key(seed), n_per_class, -1.0, 1.0, 1.0)
    return x.astype(dtype), y.astype(dtype)


def _gd_reference(x, y, lr_mean: float, steps: int) -> np.ndarray:
    """GD in plain Python floats, one point at a time, with the textbook sigmoid (an independent route)."""
    import math

    phi0 = phi1 = 0.0
    lr = lr_mean / len(x)
    for _ in range(steps):
        g0 = g1 = 0.0
        for xi, yi in zip(np.asarray(x).tolist(), np.asarray(y).tolist(), strict=True):
            residual = 1.0 / (1.0 + math.exp(-(phi0 + phi1 * xi))) - yi
            g0, g1 = g0 + residual, g1 + residual * xi
        phi0, phi1 = phi0 - lr * g0, phi1 - lr * g1
    return np.array([phi0, phi1])


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), phi0=st.floats(-5, 5), phi1=st.floats(-5, 5))
def test_hand_written_loss_and_gradient_match_the_library_and_autodiff(seed, phi0, phi1):
    x, y = _data(seed)
    phi = jnp.array([phi0, phi1])
    expected = (logistic.bce_loss(phi, x, y), jax.grad(logistic.bce_loss)(phi, x, y))
    chex.assert_trees_all_close(bench_impls.analytic_loss_and_gradient(phi, x, y), expected, rtol=1e-12, atol=1e-12)
    numpy_loss, numpy_grad = bench_impls.numpy_loss_and_gradient(np.asarray(phi), np.asarray(x), np.asarray(y))
    chex.assert_trees_all_close((jnp.asarray(numpy_loss), jnp.asarray(numpy_grad)), expected, rtol=1e-12,
                                atol=1e-12)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), phi0=st.floats(-5, 5), phi1=st.floats(-5, 5))
def test_one_pass_gradient_and_hessian_match_the_library(seed, phi0, phi1):
    x, y = _data(seed)
    phi = jnp.array([phi0, phi1])
    expected = (logistic.bce_gradient(phi, x, y), jax.hessian(logistic.bce_loss)(phi, x, y))
    chex.assert_trees_all_close(bench_impls.analytic_gradient_and_hessian(phi, x, y), expected, rtol=1e-10,
                                atol=1e-12)


def test_every_implementation_reaches_the_same_parameters_float64():
    x, y = _data(n_per_class=30)
    tolerance = 1e-7
    # torch and scikit-learn are compared in the end-to-end test below
    impls = bench_impls.prepare(x, y, lr_mean=1.5, steps=10, tolerance=tolerance, newton_max_iter=50,
                                sklearn_max_iter=1000, include_optional=False)
    assert set(impls) == {"jax_scan", "jax_scan_analytic", "jax_python_loop", "jax_no_jit", "numpy_loop",
                          "jax_newton", "jax_newton_analytic"}
    record = bench_impls.measure_alternating(impls, repeats=1)
    params = {name: impl.params(record[name]["result"]) for name, impl in impls.items()}
    reference = _gd_reference(x, y, 1.5, 10)
    for name, impl in impls.items():
        assert len(record[name]["times"]) == 1 and record[name]["times"][0] > 0
        if impl.step_kind == bench_impls.GD:
            assert impl.steps(record[name]["result"]) == 10
            np.testing.assert_allclose(params[name], reference, rtol=1e-12, err_msg=name)
    # the tolerance solvers stop near the optimum, within tolerance / mu (mu: smallest Hessian eigenvalue)
    phi_star, mu = bench_impls.optimum(x, y, iterations=30)
    assert bench_impls.mean_gradient_norm(phi_star, x, y) < 1e-14 and mu > 0
    solvers = [name for name, impl in impls.items() if impl.step_kind != bench_impls.GD]
    assert set(solvers) == {"jax_newton", "jax_newton_analytic"}
    for name in solvers:
        assert bench_impls.mean_gradient_norm(params[name], x, y) < tolerance, name
        assert np.linalg.norm(params[name] - phi_star) < 2 * tolerance / mu, name
    # 10 GD steps are far from the optimum: the check above is not comparing converged to converged
    assert np.linalg.norm(reference - phi_star) > 100 * tolerance / mu


def test_float32_implementations_agree_to_float32_rounding():
    x, y = _data(n_per_class=30, dtype=jnp.float32)
    impls = bench_impls.prepare(x, y, lr_mean=1.0, steps=5, tolerance=1e-4, newton_max_iter=50,
                                sklearn_max_iter=1000, include_optional=False)
    params = {name: impl.params(impl.call()) for name, impl in impls.items() if impl.step_kind == bench_impls.GD}
    for name, phi in params.items():
        np.testing.assert_allclose(phi, params["jax_scan"], rtol=1e-5, err_msg=name)


def test_steps_to_tolerance_is_the_first_step_under_tolerance():
    x, y = _data()
    lr, tolerance = 1.0 / x.shape[0], 1e-6
    steps, phi = bench_impls.gd_steps_to_tolerance(jnp.zeros(2), lr, x, y, tolerance, max_steps=10_000)
    steps = int(steps)
    assert 1 < steps < 10_000
    np.testing.assert_allclose(np.asarray(phi), _gd_reference(x, y, 1.0, steps), rtol=1e-10)
    assert bench_impls.mean_gradient_norm(_gd_reference(x, y, 1.0, steps), x, y) < tolerance
    assert bench_impls.mean_gradient_norm(_gd_reference(x, y, 1.0, steps - 1), x, y) >= tolerance


def test_probes_report_the_bytes_a_step_reads():
    x, y = _data(n_per_class=500)
    limits = bench_limits.probes(x, y, repeats=2)
    assert limits["bytes_per_step"] == 2 * 1000 * 8
    assert limits["bandwidth_probe_time"] > 0 and limits["exp_log_probe_time"] > 0
    assert limits["exp_log_probe_time"] == min(limits["exp_log_probe_time_xla"], limits["exp_log_probe_time_numpy"])
    assert limits["bandwidth_bytes_per_s"] == pytest.approx(limits["bytes_per_step"] / limits["bandwidth_probe_time"])


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory):
    """A persistent JAX compilation cache shared by this module's CLI runs: the same executables, compiled once."""
    return {"JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax-cache")),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}


def _implementations(metrics: dict, size: str) -> dict:
    return metrics["sizes"][size]["implementations"]


def test_bench_end_to_end_compares_like_with_like(cli, compile_cache, monkeypatch):
    for key, value in compile_cache.items():
        monkeypatch.setenv(key, value)
    proc, metrics = cli("bench_logreg", *TINY)
    assert proc.returncode == 0, proc.stderr
    assert metrics["status"] == "ok" and metrics["experiment"] == "bench_logreg"
    expected = {"jax_scan", "jax_scan_analytic", "jax_python_loop", "jax_no_jit", "numpy_loop", "jax_newton",
                "jax_newton_analytic"}
    expected |= {"torch_loop"} if HAS_TORCH else set()
    expected |= {"sklearn_lbfgs"} if HAS_SKLEARN else set()
    assert set(_implementations(metrics, "small")) == expected
    assert set(_implementations(metrics, "large")) == expected | {"jax_scan_sharded"}
    for size, n, steps in (("small", 20, 20), ("large", 2000, 5)):
        section = metrics["sizes"][size]
        assert section["n"] == n and section["steps_per_call"] == steps
        agreement = section["agreement"]
        assert set(agreement["gd_rel_diff"]) == {k for k in expected if "newton" not in k and "sklearn" not in k}
        assert agreement["gd_max_rel_diff"] < 1e-12
        for name, solver in agreement["solvers"].items():
            assert solver["grad_norm"] < metrics["config"]["train"]["tolerance"], name
            assert solver["distance_to_optimum"] <= agreement["optimum_bound"], name
        for name, row in section["implementations"].items():
            for key in ("time_per_step_median", "time_per_step_spread", "time_to_tolerance", "compile_time"):
                assert row[key] is not None and row[key] >= 0, (size, name, key)
            if size == "large":  # the limits are probed on the large set only
                assert section["fraction_of_bandwidth_limit"][name] > 0
        assert section["speedup_vs_numpy"]["numpy_loop"] == pytest.approx(1.0)
        assert (section["limits"] is None) == (size == "small")
        assert (section["speedup_vs_torch"] is not None) == HAS_TORCH
        assert (section["newton_vs_sklearn"] is not None) == HAS_SKLEARN
    sharding = metrics["sizes"]["large"]["sharding"]
    assert sharding["devices"] == 2 and sharding["speedup"] > 0
    np.testing.assert_allclose(sharding["phi"], metrics["sizes"]["large"]["agreement"]["gd_params"], rtol=1e-12)
    assert metrics["sweep"]["configs"] == 8 and metrics["sweep"]["throughput_config_steps_per_s"] > 0
    assert metrics["sweep"]["max_abs_diff_vs_single_run"] < 1e-12
    assert {"small_scan_vs_numpy_per_step", "large_best_jax_vs_numpy", "large_best_jax_vs_torch"} <= set(
        metrics["targets"])
    assert len(metrics["table"]) == 2 * len(expected) + 1
    run_dir = Path(proc.args[2].split("=", 1)[1])
    assert (run_dir / "time_per_step_and_to_tolerance.png").stat().st_size > 10_000
    assert (run_dir / "table.md").read_text().count("\n") == len(metrics["table"]) + 2
    assert set(metrics["plots"]) == {"time_per_step_and_to_tolerance.png"}


def test_float32_timing_is_checked_in_float64_and_reproducible(cli, compile_cache, monkeypatch):
    for key, value in compile_cache.items():  # the second run reuses the first run's executables
        monkeypatch.setenv(key, value)
    overrides = (*TINY, "timing_dtype=float32", "sharding.devices=1", "optional.torch=false",
                 "optional.sklearn=false", "timing.repeats=1")
    (proc, first), (_, second) = cli("bench_logreg", *overrides), cli("bench_logreg", *overrides)
    assert proc.returncode == 0, proc.stderr
    assert first["timing_dtype"] == "float32" and first["sizes"]["large"]["sharding"] is None
    assert "torch_loop" not in _implementations(first, "large")
    for size in ("small", "large"):
        assert first["sizes"][size]["agreement"] == second["sizes"][size]["agreement"]
        assert first["sizes"][size]["gd_steps_to_tolerance"] == second["sizes"][size]["gd_steps_to_tolerance"]
        assert first["sizes"][size]["agreement"]["gd_max_rel_diff"] < 1e-12  # the check ran in float64


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("timing_dtype=float16", "timing_dtype"),
        ("+sizes.huge.steps=3", "sizes.huge"),
        ("precision=float32", "precision"),
        ("sharding.devices=3", "sharding.devices"),
    ],
)
def test_bad_config_is_one_clear_line_and_exit_2(cli, override, key):
    proc, metrics = cli("bench_logreg", override)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert key in lines[0] and "not allowed" in lines[0]
    assert metrics["status"] == "failed" and key in metrics["error"]
