"""The vectorised sweep through the real CLI: the same numbers on one and on two (forced host) devices; bad values."""

from __future__ import annotations

import csv

import conftest
import jax
import pytest

TWO_DEVICES = "--xla_force_host_platform_device_count=2"
SMALL = ("seeds.count=2", "lr.num=3", "momenta=[0.0,0.9]", "steps=200", "timing_repeats=1", "curves=2")


def _rows_by_config(run_dir):
    with open(run_dir / "sweep.csv") as handle:
        return {(r["seed"], r["lr"], r["momentum"]): r for r in csv.DictReader(handle)}


@pytest.mark.slow
def test_logreg_sweep_cli_end_to_end_and_sharded_on_two_devices(tmp_path, cli, monkeypatch):
    # both runs on the CPU backend: forced host devices apply only to it, and on a GPU machine the default backend
    # would be the GPU (one device), whose numbers need not match the CPU's bit for bit (JAX_PLATFORMS is read as
    # JAX is imported: a CLI told it starts a new interpreter, cli_processes.py)
    if jax.default_backend() != "cpu":
        monkeypatch.setattr(conftest, "CLI_ENV", {**conftest.CLI_ENV, "JAX_PLATFORMS": "cpu"})
    one, metrics_one = cli("logreg_sweep", *SMALL)
    assert one.returncode == 0, one.stderr
    # 3 seeds x 3 lrs x 1 momentum = 9 rows: an odd batch, padded to split across the two devices
    monkeypatch.setattr(conftest, "CLI_ENV", {**conftest.CLI_ENV, "XLA_FLAGS": TWO_DEVICES})
    two, metrics_two = cli("logreg_sweep", *SMALL, "seeds.count=3", "momenta=[0.9]", "figures=false")  # numbers only
    assert two.returncode == 0, two.stderr
    assert metrics_one["configurations"] == 12 and metrics_one["devices"]["count"] == 1
    assert {metrics_one["meta"]["backend"], metrics_two["meta"]["backend"]} == {"cpu"}
    assert metrics_two["configurations"] == 9 and metrics_two["devices"]["count"] == 2
    rows_one, rows_two = _rows_by_config(tmp_path / "logreg_sweep-0"), _rows_by_config(tmp_path / "logreg_sweep-1")
    shared = rows_one.keys() & rows_two.keys()
    assert len(shared) == 6  # seeds 0, 1 x 3 lrs at momentum 0.9
    assert all(rows_one[k] == rows_two[k] for k in shared)  # identical numbers on one and two devices
    assert {"final_gap_vs_lr.png", "convergence_curves.png"} <= set(metrics_one["plots"])
    assert all(float(r["gap_to_optimum"]) > -1e-9 for r in rows_one.values())
