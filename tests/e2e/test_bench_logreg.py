"""The logistic-regression benchmark through the real CLI: float32 timing checked in float64, the same numbers
as a run in another process (in-process here), a one-line error and exit 2."""

from __future__ import annotations

FAST = ("sizes.small.steps=20", "sizes.small.slow_steps=2", "sizes.large.n_per_class=500", "sizes.large.steps=3",
        "sizes.large.slow_steps=2", "timing.repeats=1", "timing.probe_repeats=1", "sweep.configs=4", "sweep.steps=10",
        "limits.dtypes=[float32]", "sharding.devices=1", "optional.torch=false", "optional.sklearn=false",
        "timing_dtype=float32")


def test_float32_timing_is_checked_in_float64_and_reproducible(cli, run_experiment):
    proc, first = cli("bench_logreg", *FAST)
    assert proc.returncode == 0, proc.stderr
    assert first["status"] == "ok" and first["timing_dtype"] == "float32"
    assert first["sizes"]["large"]["sharding"] is None and first["sharding"] is None
    assert "torch_loop" not in first["sizes"]["large"]["implementations"]
    assert set(first["skipped"]) == {"torch_loop", "sklearn_lbfgs"}
    assert "optional.sklearn=false" in first["targets"]["large_newton_vs_sklearn"]["reason"]
    assert first["targets"]["large_newton_vs_sklearn"]["met"] is None
    _, second, _ = run_experiment("bench_logreg", *FAST)
    for size in ("small", "large"):
        assert first["sizes"][size]["agreement"]["gd_max_rel_diff"] < 1e-12  # the check ran in float64
        assert first["sizes"][size]["agreement"] == second["sizes"][size]["agreement"]
        assert first["sizes"][size]["gd_steps_to_tolerance"] == second["sizes"][size]["gd_steps_to_tolerance"]
    assert set(first["plots"]) == {"time_per_step_and_to_tolerance.png"}


def test_bad_value_is_one_line_and_exit_2(cli):
    proc, metrics = cli("bench_logreg", "timing_dtype=float16")
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "timing_dtype" in lines[0] and "not allowed" in lines[0]
    assert metrics["status"] == "failed" and "timing_dtype" in metrics["error"]
