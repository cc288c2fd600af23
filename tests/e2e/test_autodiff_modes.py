"""Problems 9/10 through the real CLI: a bad value is one line and exit 2; a run writes its files and its
tables are those of the same config run in-process."""

from __future__ import annotations

from pathlib import Path

OVERRIDES = ("x=[-2.0,0.0,0.5,1.5]", "plot_points=50")


def test_cli_end_to_end_same_tables_as_in_process(cli, run_experiment):
    proc, metrics = cli("autodiff_modes", *OVERRIDES)
    assert proc.returncode == 0, proc.stderr
    assert metrics["status"] == "ok"
    out_dir = Path(proc.args[2].split("=", 1)[1])
    for name in ("jaxpr_y.txt", "jaxpr_grad_y.txt", "plot_data.npz", *metrics["plots"]):
        assert (out_dir / name).stat().st_size > 0, name
    _, again, _ = run_experiment("autodiff_modes", *OVERRIDES)
    assert again["points"] == metrics["points"] and again["max_errors"] == metrics["max_errors"]
