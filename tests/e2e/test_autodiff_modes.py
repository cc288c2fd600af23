"""Problems 9/10 through the real CLI: a graph typed on the command line runs and writes its tables (the same as
the config run in-process); a bad graph is one line naming the node, and exit 2."""

from __future__ import annotations

from pathlib import Path

from conftest import read_metrics

# a teacher's new exercise, written as a YAML file of their own: y = x1 x2 + sin(x1) at two points
EXERCISE = """\
inputs: {x1: [1.0, 2.0], x2: [3.0, -1.0]}
nodes:
  v1: x1 * x2
  v2: sin(x1)
output: v1 + v2
derivative: {x1: x2 + cos(x1), x2: x1}
draw_at: null
plot_range: [0.0, 3.0]
"""


def test_cli_end_to_end_same_tables_as_in_process(cli, run_experiment, tmp_path):
    (tmp_path / "mine" / "graph").mkdir(parents=True)
    (tmp_path / "mine" / "graph" / "exercise.yaml").write_text(EXERCISE)
    search = f"hydra.searchpath=[file://{tmp_path / 'mine'}]"  # what --config-dir does, as an override
    proc, metrics = cli("autodiff_modes", search, "graph=exercise", "plot_points=50")
    assert proc.returncode == 0, proc.stderr
    assert metrics["status"] == "ok" and metrics["graph"]["nodes"] == {"v1": "x1 * x2", "v2": "sin(x1)",
                                                                       "y": "v1 + v2"}
    out_dir = Path(proc.args[2].split("=", 1)[1])
    for name in ("report_tables.md", "jaxpr_y.txt", "jaxpr_grad_y.txt", "plot_data.npz", *metrics["plots"]):
        assert (out_dir / name).stat().st_size > 0, name
    assert metrics["max_errors"]["forward_vs_closed_form"] < 1e-15
    assert metrics["points"][1]["gradient"]["x2"]["reverse"] == 2.0  # dy/dx2 = x1 at x1 = 2
    assert metrics["operation_counts"]["forward_passes"] == 2
    _, again, _ = run_experiment("autodiff_modes", search, "graph=exercise", "plot_points=50")
    assert again["points"] == metrics["points"] and again["max_errors"] == metrics["max_errors"]


def test_a_bad_graph_is_one_line_and_exit_2(gradlab_here, tmp_path):
    code, _, err = gradlab_here("autodiff_modes", f"hydra.run.dir={tmp_path / 'run'}", "graph.nodes.f5='sin(f6)'")
    assert code == 2
    assert err.strip().splitlines() == [
        "gradlab: config error: graph.nodes.f5='sin(f6)' is not allowed: 'f6' is not defined (inputs: x; nodes: f1, "
        "f2, f3, f4, y)"]
    assert read_metrics(tmp_path / "run")["status"] == "failed"
