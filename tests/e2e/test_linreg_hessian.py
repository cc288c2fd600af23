"""Problem 7 through the real CLI: a default run with its figure, the same numbers twice, a one-line error."""

from __future__ import annotations


def test_cli_default_run_and_reproducible(cli):
    proc, first = cli("linreg_hessian", "surface_grid_points=21")
    assert proc.returncode == 0, proc.stderr
    assert first["status"] == "ok" and "loss_surface.png" in first["plots"]
    proc, second = cli("linreg_hessian", "surface_grid_points=21")
    assert proc.returncode == 0, proc.stderr
    assert second["data"] == first["data"] and second["hessian"] == first["hessian"]
