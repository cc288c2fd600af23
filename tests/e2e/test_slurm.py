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
import time
from pathlib import Path

import cli_processes
import pytest
from conftest import CLI_ENV, REPO, wait_for

pytestmark = pytest.mark.slow
pytest.importorskip("hydra_plugins.hydra_submitit_launcher")  # the launchers extra

STANDIN = REPO / "tests" / "slurm_standin"
GRADLAB = str(Path(sys.executable).parent / "gradlab")
# task -> the state sacct reports for it; COMPLETED without a result file is a job nothing is known of: lost;
# TIMEOUT+0: the task is started and ended at once (SIGTERM to its group, SIGKILL after a grace period), as SLURM
# ends a running job at its time limit. At once, not after a second: a SIGTERM that lands after submitit's job starts
# and before the run's own handler is ignored by submitit (it bypasses SIGTERM), so a quick job then finishes 'ok'
# within the grace period, and where the signal lands depends on the machine's load. The record a run writes when
# SLURM interrupts it mid-run ('interrupted' -> the scheduler's state) is tested in tests/unit/test_sweep_summary.py.
# One job per way a job can end without its record, each a different path through submitit and the summary: a state
# forced before the job starts, a job started and ended by the scheduler, a job SLURM calls COMPLETED with no result.
# (Every state name's status, and "and N more" in the summary line: tests/unit/test_sweep_summary.py.)
STATES = {1: "NODE_FAIL", 2: "TIMEOUT+0", 3: "COMPLETED"}
STATUS = {1: "node_fail", 2: "timeout", 3: "lost"}
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
    sweep = cli_processes.run([GRADLAB, "softmax_jacobian", "-m", "hydra/launcher=submitit_slurm", f"seed={seeds}",
                               "figures=false", *SUMMARY], cwd=tmp_path, env=slurm, capture_output=True, text=True,
                              timeout=300)
    (sweep_dir,) = (tmp_path / "outputs" / "softmax_jacobian" / "multirun").glob("*/*")
    errors = [line for line in sweep.stderr.splitlines() if line.strip()]
    assert sweep.returncode == 1, sweep.stderr  # some jobs did not end ok: not a config error (2)
    assert errors == [f"gradlab: error: sweep 3 of 4 jobs not ok: job 1 node_fail (1001_1), job 2 timeout (1001_2), "
                      f"job 3 lost (1001_3); sweep summary: {sweep_dir.relative_to(tmp_path)}/summary.csv"], \
        sweep.stderr
    rows = rows_of(sweep_dir)
    assert [(r["job"], r["seed"], r["scheduler_job"], r["status"]) for r in rows] == [
        ("0", "0", "1001_0", "ok"), *((str(n), str(n), f"1001_{n}", STATUS[n]) for n in STATES)]
    assert rows[1]["error"] == "the scheduler ended job 1001_1 NODE_FAIL before it wrote a record"
    assert rows[2]["error"] == "the scheduler ended job 1001_2 TIMEOUT before it wrote a record"
    assert 0 < float(rows[0][METRIC]) < 1e-12 and all(r[METRIC] == "" for r in rows[1:])
    assert (sweep_dir / "summary.png").stat().st_size > 0
    assert not any((sweep_dir / str(n)).exists() for n in STATES)  # never started: only the job list knows them

    resumed = cli_processes.run([GRADLAB, "resume", str(sweep_dir)], cwd=tmp_path, env=slurm, capture_output=True,
                                text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert [line for line in resumed.stdout.splitlines() if line.startswith("  job")] == [
        f"  job {n} (was {STATUS[n]}): seed={n} figures=False" for n in STATES]
    rows = rows_of(sweep_dir)
    assert [(r["attempt"], r["scheduler_job"], r["status"]) for r in rows] == [
        ("", "1001_0", "ok"), *(("resume-1", "", "ok") for _ in STATES)]
    assert len({r[METRIC] for r in rows}) == len(rows)  # each seed its own logits: each job really ran
    again = cli_processes.run([GRADLAB, "resume", str(sweep_dir)], cwd=tmp_path, env=slurm, capture_output=True,
                              text=True, timeout=120)
    assert again.returncode == 0 and "nothing to resume" in again.stdout


def _sacct(slurm: dict, job_id: str) -> dict[str, str]:
    """sacct's answer for a job, read by submitit's own parser: {array task id: state}."""
    from submitit.slurm.slurm import SlurmInfoWatcher

    out = subprocess.run(["sacct", "-o", "JobID,State,NodeList", "--parsable2", "-j", job_id], env=slurm,
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return {task: info["State"] for task, info in SlurmInfoWatcher().read_info(out).items()}


def test_the_standin_runs_array_tasks_with_slurm_variables_forces_states_and_cancels(tmp_path, slurm):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n#SBATCH --array=0-2%3\n#SBATCH --job-name=t\n"
                      f"srun --unbuffered --output {tmp_path}/%A_%a_%t.out sh -c "
                      "'echo $SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID; sleep ${SLEEP:-0}'\n")
    submitted = subprocess.run(["sbatch", str(script)], env={**slurm, "FAKE_SLURM_STATES": "1:NODE_FAIL"},
                               capture_output=True, text=True, timeout=30)
    assert submitted.stdout == "Submitted batch job 1001\n"
    assert wait_for(lambda: not {"PENDING", "RUNNING"} & set(_sacct(slurm, "1001").values()))
    assert _sacct(slurm, "1001") == {"1001_0": "COMPLETED", "1001_1": "NODE_FAIL", "1001_2": "COMPLETED"}
    assert [(tmp_path / f"1001_{t}_0.out").read_text() for t in (0, 2)] == ["1001 0\n", "1001 2\n"]
    assert not (tmp_path / "1001_1_0.out").exists()  # a forced state: the task never ran

    # no forced state this time (the fixture's would end task 1 NODE_FAIL at once, racing the scancel below)
    subprocess.run(["sbatch", str(script)], env={**slurm, "SLEEP": "60", "FAKE_SLURM_STATES": ""}, capture_output=True,
                   timeout=30, check=True)
    assert wait_for(lambda: _sacct(slurm, "1002")["1002_0"] == "RUNNING")
    queue = subprocess.run(["squeue"], env=slurm, capture_output=True, text=True, timeout=30).stdout
    assert "1002_0 RUNNING" in queue and "1002_1 PENDING" in queue
    subprocess.run(["scancel", "1002"], env=slurm, timeout=30, check=True)
    assert _sacct(slurm, "1002") == {f"1002_{t}": "CANCELLED" for t in range(3)}
    assert wait_for(lambda: "1002" not in subprocess.run(["squeue"], env=slurm, capture_output=True, text=True,
                                                          timeout=30).stdout)
    time.sleep(0.5)  # the runner would start task 1 now if it had not seen the cancellation
    assert not (tmp_path / "1002_1_0.out").exists()
