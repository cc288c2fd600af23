"""Sweeps on SLURM through the real submitit_slurm launcher, with the stand-in scheduler of tests/slurm_standin.

The stand-in's `sbatch` runs the array's tasks locally with the SLURM_* variables set; FAKE_SLURM_STATES makes
chosen tasks end in a given state without a result, as a lost node, a timeout or a cancellation leaves them. One
sweep carries every state (one job each), so the suite pays for one sweep and one resume.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CLI_ENV, REPO

pytestmark = pytest.mark.slow
pytest.importorskip("hydra_plugins.hydra_submitit_launcher")  # the launchers extra

STANDIN = REPO / "tests" / "slurm_standin"
GRADLAB = str(Path(sys.executable).parent / "gradlab")
# task -> the state sacct reports for it; COMPLETED without a result file is a job nothing is known of: lost
STATES = {1: "NODE_FAIL", 2: "TIMEOUT", 3: "CANCELLED", 4: "OUT_OF_MEMORY", 5: "COMPLETED"}
STATUS = {1: "node_fail", 2: "timeout", 3: "cancelled", 4: "out_of_memory", 5: "lost"}
METRIC = "max_abs_err.jacfwd"  # softmax_jacobian: the quickest experiment; its summary metric set here
SUMMARY = (f"hydra.callbacks.sweep_summary.metrics=[{METRIC}]", f"hydra.callbacks.sweep_summary.plot_metric={METRIC}")


@pytest.fixture
def slurm(tmp_path):
    """The stand-in's commands first on PATH, its state in tmp_path/slurm; env for a process that submits."""
    return {**CLI_ENV, "PATH": f"{STANDIN}{os.pathsep}{os.environ['PATH']}", "FAKE_SLURM_DIR": str(tmp_path / "slurm"),
            "FAKE_SLURM_PYTHON": sys.executable,
            "FAKE_SLURM_STATES": ",".join(f"{task}:{state}" for task, state in STATES.items())}


def rows_of(sweep_dir: Path) -> list[dict]:
    with open(sweep_dir / "summary.csv") as handle:
        return list(csv.DictReader(handle))


def test_every_jobs_end_on_slurm_is_in_the_summary_and_resume_reruns_exactly_the_jobs_not_ok(tmp_path, slurm):
    seeds = ",".join(str(s) for s in range(1 + len(STATES)))
    sweep = subprocess.run([GRADLAB, "softmax_jacobian", "-m", "hydra/launcher=submitit_slurm", f"seed={seeds}",
                            "figures=false", *SUMMARY], cwd=tmp_path, env=slurm, capture_output=True, text=True,
                           timeout=300)
    (sweep_dir,) = (tmp_path / "outputs" / "softmax_jacobian" / "multirun").glob("*/*")
    errors = [line for line in sweep.stderr.splitlines() if line.strip()]
    assert sweep.returncode == 1, sweep.stderr  # some jobs did not end ok: not a config error (2)
    assert errors == [f"gradlab: error: sweep 5 of 6 jobs not ok: job 1 node_fail (1001_1), job 2 timeout (1001_2), "
                      f"job 3 cancelled (1001_3) and 2 more; sweep summary: {sweep_dir.relative_to(tmp_path)}/"
                      "summary.csv"], sweep.stderr
    rows = rows_of(sweep_dir)
    assert [(r["job"], r["seed"], r["scheduler_job"], r["status"]) for r in rows] == [
        ("0", "0", "1001_0", "ok"), *((str(n), str(n), f"1001_{n}", STATUS[n]) for n in STATES)]
    assert rows[1]["error"] == "the scheduler ended job 1001_1 NODE_FAIL before it wrote a record"
    assert 0 < float(rows[0][METRIC]) < 1e-12 and all(r[METRIC] == "" for r in rows[1:])
    assert (sweep_dir / "summary.png").stat().st_size > 0
    assert not any((sweep_dir / str(n)).exists() for n in STATES)  # they never started: only the job list knows them

    resumed = subprocess.run([GRADLAB, "resume", str(sweep_dir)], cwd=tmp_path, env=slurm, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert [line for line in resumed.stdout.splitlines() if line.startswith("  job")] == [
        f"  job {n} (was {STATUS[n]}): seed={n} figures=False" for n in STATES]
    rows = rows_of(sweep_dir)
    assert [(r["attempt"], r["scheduler_job"], r["status"]) for r in rows] == [
        ("", "1001_0", "ok"), *(("resume-1", "", "ok") for _ in STATES)]
    assert len({r[METRIC] for r in rows}) == len(rows)  # each seed its own logits: each job really ran
    again = subprocess.run([GRADLAB, "resume", str(sweep_dir)], cwd=tmp_path, env=slurm, capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0 and "nothing to resume" in again.stdout
