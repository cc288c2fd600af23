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
from gradlab.runner.sweep_jobs import job_status, planned_jobs
from gradlab.runner.sweep_summary import (
    SEEDS_CSV,
    SEEDS_PNG,
    SUMMARY_CSV,
    SUMMARY_PNG,
    SweepSummary,
    not_ok_line,
    sweep_error,
    write_summary,
)


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


# ---- every job's end recorded (issue 23 item 1): the job list, the scheduler's state, the error path ----


def write_multirun_yaml(sweep_dir, task, launcher="hydra._internal.core_plugins.basic_launcher.BasicLauncher",
                        params=None):
    """The multirun.yaml Hydra's basic sweeper saves: the sweep's task overrides, its params, the launcher."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {
        "sweep": {"dir": "${now:%H-%M-%S}", "subdir": "${hydra.job.num}"},  # the dir would move with the clock
        "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper", "max_batch_size": None,
                    "params": params},
        "launcher": {"_target_": launcher, "submitit_folder": "${hydra.sweep.dir}/.submitit/%j"},
        "overrides": {"task": task}, "job": {"config_name": "logreg"}}}))


def test_the_job_list_is_the_product_of_the_swept_values_in_hydra_order(tmp_path):
    write_multirun_yaml(tmp_path, ["optimizer.lr=0.1,0.2", "optimizer.name=sgd,adam", "train.steps=5",
                                   "optimizer.lr=0.3,0.4"], params={"data.seed": "0,1"})
    jobs = planned_jobs(tmp_path)
    # hydra.sweeper.params first, then the command line; a key given twice keeps its last values, in its first place
    assert jobs == {n: [f"data.seed={s}", f"optimizer.lr={lr}", f"optimizer.name={o}", "train.steps=5"]
                    for n, (s, lr, o) in enumerate((s, lr, o) for s in (0, 1) for lr in (0.3, 0.4)
                                                   for o in ("sgd", "adam"))}


def test_another_sweeper_or_no_multirun_yaml_gives_no_job_list(tmp_path):
    assert planned_jobs(tmp_path) == {}
    write_multirun_yaml(tmp_path, ["a=1,2"])
    settings = OmegaConf.load(tmp_path / "multirun.yaml")
    assert planned_jobs(tmp_path) == {0: ["a=1"], 1: ["a=2"]}
    settings.hydra.sweep.subdir = "${hydra.job.override_dirname}"  # job n is not in <sweep>/<n>
    OmegaConf.save(settings, tmp_path / "multirun.yaml")
    assert planned_jobs(tmp_path) == {}
    settings.hydra.sweep.subdir = "${hydra.job.num}"
    settings.hydra.sweeper._target_ = "hydra_plugins.optuna.OptunaSweeper"
    OmegaConf.save(settings, tmp_path / "multirun.yaml")
    assert planned_jobs(tmp_path) == {}


@pytest.mark.parametrize(("record", "state", "status"), [
    ("ok", "NODE_FAIL", "ok"),  # the job's own record says how it ended
    ("failed", "FAILED", "failed"),
    ("interrupted", "CANCELLED", "cancelled"),  # SLURM's SIGTERM interrupted it: the scheduler says why
    ("interrupted", "TIMEOUT", "timeout"),
    ("interrupted", "FAILED", "interrupted"),  # the run's own non-zero exit after it recorded the interruption
    ("interrupted", "", "interrupted"),
    ("missing", "NODE_FAIL", "node_fail"),  # no record: the scheduler's state
    ("missing", "TIMEOUT", "timeout"),
    ("crashed", "OUT_OF_MEMORY", "out_of_memory"),  # a record left 'running' by a job the scheduler killed
    ("running", "PREEMPTED", "preempted"),
    ("missing", "CANCELLED", "cancelled"),
    ("missing", "COMPLETED", "lost"),  # the scheduler says it completed, yet it left nothing
    ("missing", "", "lost"),
    ("crashed", "", "crashed"),
    ("crashed", "COMPLETED", "crashed"),
    ("running", "RUNNING", "running"),
])
def test_a_jobs_status_is_its_record_else_the_schedulers_state_else_lost(record, state, status):
    assert job_status(record, state) == status


class FakeJob:
    """A submitit job as the summary reads it: `job_id` and the scheduler's `state`."""

    def __init__(self, job_id, state):
        self.job_id, self.state = job_id, state


