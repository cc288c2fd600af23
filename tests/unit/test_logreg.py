"""Problem 8 (logreg) in-process: the numbers against autodiff and Newton, config and data errors, warnings."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import assert_refused_over_budget, validated_config

from gradlab.runner.config import ConfigError

SMALL = ("grid.resolution=41", "train.steps=300")


def test_logreg_numbers_agree_with_autodiff_and_newton(run_experiment):
    code, metrics, run_dir = run_experiment("logreg", *SMALL, figures=True)
    assert code == 0 and metrics["status"] == "ok" and metrics["experiment"] == "logreg"
    meta = metrics["meta"]
    for key in ("python", "jax", "jaxlib", "optax", "hydra", "device", "precision", "seed", "wall_time_s",
                "compile_time_s", "host", "pid"):
        assert meta[key] is not None, key
    assert meta["precision"] == "float64" and meta["x64_enabled"] and meta["seed"] == 0
    assert metrics["gradient"]["max_abs_err"] < 1e-10
    assert metrics["hessian"]["max_abs_err"] < 1e-10
    assert metrics["hessian"]["min_eig_over_grid"] > 0 and metrics["convex"] is True
    assert metrics["newton"]["converged"] and metrics["newton"]["iterations"] <= 10
    assert metrics["newton"]["grad_norm"] < 1e-10
    assert metrics["newton"]["distance_to_heatmap_min"] <= max(metrics["heatmap"]["grid_spacing"])
    assert metrics["loss_stability"]["max_rel_err"] < 1e-12
    assert metrics["warnings"] == []
    files = {p.name for p in run_dir.iterdir()}
    assert {"metrics.json", "data.csv", "plot_data.npz", "loss_heatmap.png", "sigmoid_family.png",
            "min_eigenvalue_map.png", "loss_curve.png", "data_and_fit.png"} <= files
    assert set(metrics["plots"]) <= files


def test_same_seed_same_numbers_and_other_seed_other_numbers(run_experiment):
    _, first, _ = run_experiment("logreg", *SMALL, "data.seed=7")
    _, second, _ = run_experiment("logreg", *SMALL, "data.seed=7")
    _, other, _ = run_experiment("logreg", *SMALL, "data.seed=8")
    for section in ("fit", "newton", "heatmap"):
        assert first[section] == second[section]
    assert first["fit"]["phi1"] != other["fit"]["phi1"]


def test_float32_precision_is_applied(run_experiment):
    code, metrics, _ = run_experiment("logreg", *SMALL, "precision=float32", "newton.tol=1e-4")
    assert code == 0, metrics.get("error")
    assert metrics["meta"]["precision"] == "float32" and not metrics["meta"]["x64_enabled"]
    assert metrics["gradient"]["max_abs_err"] < 1e-3


def test_float32_newton_that_cannot_reach_tol_says_so(run_experiment):
    _, metrics, _ = run_experiment("logreg", *SMALL, "precision=float32")  # newton.tol=1e-10 is below float32
    assert not metrics["newton"]["converged"]
    assert any("did not converge" in w for w in metrics["warnings"])


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("optimizer.lr=0", "optimizer.lr"),
        ("data.std=-1", "data.std"),
        ("grid.resolution=1", "grid.resolution"),
        ("data.n_per_class=0", "data.n_per_class"),
        ("optimizer.name=lbfgs", "optimizer.name"),
        ("+data.colour=red", "data.colour"),
        ("precision=float16", "precision"),
        ("data.seed=-1", "data.seed"),
        (f"data.seed={10**40}", "data.seed"),
        (f"train.steps={10**40}", "train.steps"),
    ],
)
@pytest.mark.slow
def test_bad_config_is_a_one_line_config_error_naming_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        validated_config("logreg", override)
    assert err.value.key == key and "\n" not in str(err.value) and "not allowed" in str(err.value)


@pytest.mark.parametrize("override", ["grid.resolution=100000", "train.steps=1000000000", "newton.max_iter=1000000000"])
def test_a_config_over_the_memory_budget_is_refused_before_any_array(run_experiment, override):
    # the budget is set, not read off the machine (half its free memory): newton.max_iter=1e9 needs 15 GiB, under
    # half of a 128 GB GPU host's memory; each of these estimates is above 8 GiB
    result = run_experiment("logreg", override, "memory_budget_gb=8")
    assert_refused_over_budget(result, override.split("=")[0])
    assert "GiB" in result[1]["error"]


def test_the_memory_budget_is_a_config_key(run_experiment):
    code, metrics, _ = run_experiment("logreg", *SMALL, "memory_budget_gb=0.0001")
    assert code == 2 and "grid.resolution" in metrics["error"]


@pytest.mark.parametrize(
    ("content", "fault"),
    [
        (None, "file not found"),
        (b"a,b\n1,0\n", "columns x and y"),
        (b"x,y\n1.0,0\nabc,1\n", "numeric"),
        (b"x,y\n1.0,0\nnan,1\n", "finite"),
        (b"x,y\n1.0,0\n2.0,2\n", "labels"),
        (b"x,y\n", "at least one data row"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "UTF-8"),
    ],
)
def test_bad_csv_gives_a_clear_error_naming_the_file(run_experiment, tmp_path, content, fault):
    csv = tmp_path / "data.csv"
    if content is not None:
        csv.write_bytes(content)
    code, metrics, _ = run_experiment("logreg", f"data.path={csv}")
    assert code == 2 and metrics["status"] == "failed"
    assert "data.path" in metrics["error"] and str(csv) in metrics["error"] and fault in metrics["error"]


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_user_csv_is_used_with_or_without_a_byte_order_mark(run_experiment, tmp_path, bom):
    csv = tmp_path / "mine.csv"
    csv.write_bytes(bom + b"x,y\n-2,0\n-1,0\n0.5,0\n-0.5,1\n1,1\n2,1\n")
    code, metrics, _ = run_experiment("logreg", *SMALL, f"data.path={csv}")
    assert code == 0, metrics.get("error")
    assert metrics["data"] == {"n": 6, "source": str(csv)}
    assert metrics["newton"]["converged"] and metrics["warnings"] == []


@pytest.mark.parametrize("rows", ["-2,0\n-1,0\n1,1\n2,1\n", "-1,1\n0,1\n2,1\n"])
def test_separable_or_single_class_data_is_never_called_converged(run_experiment, tmp_path, rows):
    csv = tmp_path / "separable.csv"
    csv.write_text("x,y\n" + rows)
    code, metrics, _ = run_experiment("logreg", *SMALL, f"data.path={csv}")
    assert code == 0
    assert metrics["newton"]["converged"] is False
    assert any("does not exist" in w for w in metrics["warnings"])


def test_divergent_training_is_marked_failed_naming_the_step(run_experiment):
    code, metrics, _ = run_experiment("logreg", *SMALL, "optimizer.name=sgd", "optimizer.lr=1e308")
    assert code == 1
    assert metrics["status"] == "failed" and "at step" in metrics["error"]


def test_a_figure_that_fails_keeps_the_numbers(run_experiment, monkeypatch):
    from gradlab.figures import logreg as figures

    def broken(data, cfg):
        raise OverflowError("Exceeded cell block limit")

    patched = [dataclasses.replace(f, draw=broken) if f.name == "loss_heatmap.png" else f
               for f in figures.FIGURES.figures]
    monkeypatch.setattr(figures.FIGURES, "figures", patched)
    code, metrics, run_dir = run_experiment("logreg", *SMALL, figures=True)
    assert code == 1 and metrics["status"] == "failed"
    assert "loss_heatmap.png" in metrics["error"] and "cell block" in metrics["plot_errors"]["loss_heatmap.png"]
    assert metrics["newton"]["converged"] and "loss_curve.png" in metrics["plots"]  # the numbers and other plots
    assert not (run_dir / "loss_heatmap.png").exists() and (run_dir / "loss_curve.png").exists()


# ------------------------------------------------------------------------------------------------------------
# Budgets that see the data (issue 23 item 4): a CSV is sized from the file before it is parsed


def test_a_csv_is_sized_by_its_line_count_without_being_parsed(tmp_path):
    from gradlab.runner.data_io import csv_parse_bytes, csv_rows_bound

    csv = tmp_path / "data.csv"
    csv.write_bytes(b"x,y\n" + b"not a number\n" * 1000 + b"1,0")  # no newline at the end: still counted
    assert csv_rows_bound(str(csv)) >= 1001 and csv_rows_bound(str(csv)) <= 1002
    assert csv_parse_bytes(str(csv)) >= 2 * csv.stat().st_size
    assert csv_rows_bound(str(tmp_path / "absent.csv")) == 0 and csv_parse_bytes(None) == 0


@pytest.mark.parametrize(("resolution", "budget_gb", "keys"), [
    (201, 1, "data.path, grid.resolution"),  # the grid's data-sized maps: 201^2 points x 100,000 rows, ~181 GiB
    (5, 0.01, "data.path, grid.resolution"),  # a small grid still holds 25 x 100,000 x 6 words, plus the reading
])
def test_a_csv_too_large_for_the_budget_is_refused_before_it_is_read(run_experiment, tmp_path, resolution, budget_gb,
                                                                    keys):
    """The file's rows are not even numbers: it is refused for its size before a line of it is parsed, exit 2, one
    line naming data.path (with grid.resolution, which multiplies the data-sized arrays)."""
    csv = tmp_path / "big.csv"
    csv.write_bytes(b"x,y\n" + b"garbage\n" * 100_000)
    result = run_experiment("logreg", f"data.path={csv}", f"grid.resolution={resolution}",
                            f"memory_budget_gb={budget_gb}")
    assert_refused_over_budget(result, keys)
    assert "numeric" not in result[1]["error"]


def test_a_csv_within_the_budget_runs(run_experiment, tmp_path):
    csv = tmp_path / "ok.csv"
    csv.write_text("x,y\n-2,0\n-1,0\n0.5,0\n-0.5,1\n1,1\n2,1\n")
    code, metrics, _ = run_experiment("logreg", *SMALL, f"data.path={csv}", "memory_budget_gb=0.5")
    assert code == 0, metrics.get("error")
