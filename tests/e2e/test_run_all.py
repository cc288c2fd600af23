"""The main job's contract: a failing run does not stop the rest, timeouts, Ctrl-C, a killed forkserver, a quiet
exit (its report and every run in it: test_main_job.py)."""

from __future__ import annotations

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
    LONG_DATA,
    LONG_LOGREG,
    REPO,
    SMALL_AUTODIFF_SCALING,
    as_run_all_override,
    wait_until_computing,
)


def _run_all(out_dir, *overrides, env=CLI_ENV):
    return cli_processes.run(
        [sys.executable, str(REPO / "experiments" / "run_all.py"), f"hydra.run.dir={out_dir}", *overrides],
        cwd=REPO, capture_output=True, text=True, timeout=900, env=env,
    )


def test_a_run_that_makes_a_semaphore_leaves_the_main_job_quiet(tmp_path):
    """autodiff_scaling's progress bar makes a multiprocessing lock; as a child of the forkserver it registered
    it with the main job's resource tracker, which warned of a leaked semaphore at the end of every `make run`."""
    proc = _run_all(tmp_path / "small", "only=[autodiff_scaling]",
                    as_run_all_override("autodiff_scaling", (*SMALL_AUTODIFF_SCALING, "figures=false")),
                    env={**CLI_ENV, "PYTHONWARNINGS": "default"})  # as a user's shell has it
    assert json.loads((tmp_path / "small" / "autodiff_scaling" / "metrics.json").read_text())["status"] == "ok"
    assert "leaked" not in proc.stderr, proc.stderr


def test_one_failing_experiment_does_not_stop_the_rest(tmp_path):
    out = tmp_path / "fail"
    proc = _run_all(out, "only=[softmax_jacobian,receptive_field_problem5]",
                    "overrides={softmax_jacobian: ['logits=[1.0]']}")
    assert proc.returncode == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "softmax_jacobian" in metrics["error"]
    assert metrics["runs"]["softmax_jacobian"]["status"] == "failed"
    assert metrics["runs"]["receptive_field_problem5"]["status"] == "ok"
    report = (out / "report.md").read_text()
    assert "### softmax_jacobian: failed" in report and "logits=[1.0] is not allowed" in report
    assert ("| 5 | receptive field per layer: analytic vs measured | per layer (integers) | 7, 13, 19 | 7, 13, 19 |  "
            "| equal [exact: integers] | pass |") in report


def test_a_run_past_its_timeout_is_interrupted_and_the_report_says_so(tmp_path):
    out = tmp_path / "slow"
    proc = _run_all(out, "only=[logreg]", "timeout_s=1", as_run_all_override("logreg", LONG_LOGREG))
    assert proc.returncode == 1
    logreg = json.loads((out / "logreg" / "metrics.json").read_text())
    assert logreg["status"] == "interrupted" and logreg["signal"] == "SIGTERM"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["runs"]["logreg"]["status"] == "interrupted"
    assert "timed out after 1 s" in metrics["runs"]["logreg"]["stopped"]
    assert "### logreg: interrupted (timed out after 1 s)" in (out / "report.md").read_text()


def test_ctrl_c_stops_the_run_in_progress_and_still_writes_the_report(tmp_path):
    out = tmp_path / "stopped"
    proc = cli_processes.popen(
        [sys.executable, str(REPO / "experiments" / "run_all.py"), f"hydra.run.dir={out}",
         "only=[logreg,logreg_sweep]", "jobs=1", as_run_all_override("logreg", LONG_LOGREG)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CLI_ENV)
    wait_until_computing(out / "logreg" / "metrics.json")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "interrupted"
    assert metrics["runs"]["logreg"]["status"] == "interrupted"
    assert metrics["runs"]["logreg_sweep"]["status"] == "not run"
    report = (out / "report.md").read_text()
    assert "### logreg: interrupted" in report and "### logreg_sweep: not run" in report


def _children(pid: int) -> list[int]:
    """The pids whose parent is `pid` (Linux /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the forkserver through /proc")
def test_a_killed_forkserver_does_not_end_the_run_it_started(tmp_path):
    """The forkserver delivers a run's exit code; killed, it delivers 255 while the run computes on: run_all waits
    for the run itself and reports what its record says."""
    out = tmp_path / "orphan"
    proc = cli_processes.popen(
        [sys.executable, str(REPO / "experiments" / "run_all.py"), f"hydra.run.dir={out}", "only=[logreg]",
         as_run_all_override("logreg", ("train.steps=5000", *LONG_DATA))],  # ~2.5 s alone: it must finish
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CLI_ENV)
    record = out / "logreg" / "metrics.json"
    wait_until_computing(record)
    main_job = json.loads((out / "metrics.json").read_text())["meta"]["worker_pid"]
    (server,) = [pid for pid in _children(main_job) if b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    os.kill(server, signal.SIGKILL)
    assert json.loads(record.read_text())["status"] == "running"  # killed while the run computed
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert json.loads(record.read_text())["status"] == "ok"
    assert json.loads((out / "metrics.json").read_text())["runs"]["logreg"]["status"] == "ok"


def _catches_sigterm(pid: int) -> bool:
    """Whether process `pid` has a handler for SIGTERM (Python installs none of its own: `hold_signals` did)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


MAIN_JOB_COMMANDS = {"script": [sys.executable, str(REPO / "experiments" / "run_all.py")],  # make run
                     "console": [str(Path(sys.executable).parent / "gradlab"), "run-all"]}


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the signal mask through /proc")
@pytest.mark.parametrize(("command", "signum", "code"),
                         [("script", signal.SIGINT, 130), ("console", signal.SIGTERM, 143)])
def test_ctrl_c_while_the_main_job_starts_ends_as_it_does_later(tmp_path, command, signum, code):
    """Ctrl-C in the first moment (here: as soon as the script holds signals, while Python still imports) used to
    print a 23-line KeyboardInterrupt traceback, write no report and mark no run. Now, as later: one line, exit
    130 (143 for SIGTERM), the record interrupted, every run "not run", the report written."""
    out = tmp_path / "early"
    proc = subprocess.Popen(
        [*MAIN_JOB_COMMANDS[command], f"hydra.run.dir={out}", "only=[softmax_jacobian,receptive_field_problem4]"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CLI_ENV)
    deadline = time.monotonic() + 30
    while not _catches_sigterm(proc.pid):
        assert time.monotonic() < deadline and proc.poll() is None, "the main job never held its signals"
        time.sleep(0.002)
    assert not (out / "metrics.json").exists()  # no record yet: the start-up, not the run
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    name = signal.Signals(signum).name
    assert proc.returncode == code and "Traceback" not in stderr, stderr
    assert [line for line in stderr.splitlines() if line.strip()] == [
        f"gradlab: run_all interrupted by {name}; partial results in {out / 'metrics.json'}"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["signal"] == name
    assert {run["status"] for run in metrics["runs"].values()} == {"not run"}
    assert not (out / "softmax_jacobian").exists()  # not started
    report = (out / "report.md").read_text()
    assert "### softmax_jacobian: not run" in report and "### receptive_field_problem4: not run" in report