@pytest.mark.slow  # draws the plot
def test_a_job_that_never_started_is_a_row_with_its_planned_values_and_the_schedulers_state(tmp_path):
    write_multirun_yaml(tmp_path, ["optimizer.lr=0.1,0.2,0.3,0.4"])
    make_job(tmp_path, 0, {"optimizer.lr": 0.1}, fit={"loss": 1.0})
    make_job(tmp_path, 3, {"optimizer.lr": 0.4}, fit={"loss": 2.0})
    (tmp_path / "3" / "metrics.json").write_text(json.dumps({"status": "running", "meta": {"host": "elsewhere"}}))
    scheduler = {0: FakeJob("1001_0", "COMPLETED"), 1: FakeJob("1001_1", "NODE_FAIL"),
                 3: FakeJob("1001_3", "OUT_OF_MEMORY")}  # job 2: nothing known
    summary = write_summary(tmp_path, ["fit.loss"], "fit.loss", scheduler=scheduler)
    rows = read_csv(tmp_path / SUMMARY_CSV)
    assert [(r["job"], r["scheduler_job"], r["optimizer.lr"], r["status"]) for r in rows] == [
        ("0", "1001_0", "0.1", "ok"), ("1", "1001_1", "0.2", "node_fail"), ("2", "", "0.3", "lost"),
        ("3", "1001_3", "0.4", "out_of_memory")]
    assert rows[1]["error"] == "the scheduler ended job 1001_1 NODE_FAIL before it wrote a record"
    assert rows[3]["error"] == "the scheduler ended job 1001_3 OUT_OF_MEMORY while it ran"
    assert "never started" in rows[2]["error"]
    assert (tmp_path / SUMMARY_PNG).stat().st_size > 0
    assert summary.failed and summary.jobs == 4
    assert not_ok_line(summary, shown=2) == ("3 of 4 jobs not ok: job 1 node_fail (1001_1), job 2 lost "
                                             "and 1 more")


def test_a_resumed_attempt_is_not_the_schedulers_and_no_scheduler_means_no_id_column(tmp_path):
    write_multirun_yaml(tmp_path, ["optimizer.lr=0.1,0.2"])
    make_job(tmp_path, 0, {"optimizer.lr": 0.1}, fit={"loss": 1.0})
    make_job(tmp_path / "resume-1", 1, {"optimizer.lr": 0.2}, fit={"loss": 1.0})
    write_summary(tmp_path, ["fit.loss"], None, scheduler={0: FakeJob("7_0", "COMPLETED"),
                                                            1: FakeJob("7_1", "NODE_FAIL")})
    rows = read_csv(tmp_path / SUMMARY_CSV)
    assert [(r["attempt"], r["scheduler_job"], r["status"]) for r in rows] == [("", "7_0", "ok"),
                                                                             ("resume-1", "", "ok")]
    write_summary(tmp_path, ["fit.loss"], None, scheduler={})
    assert "scheduler_job" not in read_csv(tmp_path / SUMMARY_CSV)[0]


def test_a_sweep_ended_by_an_error_is_summarised_and_exits_1_in_one_line(tmp_path, capsys):
    from hydra.errors import ConfigCompositionException

    from gradlab.runner import run

    write_multirun_yaml(tmp_path, ["optimizer.lr=0.1,0.2"])
    make_job(tmp_path, 0, {"optimizer.lr": 0.1}, fit={"loss": 1.0})
    config = OmegaConf.create({"objective": None, "hydra": {"sweep": {"dir": str(tmp_path)}}})
    assert sweep_error(RuntimeError("no sweep started")) is None  # not a sweep's error: report_error tells it
    SweepSummary(metrics=["fit.loss"]).on_multirun_start(config)
    assert sweep_error(ConfigCompositionException("bad value")) is None  # bad input: exit 2, as before
    assert SweepSummary.started is None and not (tmp_path / SUMMARY_CSV).exists()
    SweepSummary(metrics=["fit.loss"]).on_multirun_start(config)
    assert sweep_error(OSError("sbatch: error: Batch job submission failed\nsecond line")) == run.EXIT_FAILED
    err = capsys.readouterr().err
    assert err == (f"gradlab: error: OSError: sbatch: error: Batch job submission failed (1 of 2 jobs not ok: job 1 "
                   f"lost); sweep summary: {tmp_path / SUMMARY_CSV}\n")
    assert [r["status"] for r in read_csv(tmp_path / SUMMARY_CSV)] == ["ok", "lost"]
    assert SweepSummary.started is None


