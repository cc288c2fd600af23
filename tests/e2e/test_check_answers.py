"""The answers checker through the real CLI, started from outside the repository."""

from __future__ import annotations

import subprocess
import sys

import cli_processes
from conftest import CLI_ENV, REPO, read_metrics


def run_elsewhere(tmp_path, *overrides: str) -> tuple[subprocess.CompletedProcess, dict]:
    """`python <repo>/experiments/check_answers.py` with the current directory outside the repository."""
    out_dir = tmp_path / "run"
    proc = cli_processes.run(
        [sys.executable, str(REPO / "experiments" / "check_answers.py"), f"hydra.run.dir={out_dir}", *overrides],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=CLI_ENV,
    )
    return proc, read_metrics(out_dir)


def test_default_answers_file_is_found_from_another_directory(tmp_path):
    proc, metrics = run_elsewhere(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert metrics["answers_file"] == str(REPO / "configs" / "examples" / "answers.yaml")
    assert metrics["summary"] == {"total": 9, "correct": 8, "wrong": 1}


def test_malformed_file_is_one_line_exit_2(gradlab_here, tmp_path):
    bad = tmp_path / "bad.yaml"  # named relative to the directory the command runs in, as a user types it
    bad.write_text("receptive_field:\n  - layers: [{kernel: 3, stride: 0, dilation: 1}]\n    fields: [3]\n")
    code, _, err = gradlab_here("check_answers", f"hydra.run.dir={tmp_path / 'run'}", "answers=bad.yaml")
    assert code == 2 and read_metrics(tmp_path / "run")["status"] == "failed"
    assert "bad.yaml:receptive_field[0].layers[0].stride" in err
    assert len(err.strip().splitlines()) == 1
