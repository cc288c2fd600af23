"""The sweep summary on hand-written job directories: the per-job CSV, the mean and spread over seeds, the plots."""

from __future__ import annotations

import csv
import json
import math
import struct

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from gradlab.runner import seeds
from gradlab.runner.seeds import aggregate_over_seeds, describe, is_seed_key, t_quantile_975
from gradlab.runner.sweep_summary import SEEDS_CSV, SEEDS_PNG, SUMMARY_CSV, SUMMARY_PNG, SweepSummary, write_summary


def make_job(sweep_dir, number, overrides, status="ok", **metrics):
    """A job directory as a sweep leaves it: .hydra/overrides.yaml and metrics.json."""
    job = sweep_dir / str(number)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"{k}={v}" for k, v in overrides.items()]))
    record = {"status": status, "experiment": "logreg", **metrics}
    if status != "ok":
        record["error"] = "training produced NaN/inf at step 3"
    (job / "metrics.json").write_text(json.dumps(record))
    return job


def read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def seed_sweep(sweep_dir, rng, fail=()):
    """3 seeds x 2 learning rates, metrics drawn at random; the jobs in `fail` failed."""
    number = 0
    for lr in (0.05, 0.1):
        for seed in (0, 1, 2):
            if number in fail:
                make_job(sweep_dir, number, {"data.seed": seed, "optimizer.lr": lr}, status="failed")
            else:
                make_job(sweep_dir, number, {"data.seed": seed, "optimizer.lr": lr},
                         fit={"loss": float(rng.lognormal()), "gap_to_newton": float(rng.lognormal(-5, 2))})
            number += 1


def job_metric(sweep_dir, metric, lr):
    """The metric of every ok job with this learning rate, read straight from the job directories."""
    values = []
    for job in sweep_dir.iterdir():
        if not job.name.isdigit():
            continue
        record = json.loads((job / "metrics.json").read_text())
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        if record["status"] == "ok" and f"optimizer.lr={lr}" in overrides:
            values.append(record["fit"][metric])
    return np.array(values)


# --------------------------------------------------------------------------------------------------------
# The statistics


@pytest.mark.parametrize("key, seed", [("seed", True), ("data.seed", True), ("init_seed", True), ("+data.seed", True),
                                       ("seeds.first", False), ("seeds", False), ("seedling", False),
                                       ("optimizer.lr", False)])
def test_seed_keys_are_seed_dot_seed_and_underscore_seed(key, seed):
    assert is_seed_key(key) is seed


def test_the_t_quantile_rejects_zero_degrees_of_freedom():
    with pytest.raises(ValueError, match="df >= 1"):
        t_quantile_975(0)


def test_describe_is_numpy_mean_std_and_the_t_interval():
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    stats = describe(x)
    half = 2.776445105 * np.std(x, ddof=1) / np.sqrt(5)
    assert stats["n"] == 5 and stats["mean"] == pytest.approx(np.mean(x))
    assert stats["std"] == pytest.approx(np.std(x, ddof=1)) and (stats["min"], stats["max"]) == (1.0, 5.0)
    assert (stats["ci95_low"], stats["ci95_high"]) == pytest.approx((np.mean(x) - half, np.mean(x) + half))


def test_describe_of_one_value_has_no_spread_and_of_none_no_numbers():
    one = describe([2.5])
    assert one["n"] == 1 and one["mean"] == one["min"] == one["max"] == 2.5
    assert all(math.isnan(one[k]) for k in ("std", "ci95_low", "ci95_high"))
    empty = describe([])
    assert empty["n"] == 0 and all(math.isnan(empty[k]) for k in seeds.STATS if k != "n")


def test_aggregate_groups_runs_that_differ_only_in_seeds_and_counts_failed_and_missing():
    rows = [
        {"data.seed": 0, "init_seed": 7, "optimizer.lr": 0.1, "status": "ok", "loss": 1.0, "gap": 0.5},
        {"data.seed": 1, "init_seed": 8, "optimizer.lr": 0.1, "status": "ok", "loss": 3.0, "gap": None},
        {"data.seed": 2, "init_seed": 9, "optimizer.lr": 0.1, "status": "failed", "loss": None, "gap": None},
        {"data.seed": 0, "init_seed": 7, "optimizer.lr": 1.0, "status": "crashed", "loss": 9.0, "gap": 9.0},
        {"data.seed": 1, "init_seed": 8, "optimizer.lr": 1.0, "status": "ok", "loss": math.inf, "gap": 2.0},
    ]
    out = aggregate_over_seeds(rows, ["loss", "gap"])
    assert [(r["optimizer.lr"], r["metric"]) for r in out] == [(0.1, "loss"), (0.1, "gap"), (1.0, "loss"),
                                                               (1.0, "gap")]
    assert all("data.seed" not in r and "init_seed" not in r for r in out)
    by = {(r["optimizer.lr"], r["metric"]): r for r in out}
    assert by[0.1, "loss"] == {**by[0.1, "loss"], "n": 2, "failed": 1, "missing": 0, "mean": 2.0, "min": 1.0,
                               "max": 3.0}
    assert by[0.1, "loss"]["std"] == pytest.approx(np.std([1.0, 3.0], ddof=1))
    assert (by[0.1, "gap"]["n"], by[0.1, "gap"]["missing"]) == (1, 1)  # a metric an ok run lacks is not a zero
    assert (by[1.0, "loss"]["n"], by[1.0, "loss"]["failed"], by[1.0, "loss"]["missing"]) == (0, 1, 1)  # inf
    assert by[1.0, "gap"]["mean"] == 2.0  # the crashed run's 9.0 never enters


