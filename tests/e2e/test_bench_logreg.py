"""The logistic-regression benchmark through the real CLI: a bad value is one line and exit 2 (its run in the main
job, float32 timing checked in float64, is in test_main_job.py)."""

from __future__ import annotations


def test_bad_value_is_one_line_and_exit_2(cli):
    proc, metrics = cli("bench_logreg", "timing_dtype=float16")
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "timing_dtype" in lines[0] and "not allowed" in lines[0]
    assert metrics["status"] == "failed" and "timing_dtype" in metrics["error"]
