"""Problem 7 through the real CLI: a default run with its figure, the same numbers as a run in another process."""

from __future__ import annotations


def test_cli_default_run_and_reproducible(cli, run_experiment):
    proc, first = cli("linreg_hessian", "surface_grid_points=21")
    assert proc.returncode == 0, proc.stderr
    assert first["status"] == "ok" and "loss_surface.png" in first["plots"]
    _, second, _ = run_experiment("linreg_hessian", "surface_grid_points=21")
    assert second["data"] == first["data"] and second["hessian"] == first["hessian"]
