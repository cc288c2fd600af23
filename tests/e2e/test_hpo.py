"""`gradlab search` through the real CLI (Optuna's ask/tell over the run layer): needs the `hpo` extra.

A trial is a run of logreg in <search.dir>/<trial>; the study lives in SQLite and a killed search resumes from it;
a trial whose run fails is FAIL in the study and the search goes on; a bad search config is refused in one line.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cli_processes
import pytest
import yaml
from conftest import CLI_ENV, wait_until_computing

optuna = pytest.importorskip("optuna", reason="the `hpo` extra is not installed: pip install -e '.[hpo]'")

TINY = ("train.steps=50", "grid.resolution=11", "figures=false")  # a trial in ~1-2 s; trials share the compile cache
STUDY = "logreg_lr_momentum"  # configs/hpo/logreg_optuna.yaml


def command(tmp_path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "gradlab.cli", "search", "logreg", f"search.dir={tmp_path / 'search'}", *TINY,
            *overrides]


def search(tmp_path, *overrides: str) -> subprocess.CompletedProcess:
    return cli_processes.run(command(tmp_path, *overrides), cwd=tmp_path, capture_output=True, text=True, timeout=300,
                             env=CLI_ENV)


def summary(tmp_path) -> tuple[list[dict], dict]:
    """summary.csv's rows and best.yaml of the search in tmp_path."""
    with open(tmp_path / "search" / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    return rows, yaml.safe_load((tmp_path / "search" / "best.yaml").read_text())


def run_record(row: dict) -> dict:
    return json.loads((Path(row["dir"]) / "metrics.json").read_text())


@pytest.mark.slow
def test_a_search_killed_after_2_trials_resumes_from_sqlite_to_4_complete_trials(tmp_path):
    first = cli_processes.popen(command(tmp_path, "search.n_trials=4"), cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=CLI_ENV)
    try:
        wait_until_computing(tmp_path / "search" / "2" / "metrics.json", timeout=120)  # trials 0 and 1 are done
        first.kill()
        assert first.wait(timeout=30) == -9
    finally:
        if first.poll() is None:
            first.kill()
    resumed = search(tmp_path, "search.n_trials=4")
    assert resumed.returncode == 0, resumed.stderr
    assert "trial(s) 2 were running when the search stopped: marked FAIL" in resumed.stdout
    assert "ended: 4 of 4 trials done (4 complete, 0 failed)" in resumed.stdout

    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{tmp_path / 'search' / 'study.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    rows, best = summary(tmp_path)
    assert [(int(r["trial"]), r["state"]) for r in rows] == [(t.number, t.state.name) for t in study.trials]
    killed = rows[2]
    assert killed["status"] == "interrupted" and "marked FAIL on resume" in killed["error"]  # its run got SIGTERM
    for row, trial in zip(rows, study.trials, strict=True):
        if trial.state.name != "COMPLETE":
            continue
        record = run_record(row)  # each trial is a normal run with the trial's parameters and the objective
        assert record["status"] == "ok" and record["config"]["optimizer"]["name"] == "momentum"
        assert record["config"]["optimizer"]["lr"] == trial.params["optimizer.lr"] == float(row["optimizer.lr"])
        assert record["fit"]["gap_to_newton"] == trial.value == float(row["value"])
    assert best["best"]["value"] == study.best_value and best["best"]["trial"] == study.best_trial.number
    assert len({float(r["optimizer.lr"]) for r in rows}) == 5  # the resumed sampler did not draw trials again
    assert (tmp_path / "search" / "summary.png").stat().st_size > 0


@pytest.mark.slow
def test_a_search_whose_every_trial_diverges_records_them_failed_and_still_writes_its_summary(tmp_path):
    # lr >= 1e300: training overflows, or a result is inf; every run fails. In memory (storage null), 2 trials
    proc = search(tmp_path, "search.n_trials=2", "search.storage=null",
                  "search.params={optimizer.lr: {low: 1e300, high: 1e308, log: true}}")
    assert proc.returncode == 1, proc.stderr
    assert "ended: 2 of 2 trials done (0 complete, 2 failed); no trial completed" in proc.stdout
    rows, best = summary(tmp_path)
    assert [(r["state"], r["status"]) for r in rows] == [("FAIL", "failed")] * 2
    assert all(r["value"] == "" and float(r["optimizer.lr"]) >= 1e300 for r in rows)
    assert all(r["error"].startswith(("training produced NaN/inf", "non-finite result")) for r in rows), rows
    assert best["best"] is None and best["trials"] == {"COMPLETE": 0, "FAIL": 2}
    assert (tmp_path / "search" / "summary.png").stat().st_size > 0


@pytest.mark.parametrize("override, line", [
    ("search.params={optimizer.lrr: {low: 0.1, high: 1.0}}",
     "gradlab: config error: search.params='optimizer.lrr' is not allowed: a key of configs/logreg.yaml"),
    ("search.params={optimizer.lr: {low: 1.0, high: 0.1}}",
     "gradlab: config error: search.params.optimizer.lr={'low': 1.0, 'high': 0.1} is not allowed: a range with "
     "low < high"),
    ("search.n_trial=3", "gradlab: config error: search.n_trial='3' is not allowed: not a key of "
     "configs/hpo/logreg_optuna.yaml"),
])
def test_a_bad_search_config_is_refused_in_one_line_with_exit_2_before_anything_runs(gradlab_here, tmp_path,
                                                                                     override, line):
    code, _, err = gradlab_here("search", "logreg", f"search.dir={tmp_path / 'search'}", *TINY, override)
    assert (code, err.strip()) == (2, line)
    assert not (tmp_path / "search").exists()


def test_a_storage_that_cannot_be_opened_is_an_error_that_says_what_it_is_not_a_config_error(tmp_path):
    # the issue: a failing storage was reported as `config error: AssertionError`, exit 2
    (tmp_path / "a_file").write_text("")
    storage = f"search.storage=sqlite:///{tmp_path / 'a_file' / 'study.db'}"
    proc = search(tmp_path, storage)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("gradlab: error: FileExistsError: ") and "config error" not in proc.stderr
    assert proc.stderr.rstrip().endswith("(HYDRA_FULL_ERROR=1 for the traceback)")  # unit/test_launch_errors.py