def test_a_job_without_a_result_is_told_by_the_summary_alone(tmp_path, capsys):
    UncompletedJobError = pytest.importorskip("submitit.core.utils").UncompletedJobError  # noqa: N806

    write_multirun_yaml(tmp_path, ["optimizer.lr=0.1,0.2"])
    make_job(tmp_path, 0, {"optimizer.lr": 0.1}, fit={"loss": 1.0})
    SweepSummary().on_multirun_start(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert sweep_error(UncompletedJobError("Job 1001_1 (task: 0) with path /x/1001_1_0_result.pkl\nhas not")) == 1
    assert capsys.readouterr().err == (f"gradlab: error: sweep 1 of 2 jobs not ok: job 1 lost; sweep summary: "
                                       f"{tmp_path / SUMMARY_CSV}\n")


def test_ctrl_c_while_waiting_for_the_schedulers_jobs_still_writes_the_summary_and_exits_130(tmp_path, capsys,
                                                                                               monkeypatch):
    UncompletedJobError = pytest.importorskip("submitit.core.utils").UncompletedJobError  # noqa: N806

    from gradlab.runner import sweep_summary

    def interrupted_wait(sweep_dir, *, wait=False):
        if wait:
            raise KeyboardInterrupt
        return {}

    monkeypatch.setattr(sweep_summary, "scheduler_jobs", interrupted_wait)
    write_multirun_yaml(tmp_path, ["optimizer.lr=0.1,0.2"])
    make_job(tmp_path, 0, {"optimizer.lr": 0.1}, fit={"loss": 1.0})
    SweepSummary().on_multirun_start(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert sweep_error(UncompletedJobError("Job 1001_1 (task: 0)")) == 130
    err = capsys.readouterr().err
    assert err.startswith("gradlab: interrupted while waiting for the scheduler's jobs") and err.count("\n") == 1
    assert [r["status"] for r in read_csv(tmp_path / SUMMARY_CSV)] == ["ok", "lost"]


def test_a_summary_that_cannot_be_written_after_a_sweep_error_is_one_line_too(tmp_path, capsys):
    write_multirun_yaml(tmp_path, ["optimizer.lr=0.1,0.2"])
    (tmp_path / SUMMARY_CSV).mkdir()  # the summary's name is taken by a folder: IsADirectoryError
    SweepSummary().on_multirun_start(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert sweep_error(RuntimeError("Job 1001_1 (task: 0) with path /x\nhas not produced any output")) == 1
    err = capsys.readouterr().err
    assert err.startswith("gradlab: error: RuntimeError: Job 1001_1 (task: 0) with path /x; no sweep summary: "
                          "IsADirectoryError: ") and err.count("\n") == 1


@pytest.mark.slow  # draws the plot
def test_the_plot_marks_the_jobs_not_ok_once_in_the_legend_without_stretching_the_metrics_axis(monkeypatch, tmp_path):
    from gradlab.runner import sweep_plots

    drawn = []
    monkeypatch.setattr(sweep_plots, "save", lambda fig, target: drawn.append(fig))
    rows = [{"seed": n, "status": status, "m": value} for n, status, value in [
        (0, "ok", 1e-17), (1, "timeout", None), (2, "lost", None), (3, "timeout", None), (4, "ok", 6e-17)]]
    sweep_plots.plot_summary(tmp_path / "summary.png", rows, ["seed"], "m")
    (ax,) = drawn[0].axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["m", "job not ok (timeout, lost)"]
    low, high = ax.get_ylim()  # the ok jobs' 1e-17..6e-17 and matplotlib's margins: the x marks are not data
    assert 0 < low < 1e-17 and 6e-17 < high < 7e-17
    assert ax.get_xlim()[0] < 0 and ax.get_xlim()[1] > 4  # every job's x is in view
