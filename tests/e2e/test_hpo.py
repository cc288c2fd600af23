"""Optuna searches through the CLI (`-m +hpo=logreg_optuna`): needs the `hpo` extra (hydra-optuna-sweeper).

A trial is one job of the sweep; the task returns the run's `objective` (configs/logreg.yaml:
fit.gap_to_newton), which the seeded TPE sampler minimises; a failed trial is told to Optuna as failed.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import yaml
from conftest import CLI_ENV, REPO, compose_config

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="the `hpo` extra is not installed: "
                    "pip install -e '.[hpo]' (hydra-optuna-sweeper, optuna<3)")
pytestmark = pytest.mark.slow

TINY = ("grid.resolution=11", "train.steps=50", "hydra.sweeper.n_trials=4", "figures=false")


def search(tmp_path, *overrides):
    """Run a 4-trial search in tmp_path: (process, sweep dir, summary rows, optimization_results.yaml)."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "logreg.py"), "-m", "+hpo=logreg_optuna", *TINY, *overrides],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=CLI_ENV,
    )
    sweeps = list((tmp_path / "outputs" / "logreg" / "multirun").glob("*/*"))
    assert len(sweeps) == 1, proc.stderr
    with open(sweeps[0] / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    results = sweeps[0] / "optimization_results.yaml"
    return proc, sweeps[0], rows, (yaml.safe_load(results.read_text()) if results.exists() else None)


def test_the_search_config_is_lr_and_momentum_of_heavy_ball_30_seeded_trials_minimising_the_objective():
    cfg = compose_config("logreg", "+hpo=logreg_optuna")
    assert cfg.optimizer.name == "momentum" and cfg.objective == "fit.gap_to_newton"
    from hydra import compose, initialize_config_dir

    from gradlab.runner.run import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        sweeper = compose("logreg", overrides=["+hpo=logreg_optuna"], return_hydra_config=True).hydra.sweeper
    assert "optuna" in sweeper._target_ and sweeper.n_trials == 30 and sweeper.direction == "minimize"
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler" and isinstance(sweeper.sampler.seed, int)
    assert sweeper.params == {"optimizer.lr": "tag(log, interval(0.001, 10.0))",
                              "optimizer.momentum": "interval(0.0, 0.99)"}


def test_a_4_trial_search_runs_end_to_end_records_a_diverging_trial_failed_and_reports_the_best(tmp_path):
    # lr 1e308 overflows at step 1: those trials fail, the search goes on; the seeded sampler draws both kinds
    proc, sweep_dir, rows, results = search(tmp_path, "optimizer.lr=choice(0.05,0.5,1e308)")
    assert proc.returncode == 1, proc.stderr  # like any sweep with a failed job
    assert len(rows) == 4 and {"ok", "failed"} == {row["status"] for row in rows}, rows
    assert all("NaN/inf" in row["error"] for row in rows if row["status"] == "failed")
    assert "Failed experiment" in proc.stderr + proc.stdout  # the sweeper told Optuna the trial failed
    ok = [row for row in rows if row["status"] == "ok"]
    for row in rows:
        assert float(row["optimizer.lr"]) in (0.05, 0.5, 1e308) and 0.0 <= float(row["optimizer.momentum"]) < 0.99
        config = json.loads((sweep_dir / row["job"] / "metrics.json").read_text())["config"]
        assert config["optimizer"]["name"] == "momentum"
    best = min(ok, key=lambda row: float(row["fit.gap_to_newton"]))
    assert results["best_value"] == pytest.approx(float(best["fit.gap_to_newton"]), rel=1e-12)
    assert results["best_params"] == {"optimizer.lr": pytest.approx(float(best["optimizer.lr"]), rel=1e-12),
                                      "optimizer.momentum": pytest.approx(float(best["optimizer.momentum"]),
                                                                          rel=1e-12)}
    assert (sweep_dir / "summary.png").stat().st_size > 0
