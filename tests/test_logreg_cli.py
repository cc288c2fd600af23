"""The logreg experiment end to end through its real CLI, and the run contract it shares with every experiment."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO

SMALL = ("grid.resolution=41", "train.steps=300")


def test_logreg_end_to_end(cli):
    proc, metrics = cli("logreg", *SMALL)
    assert proc.returncode == 0, proc.stderr
    assert metrics["status"] == "ok" and metrics["experiment"] == "logreg"
    meta = metrics["meta"]
    for key in ("python", "jax", "jaxlib", "optax", "hydra", "device", "precision", "seed", "wall_time_s",
                "compile_time_s"):
        assert meta[key] is not None, key
    assert meta["precision"] == "float64" and meta["x64_enabled"] and meta["seed"] == 0
    assert metrics["gradient"]["max_abs_err"] < 1e-10
    assert metrics["hessian"]["max_abs_err"] < 1e-10
    assert metrics["hessian"]["min_eig_over_grid"] > 0 and metrics["convex"] is True
    assert metrics["newton"]["converged"] and metrics["newton"]["iterations"] <= 10
    assert metrics["newton"]["grad_norm"] < 1e-10
    spacing = max(metrics["heatmap"]["grid_spacing"])
    assert metrics["newton"]["distance_to_heatmap_min"] <= spacing
    assert metrics["loss_stability"]["max_rel_err"] < 1e-12
    out = REPO  # noqa: F841 - the run dir is next to the metrics
    run_dir = next(p for p in (proc.args[2].split("=", 1)[1],))
    from pathlib import Path

    files = {p.name for p in Path(run_dir).iterdir()}
    assert {"metrics.json", "data.csv", "logreg.log", ".hydra", "loss_heatmap.png", "sigmoid_family.png",
            "min_eigenvalue_map.png", "loss_curve.png"} <= files
    assert set(metrics["plots"]) <= files


def test_same_seed_same_numbers_and_other_seed_other_numbers(cli):
    _, first = cli("logreg", *SMALL, "data.seed=7")
    _, second = cli("logreg", *SMALL, "data.seed=7")
    _, other = cli("logreg", *SMALL, "data.seed=8")
    for section in ("fit", "newton", "heatmap"):
        assert first[section] == second[section]
    assert first["fit"]["phi1"] != other["fit"]["phi1"]


def test_float32_precision_is_applied(cli):
    proc, metrics = cli("logreg", *SMALL, "precision=float32")
    assert proc.returncode == 0, proc.stderr
    assert metrics["meta"]["precision"] == "float32" and not metrics["meta"]["x64_enabled"]
    assert metrics["gradient"]["max_abs_err"] < 1e-3


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("optimizer.lr=0", "optimizer.lr"),
        ("data.std=-1", "data.std"),
        ("grid.resolution=1", "grid.resolution"),
        ("data.n_per_class=0", "data.n_per_class"),
        ("optimizer.name=lbfgs", "optimizer.name"),
        ("train.steps=ten", "train.steps"),
        ("+data.colour=red", "data.colour"),
        ("precision=float16", "precision"),
    ],
)
def test_bad_config_is_one_clear_line_and_exit_2(cli, override, key):
    proc, metrics = cli("logreg", override)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert key in lines[0] and "not allowed" in lines[0]
    assert metrics["status"] == "failed" and key in metrics["error"]


@pytest.mark.parametrize(
    ("content", "fault"),
    [
        (None, "file not found"),
        ("a,b\n1,0\n", "columns x and y"),
        ("x,y\n1.0,0\nabc,1\n", "numeric"),
        ("x,y\n1.0,0\nnan,1\n", "finite"),
        ("x,y\n1.0,0\n2.0,2\n", "labels"),
        ("x,y\n", "at least one data row"),
    ],
)
def test_bad_csv_gives_a_clear_error(cli, tmp_path, content, fault):
    csv = tmp_path / "data.csv"
    if content is not None:
        csv.write_text(content)
    proc, metrics = cli("logreg", f"data.path={csv}")
    assert proc.returncode == 2
    assert "data.path" in proc.stderr and fault in proc.stderr
    assert metrics["status"] == "failed"


def test_user_csv_is_used(cli, tmp_path):
    csv = tmp_path / "mine.csv"
    csv.write_text("x,y\n-2,0\n-1,0\n0.5,0\n-0.5,1\n1,1\n2,1\n")
    proc, metrics = cli("logreg", *SMALL, f"data.path={csv}")
    assert proc.returncode == 0, proc.stderr
    assert metrics["data"] == {"n": 6, "source": str(csv)}
    assert metrics["newton"]["converged"]


def test_divergent_training_is_marked_failed_naming_the_step(cli):
    proc, metrics = cli("logreg", *SMALL, "optimizer.name=sgd", "optimizer.lr=1e308")
    assert proc.returncode == 1
    assert metrics["status"] == "failed" and "at step" in metrics["error"]
    assert "at step" in proc.stderr


def test_an_earlier_run_is_never_overwritten(cli, tmp_path):
    run_dir = tmp_path / "run"
    from conftest import run_cli

    first = run_cli("logreg", run_dir, *SMALL)
    assert first.returncode == 0
    before = (run_dir / "metrics.json").read_text(), (run_dir / ".hydra" / "overrides.yaml").read_text()
    second = run_cli("logreg", run_dir, *SMALL, "data.seed=5")
    assert second.returncode == 2 and "already holds a run" in second.stderr
    after = (run_dir / "metrics.json").read_text(), (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert before == after


def test_default_run_dirs_are_unique_even_in_the_same_second(tmp_path):
    cmd = [sys.executable, str(REPO / "experiments" / "logreg.py"), "optimizer.lr=-1"]  # fast: fails validation
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.DEVNULL) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [2, 2, 2]
    runs = sorted((tmp_path / "outputs" / "logreg").glob("*/*/metrics.json"))
    assert len(runs) == 3
    assert all(json.loads(r.read_text())["status"] == "failed" for r in runs)
