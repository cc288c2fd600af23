"""Real sweeps through the CLI: summary_seeds.csv is the NumPy mean and spread of the jobs' metrics; a joblib sweep
survives a killed job and is still summarised when its pool breaks. (SLURM's job ends: test_slurm.py.)"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys

import cli_processes
import numpy as np
import pytest
import yaml
from conftest import (
    CLI_ENV,
    KILLED_JOB_STEPS,
    LONG_DATA,
    LONG_STEPS,
    REPO,
    assert_the_killed_job_crashed_and_the_others_ran,
    sweep_job,
    wait_for,
    wait_until_computing,
)

from gradlab.runner.seeds import t_quantile_975

pytestmark = pytest.mark.slow


def test_a_2_seed_sweep_reports_the_numpy_mean_std_and_interval_per_learning_rate(tmp_path):
    proc = cli_processes.run(
        [sys.executable, str(REPO / "experiments" / "logreg.py"), "-m", "data.seed=0,1", "optimizer.lr=0.05,0.1",
         "grid.resolution=11", "train.steps=20", "figures=false"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=CLI_ENV,
    )
    assert proc.returncode == 0, proc.stderr
    (sweep_dir,) = (tmp_path / "outputs" / "logreg" / "multirun").glob("*/*")
    assert f"mean and spread over seeds: {sweep_dir.relative_to(tmp_path) / 'summary_seeds.csv'}" in proc.stdout
    jobs = {}
    for job in sweep_dir.glob("[0-9]*"):
        overrides = dict(o.split("=", 1) for o in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()))
        jobs.setdefault(overrides["optimizer.lr"], []).append(json.loads((job / "metrics.json").read_text()))
    with open(sweep_dir / "summary_seeds.csv") as handle:
        rows = list(csv.DictReader(handle))
    metrics = ["fit.loss", "fit.grad_norm", "newton.iterations", "gradient.max_abs_err", "hessian.max_abs_err",
               "fit.gap_to_newton"]  # the experiment's summary metrics, then its objective
    assert [(r["optimizer.lr"], r["metric"]) for r in rows] == [(lr, m) for lr in ("0.05", "0.1") for m in metrics]
    for row in rows:
        section, name = row["metric"].split(".")
        x = np.array([record[section][name] for record in jobs[row["optimizer.lr"]]], dtype=float)
        assert (row["n"], row["failed"], row["missing"]) == ("2", "0", "0")
        assert float(row["mean"]) == pytest.approx(np.mean(x), rel=1e-12, abs=1e-300)
        assert float(row["std"]) == pytest.approx(np.std(x, ddof=1), rel=1e-12, abs=1e-300)
        assert (float(row["min"]), float(row["max"])) == (x.min(), x.max())
        half = t_quantile_975(1) * np.std(x, ddof=1) / np.sqrt(2)
        assert float(row["ci95_low"]) == pytest.approx(np.mean(x) - half, rel=1e-9, abs=1e-300)
    gap = {r["optimizer.lr"]: float(r["mean"]) for r in rows if r["metric"] == "fit.gap_to_newton"}
    assert gap["0.1"] < gap["0.05"]  # the larger step gets closer to Newton's optimum in 20 steps, on average
    assert (sweep_dir / "summary_seeds.png").stat().st_size > 0


def test_a_joblib_sweep_survives_a_killed_job_and_is_summarised_when_a_worker_dies(tmp_path):
    """Two ways a joblib job dies, in one sweep on two workers (jobs 0 and 2 short, 1, 3 and 4 long):

    - job 1's computing child is killed with SIGKILL (as the OOM killer does): job 1 is `crashed` and its worker
      goes on to the next job, the short ones end ok;
    - then the worker process of job 3 (the job's parent, not its computing child) is killed: joblib's pool breaks
      and the launcher raises TerminatedWorkerError. The summary is still written: job 3 `interrupted` (its child
      ends itself on its parent's death), job 4 ended with the pool, job 5 `lost` (it never got a worker); exit 1,
      one line. (The same SIGKILL of a job under the basic and submitit launchers: test_run_contract.py.)"""
    steps = (*KILLED_JOB_STEPS, LONG_STEPS, LONG_STEPS + 1, 30)
    proc = cli_processes.popen(
        [sys.executable, str(REPO / "experiments" / "logreg.py"), "-m", "hydra/launcher=joblib",
         "hydra.launcher.n_jobs=2", f"train.steps={','.join(map(str, steps))}", *LONG_DATA],
        cwd=tmp_path, env=CLI_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        job1 = wait_for(lambda: sweep_job(tmp_path, 1), deadline_s=120)
        assert job1 is not None, "job 1 never started"
        os.kill(wait_until_computing(job1), signal.SIGKILL)
        job3, job4 = (wait_for(lambda n=n: sweep_job(tmp_path, n), deadline_s=120) for n in (3, 4))
        assert job3 is not None and job4 is not None, "jobs 3 and 4 never started"
        wait_until_computing(job3)
        wait_until_computing(job4)  # both workers on a long job: jobs 0 and 2 ended, job 5 waits
        os.kill(json.loads(job3.read_text())["meta"]["pid"], signal.SIGKILL)  # joblib's worker, the job's parent
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)
    sweep_dir = job1.parent.parent
    rows = list(csv.DictReader((sweep_dir / "summary.csv").open()))
    assert proc.returncode == 1, stderr
    assert [row["train.steps"] for row in rows] == [str(n) for n in steps]
    assert_the_killed_job_crashed_and_the_others_ran(rows, job1)
    assert rows[3]["status"] == "interrupted" and rows[5]["status"] == "lost"
    assert rows[4]["status"] in ("interrupted", "crashed")
    lines = [line for line in stderr.splitlines() if line.startswith("gradlab: error")]
    assert not [line for line in stderr.splitlines() if "Traceback" in line]
    assert len(lines) == 1 and lines[0].startswith("gradlab: error: TerminatedWorkerError: ")
    assert (f"(4 of 6 jobs not ok: job 1 crashed, job 3 interrupted, job 4 {rows[4]['status']} and 1 more); sweep "
            f"summary: {sweep_dir.relative_to(tmp_path) / 'summary.csv'}") in lines[0]
    assert (sweep_dir / "summary.png").stat().st_size > 0
