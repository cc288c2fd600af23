"""The logreg experiment through its real CLI: files, one-line errors with exit 2, never overwriting a run."""

from __future__ import annotations

import json
import subprocess
import sys

import cli_processes
from conftest import CLI_ENV, REPO, run_cli


def test_a_finished_run_is_never_overwritten(main_job):
    """A second run into the main job's logreg directory is refused, and every byte of the first stays."""
    run_dir = main_job[0] / "logreg"
    files = {p.name for p in run_dir.iterdir()}
    assert {"metrics.json", "data.csv", "logreg.log", ".hydra", "plot_data.npz", "loss_heatmap.png"} <= files
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    second = run_cli("logreg", run_dir, "data.seed=5")
    assert second.returncode == 2 and "already used by another run" in second.stderr
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_a_bad_value_is_one_line_and_exit_2(cli):
    """The process's own stderr and exit code (unknown keys and every experiment's values: unit/test_bad_input.py)."""
    proc, _ = cli("logreg", "optimizer.lr=0")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "optimizer.lr" in lines[0] and "not allowed" in lines[0]


def test_default_run_dirs_are_unique_even_in_the_same_second(tmp_path):
    cmd = [sys.executable, str(REPO / "experiments" / "logreg.py"), "optimizer.lr=-1"]  # fast: fails validation
    procs = [cli_processes.popen(cmd, cwd=tmp_path, stderr=subprocess.DEVNULL, env=CLI_ENV) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [2, 2, 2]
    runs = sorted((tmp_path / "outputs" / "logreg").glob("*/*/metrics.json"))
    assert len(runs) == 3
    assert all(json.loads(r.read_text())["status"] == "failed" for r in runs)
