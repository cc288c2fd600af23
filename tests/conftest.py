"""Shared test helpers: run an experiment's real CLI into tmp_path and read its metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(name: str, out_dir: Path, *overrides: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python experiments/<name>.py hydra.run.dir=<out_dir> <overrides>` from the repo root."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, str(REPO / "experiments" / f"{name}.py"), f"hydra.run.dir={out_dir}", *overrides],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def experiment_module(name: str):
    """gradlab.experiments.<name>: its schema, main and helpers."""
    from gradlab.runner.run import experiment_module as module

    return module(name)


def read_metrics(out_dir: Path) -> dict:
    return json.loads((Path(out_dir) / "metrics.json").read_text())


@pytest.fixture
def cli(tmp_path):
    """cli(name, *overrides) -> (completed process, metrics dict or None), run into a fresh tmp dir."""
    counter = iter(range(1_000))

    def _run(name: str, *overrides: str, timeout: float = 600):
        out_dir = tmp_path / f"{name}-{next(counter)}"
        proc = run_cli(name, out_dir, *overrides, timeout=timeout)
        metrics_path = out_dir / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else None
        return proc, metrics

    return _run
