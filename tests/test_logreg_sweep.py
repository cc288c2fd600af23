"""The vectorised sweep: same numbers as individual runs, same numbers on one or two devices, and its CLI."""

from __future__ import annotations

import csv
import json

import chex
import jax
import jax.numpy as jnp
import pytest
from conftest import run_cli

from gradlab.problems import logistic
from gradlab.problems import vectorised_sweep
from gradlab.problems.training import make_train

jax.config.update("jax_enable_x64", True)

DATA = {"n_per_class": 10, "mean0": -1.0, "mean1": 1.0, "std": 1.0}
SMALL = ("seeds.count=2", "lr.num=3", "momenta=[0.0,0.9]", "steps=200", "timing_repeats=1", "curves=2")


def test_vectorised_sweep_equals_individual_runs():
    grid = vectorised_sweep.full_grid([0, 5], [0.01, 0.3], [0.0, 0.8])
    sweep = jax.jit(vectorised_sweep.make_sweep(DATA, "momentum", 150))
    result = sweep(jnp.asarray(grid.seeds, jnp.uint32), jnp.asarray(grid.lrs), jnp.asarray(grid.momenta))
    train = jax.jit(make_train(logistic.bce_loss, "momentum", 150))
    for row, (seed, lr, momentum) in enumerate(zip(*grid, strict=True)):
        x, y = logistic.sample_data(jax.random.key(int(seed)), 10, -1.0, 1.0, 1.0)
        single = train(jnp.zeros(2), lr, momentum, x, y)
        chex.assert_trees_all_close(result.phi[row], single.phi, rtol=1e-12, atol=1e-12)
        chex.assert_trees_all_close(result.losses[row], single.losses, rtol=1e-12, atol=1e-12)


def test_optimum_losses_match_newton_per_seed():
    optimum = vectorised_sweep.optimum_losses(DATA, [3])
    x, y = logistic.sample_data(jax.random.key(3), 10, -1.0, 1.0, 1.0)
    phi = logistic.newton(jnp.zeros(2), x, y, 1e-12, 100).phi
    assert float(optimum[0]) == pytest.approx(float(logistic.bce_loss(phi, x, y)), rel=1e-13)


def _table(run_dir):
    with open(run_dir / "sweep.csv") as handle:
        return list(csv.DictReader(handle))


def _rows_by_config(run_dir):
    with open(run_dir / "sweep.csv") as handle:
        return {(r["seed"], r["lr"], r["momentum"]): r for r in csv.DictReader(handle)}


def test_logreg_sweep_cli_end_to_end_and_sharded_on_two_devices(tmp_path, monkeypatch):
    one = run_cli("logreg_sweep", tmp_path / "one", *SMALL)
    assert one.returncode == 0, one.stderr
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    # 3 seeds x 3 lrs x 1 momentum = 9 rows: an odd batch, padded to split across the two devices
    two = run_cli("logreg_sweep", tmp_path / "two", *SMALL, "seeds.count=3", "momenta=[0.9]")
    assert two.returncode == 0, two.stderr
    metrics_one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    metrics_two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics_one["configurations"] == 12 and metrics_one["devices"]["count"] == 1
    assert metrics_two["configurations"] == 9 and metrics_two["devices"]["count"] == 2
    rows_one, rows_two = _rows_by_config(tmp_path / "one"), _rows_by_config(tmp_path / "two")
    shared = rows_one.keys() & rows_two.keys()
    assert len(shared) == 6  # seeds 0, 1 x 3 lrs at momentum 0.9
    assert all(rows_one[k] == rows_two[k] for k in shared)  # identical numbers on one and two devices
    assert {"final_gap_vs_lr.png", "convergence_curves.png"} <= set(metrics_one["plots"])
    assert all(float(r["gap_to_optimum"]) > -1e-9 for r in rows_one.values())
