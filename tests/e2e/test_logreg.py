"""The logreg experiment through its real CLI: files, one-line errors with exit 2, never overwriting a run."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import CLI_ENV, REPO, run_cli

SMALL = ("grid.resolution=41", "train.steps=300")


def test_logreg_end_to_end_and_the_run_is_never_overwritten(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli("logreg", run_dir, *SMALL)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["newton"]["converged"]
    files = {p.name for p in run_dir.iterdir()}
    assert {"metrics.json", "data.csv", "logreg.log", ".hydra", "plot_data.npz", "loss_heatmap.png"} <= files
    assert set(metrics["plots"]) <= files
    before = {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    second = run_cli("logreg", run_dir, *SMALL, "data.seed=5")
    assert second.returncode == 2 and "already used by another run" in second.stderr
    assert {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_a_bad_value_is_one_line_and_exit_2(cli):
    """The process's own stderr and exit code (unknown keys and every experiment's values: unit/test_bad_input.py)."""
    proc, _ = cli("logreg", "optimizer.lr=0")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "optimizer.lr" in lines[0] and "not allowed" in lines[0]


def test_default_run_dirs_are_unique_even_in_the_same_second(tmp_path):
    cmd = [sys.executable, str(REPO / "experiments" / "logreg.py"), "optimizer.lr=-1"]  # fast: fails validation
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.DEVNULL, env=CLI_ENV) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [2, 2, 2]
    runs = sorted((tmp_path / "outputs" / "logreg").glob("*/*/metrics.json"))
    assert len(runs) == 3
    assert all(json.loads(r.read_text())["status"] == "failed" for r in runs)
