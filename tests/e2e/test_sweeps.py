"""Hydra multiruns: a failed job recorded while the others complete, and resuming a sweep.

(A sweep on each launcher, with a killed job, is in test_run_contract.py.)
"""

from __future__ import annotations

import csv
import subprocess
import sys

from conftest import CLI_ENV, REPO

TINY = ("grid.resolution=11", "train.steps=50", "optimizer.name=sgd", "figures=false")


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


def test_a_failed_job_is_recorded_and_the_others_complete(tmp_path):
    proc, _, rows = _sweep(tmp_path, "optimizer.lr=1e308,0.1,-1")
    assert proc.returncode != 0
    assert [row["status"] for row in rows] == ["failed", "ok", "failed"]
    assert "at step" in rows[0]["error"] and "optimizer.lr" in rows[2]["error"]
    assert float(rows[1]["fit.grad_norm"]) < 1.0


def test_a_sweep_resumed_runs_only_the_jobs_not_ok_into_new_directories(tmp_path):
    """Job 1 fails on a missing data file, job 0 (another file) is ok; once the file exists, `gradlab resume`
    runs job 1 alone again."""
    data, other = tmp_path / "points.csv", tmp_path / "other.csv"
    other.write_text("x,y\n-2,0\n-1,0\n0.5,0\n-0.5,1\n1,1\n2,1\n")
    proc, sweep_dir, rows = _sweep(tmp_path, f"data.path={other},{data}")
    assert proc.returncode == 2 and [row["status"] for row in rows] == ["ok", "failed"]  # 2: bad input
    before = {p: p.read_bytes() for p in sweep_dir.glob("[01]/*") if p.is_file()}
    data.write_text("x,y\n-2,0\n-1,0\n0.5,0\n-0.5,1\n1,1\n2,1\n")
    resumed = subprocess.run([sys.executable, "-m", "gradlab.cli", "resume", str(sweep_dir)], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300, env=CLI_ENV)
    assert resumed.returncode == 0, resumed.stderr
    rows = list(csv.DictReader((sweep_dir / "summary.csv").open()))
    assert [(row["job"], row["attempt"], row["status"]) for row in rows] == [("0", "", "ok"), ("1", "resume-1", "ok")]
    assert not (sweep_dir / "resume-1" / "0").exists()  # an ok job is not run again
    assert {p: p.read_bytes() for p in sweep_dir.glob("[01]/*") if p.is_file()} == before  # earlier attempts kept
    again = subprocess.run([sys.executable, "-m", "gradlab.cli", "resume", str(sweep_dir)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300, env=CLI_ENV)
    assert again.returncode == 0 and "nothing to resume" in again.stdout
