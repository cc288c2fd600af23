"""Problem 7 through the real CLI: a default run with its figure, the same numbers twice, a one-line error."""

from __future__ import annotations


def test_cli_default_run_and_reproducible(cli):
    proc, first = cli("linreg_hessian", "surface_grid_points=21")
    assert proc.returncode == 0, proc.stderr
    assert first["status"] == "ok" and "loss_surface.png" in first["plots"]
    proc, second = cli("linreg_hessian", "surface_grid_points=21")
    assert proc.returncode == 0, proc.stderr
    assert second["data"] == first["data"] and second["hessian"] == first["hessian"]


def test_cli_length_mismatch_is_a_config_error(cli):
    proc, _ = cli("linreg_hessian", "data.x=[0,1,2]", "data.y=[0,1]")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "data.y=" in lines[0], proc.stderr
