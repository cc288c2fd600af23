"""How a run ends, as a user meets it: Ctrl-C, SIGTERM, a killed sweep job, a shared or foreign directory, a
config too large for the machine. Every case ends with a true status in metrics.json and a one-line message."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cli_processes
import pytest
from conftest import (
    CLI_ENV,
    KILLED_JOB_STEPS,
    LONG_DATA,
    LONG_LOGREG,
    LONG_STEPS,
    REPO,
    assert_the_killed_job_crashed_and_the_others_ran,
    sweep_job,
    wait_for,
    wait_until_computing,
)

_launched: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_run_outlives_its_test():
    """A test that fails mid-way leaves no minute-long run computing on (its forked runs get SIGTERM with it)."""
    yield
    while _launched:
        proc = _launched.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)


def _start(*args: str, cwd: Path) -> subprocess.Popen:
    proc = cli_processes.popen([sys.executable, str(REPO / "experiments" / "logreg.py"), *args], cwd=cwd, env=CLI_ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _launched.append(proc)
    return proc


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_says_interrupted_in_one_line(tmp_path, signum, code):
    run_dir = tmp_path / "run"
    proc = _start(f"hydra.run.dir={run_dir}", *LONG_LOGREG, cwd=tmp_path)
    wait_until_computing(run_dir / "metrics.json")
    time.sleep(0.5)
    started = time.monotonic()
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - started < 10  # at once, not after the XLA call ends
    assert proc.returncode == code
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "interrupted" and record["signal"] == signum.name
    assert record["config"]["train"]["steps"] == LONG_STEPS
    assert [line for line in stderr.splitlines() if line.startswith("gradlab")] == [
        f"gradlab: logreg interrupted by {signum.name}; partial results in {run_dir / 'metrics.json'}"]
    assert "Traceback" not in stderr


def test_killing_the_launched_process_stops_its_run(tmp_path):
    """kill -9 of the pid a user started: the run computing in its child stops too and records itself
    interrupted, instead of finishing unseen."""
    run_dir = tmp_path / "run"
    proc = _start(f"hydra.run.dir={run_dir}", *LONG_LOGREG, cwd=tmp_path)
    worker = wait_until_computing(run_dir / "metrics.json")
    proc.kill()
    proc.communicate(timeout=60)
    wait_for(lambda: json.loads((run_dir / "metrics.json").read_text())["status"] != "running", deadline_s=30)
    record = json.loads((run_dir / "metrics.json").read_text())
    if record["status"] == "running":
        os.kill(worker, signal.SIGKILL)
    assert record["status"] == "interrupted" and record["signal"] == "SIGTERM", record.get("error")
    assert record["meta"]["worker_pid"] == worker


@pytest.mark.parametrize("launcher", ["basic", "submitit_local"])
def test_a_sweep_survives_a_killed_job(tmp_path, launcher):
    """Job 1 is killed with SIGKILL (as the OOM killer does); jobs 0 and 2 finish and the summary has all three.
    (joblib's: in the sweep of test_sweep_summary.py whose worker dies after that.)"""
    proc = _start("-m", f"hydra/launcher={launcher}", f"train.steps={','.join(map(str, KILLED_JOB_STEPS))}",
                  *LONG_DATA, cwd=tmp_path)
    job1 = wait_for(lambda: sweep_job(tmp_path, 1), deadline_s=120)
    assert job1 is not None, proc.stderr.read() if proc.poll() is not None else "job 1 never started"
    os.kill(wait_until_computing(job1), signal.SIGKILL)
    _, stderr = proc.communicate(timeout=300)
    sweep_dir = job1.parent.parent
    rows = list(csv.DictReader((sweep_dir / "summary.csv").open()))
    assert proc.returncode == 1, stderr
    assert len(rows) == len(KILLED_JOB_STEPS)
    assert_the_killed_job_crashed_and_the_others_ran(rows, job1)
    assert (sweep_dir / "summary.png").stat().st_size > 0


def test_an_interrupted_sweep_records_the_jobs_not_run_and_writes_its_summary(tmp_path):
    proc = _start("-m", f"train.steps={LONG_STEPS},20,30", *LONG_DATA, cwd=tmp_path)
    job0 = wait_for(lambda: sweep_job(tmp_path, 0))
    assert job0 is not None, "the sweep's first job never started"
    wait_until_computing(job0)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    rows = list(csv.DictReader((job0.parent.parent / "summary.csv").open()))
    assert proc.returncode == 130
    assert [row["status"] for row in rows] == ["interrupted"] * 3
    assert all("not run" in row["error"] for row in rows[1:])


def test_three_runs_claiming_one_directory_one_wins(tmp_path):
    run_dir = tmp_path / "shared"
    procs = [_start(f"hydra.run.dir={run_dir}", "grid.resolution=11", "train.steps=10", "figures=false", cwd=tmp_path)
             for _ in range(3)]
    outcomes = sorted((p.wait(timeout=120), p.stderr.read()) for p in procs)
    assert [code for code, _ in outcomes] == [0, 2, 2]
    for _, stderr in outcomes[1:]:
        assert [line for line in stderr.splitlines() if line.strip()] == [
            f"gradlab: error: {str(run_dir)!r} is already used by another run; pick a new directory, earlier "
            "outputs are never overwritten"]
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "ok"


def test_a_user_file_in_the_run_dir_survives_byte_for_byte(tmp_path):
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    (run_dir / "data.csv").write_bytes(b"x,y\n1,0\n")
    proc = _start(f"hydra.run.dir={run_dir}", cwd=tmp_path)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "holds files that are not this run's (data.csv)" in stderr
    assert sorted(p.name for p in run_dir.iterdir()) == ["data.csv"]
    assert (run_dir / "data.csv").read_bytes() == b"x,y\n1,0\n"


def test_a_sweep_whose_jobs_would_share_a_directory_is_refused(tmp_path):
    proc = _start("-m", "hydra.sweep.subdir=same", "optimizer.lr=0.1,0.2", cwd=tmp_path)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "hydra.sweep.subdir='same' is not allowed" in stderr
    assert not list((tmp_path / "outputs").rglob("metrics.json"))


def test_a_config_too_large_is_refused_before_memory_is_spent(tmp_path):
    # the CLI started from a fresh Python whose only child it is, so RUSAGE_CHILDREN is the CLI's own peak
    measure = ("import json, resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, "
               "text=True); print(json.dumps([p.returncode, p.stderr, "
               "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    command = [sys.executable, str(REPO / "experiments" / "logreg.py"), f"hydra.run.dir={tmp_path / 'big'}",
               "grid.resolution=100000"]
    out = subprocess.run([sys.executable, "-c", measure, *command], cwd=tmp_path, env=CLI_ENV, capture_output=True,
                         text=True, timeout=120)
    code, stderr, peak_kib = json.loads(out.stdout)
    assert code == 2
    assert stderr.startswith("gradlab: config error: grid.resolution=100000 is not allowed: a config within the "
                             "memory budget") and len(stderr.strip().splitlines()) == 1
    assert peak_kib < 1_000_000  # the CLI stayed under 1 GB (the grid alone: 8,900 GiB)


def test_the_compilation_cache_setting_is_honoured(tmp_path):
    """A per-user cache directory by default; `compile_cache=DIR` moves it; `compile_cache=null` writes nothing."""
    # (matplotlib's font cache stays where it is: MPLCONFIGDIR, else it is rebuilt under the new XDG_CACHE_HOME)
    fonts = CLI_ENV.get("MPLCONFIGDIR", str(Path.home() / ".cache" / "matplotlib"))
    env = {**CLI_ENV, "XDG_CACHE_HOME": str(tmp_path / "xdg"), "MPLCONFIGDIR": fonts}
    run = [sys.executable, str(REPO / "experiments" / "receptive_field.py"), "figures=false"]  # compiles little
    on = cli_processes.run([*run, f"hydra.run.dir={tmp_path / 'a'}"], capture_output=True, text=True, env=env,
                           timeout=120)
    assert on.returncode == 0, on.stderr
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["meta"]["compile_cache"] == str(
        tmp_path / "xdg" / "gradlab" / "jax")
    assert any((tmp_path / "xdg" / "gradlab" / "jax").iterdir())
    off = cli_processes.run([*run, f"hydra.run.dir={tmp_path / 'b'}", "compile_cache=null"], capture_output=True,
                            timeout=120, text=True, env={**env, "XDG_CACHE_HOME": str(tmp_path / "xdg-off")})
    assert off.returncode == 0, off.stderr
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["meta"]["compile_cache"] is None
    assert not (tmp_path / "xdg-off").exists()
