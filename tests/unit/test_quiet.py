"""runner/quiet.py: in the main job a timed section has the cores alone: it starts once the runs computing have
ended, and a run that starts meanwhile waits for it. Three processes on one lock file, each step released by
the test through a file, so that no outcome depends on how fast the machine is."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import wait_for

from gradlab.runner import quiet

ROLE = """
import sys, time
from pathlib import Path
from gradlab.runner import quiet
log, role, folder = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
def say(word):
    with log.open("a") as handle:
        handle.write(word + "\\n")
def wait_for_file(name):
    while not (folder / name).exists():
        time.sleep(0.02)
with quiet.computing():
    say("computing")
    if role == "timed":
        with quiet.alone() as machine:
            say(f"alone main_job={machine['main_job']}")
            wait_for_file("release-timed")
        say("shared again")
    else:
        wait_for_file(f"release-{role}")
say("ended")
"""


def _start(tmp_path: Path, role: str, env: dict) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"{role}.log"
    proc = subprocess.Popen([sys.executable, "-c", ROLE, str(log), role, str(tmp_path)], env=env)
    return proc, log


def _said(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_a_timed_section_waits_for_the_runs_computing_and_holds_off_the_runs_that_start(tmp_path):
    env = {**os.environ, quiet.LOCK_ENV: str(tmp_path / "machine.lock")}
    first, first_log = _start(tmp_path, "first", env)
    assert wait_for(lambda: _said(first_log) == ["computing"])
    timed, timed_log = _start(tmp_path, "timed", env)
    assert wait_for(lambda: _said(timed_log) == ["computing"])
    time.sleep(0.5)
    assert _said(timed_log) == ["computing"]  # not alone while `first` computes
    (tmp_path / "release-first").touch()
    assert wait_for(lambda: _said(timed_log) == ["computing", "alone main_job=True"])
    late, late_log = _start(tmp_path, "late", env)
    time.sleep(0.5)
    assert _said(late_log) == []  # a run that starts during the timed section waits for it
    (tmp_path / "release-timed").touch()
    assert wait_for(lambda: _said(late_log) == ["computing"])
    (tmp_path / "release-late").touch()
    for proc in (first, timed, late):
        assert proc.wait(timeout=30) == 0
    assert _said(timed_log) == ["computing", "alone main_job=True", "shared again", "ended"]


def test_outside_the_main_job_alone_waits_for_nothing(monkeypatch):
    monkeypatch.delenv(quiet.LOCK_ENV, raising=False)
    with quiet.computing(), quiet.alone() as machine:
        assert machine == {"waited_s": 0.0, "main_job": False}
