"""Hydra multiruns: a summary CSV and plot after every sweep, on the basic, joblib and submitit_local launchers."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
from conftest import CLI_ENV, REPO

TINY = ("grid.resolution=11", "train.steps=50", "optimizer.name=sgd")


def _sweep(tmp_path, *overrides):
    proc = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "logreg.py"), "-m", *TINY, *overrides],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=CLI_ENV,
    )
    sweeps = sorted((tmp_path / "outputs" / "logreg" / "multirun").glob("*/*"))
    assert len(sweeps) == 1, proc.stderr
    with open(sweeps[0] / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    return proc, sweeps[0], rows


@pytest.mark.parametrize("launcher", ["basic", "joblib", "submitit_local"])
def test_two_job_sweep_writes_summary_csv_and_plot(tmp_path, launcher):
    proc, sweep_dir, rows = _sweep(tmp_path, f"hydra/launcher={launcher}", "optimizer.lr=0.01,0.1")
    assert proc.returncode == 0, proc.stderr
    assert [row["optimizer.lr"] for row in rows] == ["0.01", "0.1"]
    assert [row["status"] for row in rows] == ["ok", "ok"]
    assert float(rows[1]["fit.grad_norm"]) < float(rows[0]["fit.grad_norm"])  # larger step, closer to optimum
    assert (sweep_dir / "summary.png").stat().st_size > 0
    assert all((sweep_dir / str(job) / "metrics.json").exists() for job in (0, 1))


def test_a_failed_job_is_recorded_and_the_others_complete(tmp_path):
    proc, _, rows = _sweep(tmp_path, "optimizer.lr=1e308,0.1,-1")
    assert proc.returncode != 0
    assert [row["status"] for row in rows] == ["failed", "ok", "failed"]
    assert "at step" in rows[0]["error"] and "optimizer.lr" in rows[2]["error"]
    assert float(rows[1]["fit.grad_norm"]) < 1.0
