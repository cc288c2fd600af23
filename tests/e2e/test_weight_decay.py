"""Problem 3 through the real CLI: a sweep over alpha writes every job's files and reproduces the numbers of the
same config run in-process."""

from __future__ import annotations

import json
import sys

import cli_processes
import pytest
from conftest import CLI_ENV, REPO

SMALL = ("steps=40", "contour_grid=20", "lam=0.01")
COMPARED = ("sgd", "momentum", "adam", "minimizer_l2", "penalty_grad_max_abs_err", "optax_weight_decay")


@pytest.mark.slow
def test_cli_sweep_over_alpha_reproduces_the_single_run(run_experiment, tmp_path):
    _, single, _ = run_experiment("weight_decay", *SMALL, "alpha=0.01")
    sweep_dir = tmp_path / "sweep"
    proc = cli_processes.run(
        [sys.executable, str(REPO / "experiments" / "weight_decay.py"), "-m", f"hydra.sweep.dir={sweep_dir}",
         *SMALL, "alpha=0.01,0.005"],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=CLI_ENV,
    )
    assert proc.returncode == 0, proc.stderr
    runs = [json.loads((sweep_dir / str(job) / "metrics.json").read_text()) for job in range(2)]
    assert [run["config"]["alpha"] for run in runs] == [0.01, 0.005]
    assert [run["optax_weight_decay"] for run in runs] == pytest.approx([1.0, 2.0])
    assert all(run["sgd"]["within_roundoff_manual_vs_l2"] for run in runs)
    for job in range(2):
        for name in ("plot_data.npz", "trajectories_over_loss.png", "per_step_difference.png"):
            assert (sweep_dir / str(job) / name).stat().st_size > 0, (job, name)
    # same config in another process: the same numbers
    for section in COMPARED:
        assert runs[0][section] == single[section], section
    assert runs[1]["sgd"] != single["sgd"]
