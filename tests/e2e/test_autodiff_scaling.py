"""jvp vs vjp cost through the real CLI: a small run end to end (files, progress on stderr, the load recorded)."""

from __future__ import annotations

from conftest import SMALL_AUTODIFF_SCALING as SMALL


def test_cli_small_run_end_to_end(cli, tmp_path):
    proc, metrics = cli("autodiff_scaling", *SMALL)
    assert proc.returncode == 0, proc.stderr
    assert metrics["status"] == "ok" and metrics["all_grads_match"] is True
    assert [r["P"] for r in metrics["sizes"]["linear"]] == [10, 100]
    assert all(r["time"]["fwd_sequential"]["best"] > 0 for r in metrics["sizes"]["linear"])  # timed, not predicted
    assert set(metrics["plots"]) == {"time_vs_parameters.png", "ratios_vs_parameters.png", "jacobian_crossover.png"}
    run_dir = tmp_path / "autodiff_scaling-0"
    assert all((run_dir / name).is_file() for name in [*metrics["plots"], "plot_data.npz"])
    assert "linear sizes" in proc.stderr  # the progress bar goes to stderr
    load = metrics["load"]
    assert {"before", "after", "while_timing"} <= set(load) and load["before"]["cores"] >= 1
    overloaded = load["before"]["overloaded"] or load["after"]["overloaded"]
    assert overloaded == any("load average" in w for w in metrics["warnings"])
