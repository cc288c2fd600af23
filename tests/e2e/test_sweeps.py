"""Hydra multiruns: a failed job recorded while the others complete.

(A sweep on each launcher with a killed job: test_run_contract.py, joblib's in test_sweep_summary.py; resuming a
sweep: test_history.py.)
"""

from __future__ import annotations

import csv
import sys

import cli_processes
from conftest import CLI_ENV, REPO

TINY = ("grid.resolution=11", "train.steps=50", "optimizer.name=sgd", "figures=false")


def _sweep(tmp_path, *overrides):
    proc = cli_processes.run(
        [sys.executable, str(REPO / "experiments" / "logreg.py"), "-m", *TINY, *overrides],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=CLI_ENV,
    )
    sweeps = sorted((tmp_path / "outputs" / "logreg" / "multirun").glob("*/*"))
    assert len(sweeps) == 1, proc.stderr
    with open(sweeps[0] / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    return proc, sweeps[0], rows


def test_a_failed_job_is_recorded_and_the_others_complete(tmp_path):
    proc, _, rows = _sweep(tmp_path, "optimizer.lr=1e308,0.1,-1")
    assert proc.returncode != 0
    assert [row["status"] for row in rows] == ["failed", "ok", "failed"]
    assert "at step" in rows[0]["error"] and "optimizer.lr" in rows[2]["error"]
    assert float(rows[1]["fit.grad_norm"]) < 1.0