def test_aggregate_of_a_pure_seed_sweep_is_one_group_and_rows_without_status_count_as_ok():
    rows = [{"seed": s, "loss": float(s)} for s in range(4)]
    (out,) = aggregate_over_seeds(rows, ["loss"])
    assert (out["n"], out["mean"], out["failed"]) == (4, 1.5, 0)


# --------------------------------------------------------------------------------------------------------
# The files a sweep gets


@pytest.mark.slow
def test_the_seed_aggregate_of_a_3_seed_sweep_equals_numpy_mean_and_std_of_the_job_metrics(tmp_path):
    seed_sweep(tmp_path, np.random.default_rng(0), fail={4})
    summary = write_summary(tmp_path, ["fit.loss", "fit.gap_to_newton"], "fit.gap_to_newton")
    assert summary.failed and summary.seeds_csv == tmp_path / SEEDS_CSV
    rows = read_csv(tmp_path / SEEDS_CSV)
    assert list(rows[0]) == ["optimizer.lr", "metric", "failed", "missing", *seeds.STATS]
    assert [(r["optimizer.lr"], r["metric"]) for r in rows] == [
        ("0.05", "fit.loss"), ("0.05", "fit.gap_to_newton"), ("0.1", "fit.loss"), ("0.1", "fit.gap_to_newton")]
    for row in rows:
        x = job_metric(tmp_path, row["metric"].split(".", 1)[1], row["optimizer.lr"])
        assert int(row["n"]) == len(x) == (2 if row["optimizer.lr"] == "0.1" else 3)
        assert int(row["failed"]) == (1 if row["optimizer.lr"] == "0.1" else 0)
        assert float(row["mean"]) == pytest.approx(np.mean(x), rel=1e-12)
        assert float(row["std"]) == pytest.approx(np.std(x, ddof=1), rel=1e-12)
        assert (float(row["min"]), float(row["max"])) == (x.min(), x.max())
        half = t_quantile_975(len(x) - 1) * np.std(x, ddof=1) / np.sqrt(len(x))
        assert float(row["ci95_high"]) - float(row["mean"]) == pytest.approx(half, rel=1e-9)
    assert (tmp_path / SEEDS_PNG).stat().st_size > 0 and (tmp_path / SUMMARY_PNG).stat().st_size > 0
    per_job = read_csv(tmp_path / SUMMARY_CSV)
    assert [r["status"] for r in per_job] == ["ok"] * 4 + ["failed", "ok"]


@pytest.mark.slow
def test_a_sweep_without_a_seed_gets_no_seed_aggregate(tmp_path):
    for number, lr in enumerate((0.05, 0.1)):
        make_job(tmp_path, number, {"optimizer.lr": lr}, fit={"loss": lr})
    summary = write_summary(tmp_path, ["fit.loss"], "fit.loss")
    assert summary.seeds_csv is None and not (tmp_path / SEEDS_CSV).exists() and not summary.failed


@pytest.mark.slow
def test_a_seed_only_sweep_is_one_group_plotted_as_one_interval(tmp_path):
    for seed in range(3):
        make_job(tmp_path, seed, {"data.seed": seed, "train.steps": 20}, fit={"loss": 1.0 + seed})
    write_summary(tmp_path, ["fit.loss"], "fit.loss")
    (row,) = read_csv(tmp_path / SEEDS_CSV)
    assert (row["n"], float(row["mean"]), float(row["std"])) == ("3", 2.0, 1.0)
    assert "train.steps" not in row  # the same in every job: not a group key
    assert (tmp_path / SEEDS_PNG).stat().st_size > 0


@pytest.mark.slow
def test_the_callback_adds_the_objective_as_a_column_and_plots_the_plot_metric_as_a_sweep(tmp_path, capsys):
    for number, (lr, momentum, gap) in enumerate([(0.01, 0.5, 1e-2), (0.3, 0.9, 1e-9), (2.0, 0.1, 3.0)]):
        make_job(tmp_path, number, {"optimizer.lr": lr, "optimizer.momentum": momentum},
                 fit={"loss": 7.0, "grad_norm": gap, "gap_to_newton": gap})
    config = OmegaConf.create({"objective": "fit.gap_to_newton", "hydra": {"sweep": {"dir": str(tmp_path)}}})
    SweepSummary(metrics=["fit.loss"], plot_metric="fit.grad_norm").on_multirun_end(config)
    rows = read_csv(tmp_path / SUMMARY_CSV)
    assert [float(r["fit.gap_to_newton"]) for r in rows] == [1e-2, 1e-9, 3.0]
    assert list(rows[0])[-4:] == ["fit.grad_norm", "fit.gap_to_newton", "warnings", "error"]
    width, height = struct.unpack(">II", (tmp_path / SUMMARY_PNG).read_bytes()[16:24])
    assert width < 2 * height  # the one-panel sweep plot (a search's two-panel plot is `gradlab search`'s)
    assert "sweep summary" in capsys.readouterr().out
