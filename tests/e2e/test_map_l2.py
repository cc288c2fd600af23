"""Problem 2 through the real CLI: a bad value is one line and exit 2; a run writes its files and its numbers
are those of the same config run in-process."""

from __future__ import annotations

from pathlib import Path

SMALL = ("offset_check.num_points=100", "sigma_sweep.num=9")


def test_cli_end_to_end_same_numbers_as_in_process(cli, run_experiment):
    proc, first = cli("map_l2", *SMALL)
    assert proc.returncode == 0, proc.stderr
    assert first["status"] == "ok" and first["meta"]["x64_enabled"]
    out_dir = Path(proc.args[2].split("=", 1)[1])
    for name in ("metrics.json", "plot_data.npz", "map_vs_prior_sigma.png"):
        assert (out_dir / name).stat().st_size > 0, name
    _, second, _ = run_experiment("map_l2", *SMALL)
    for key in ("bernoulli", "gaussian", "objective_offset", "objective_offset_max_abs_err", "sweep"):
        assert first[key] == second[key], key
