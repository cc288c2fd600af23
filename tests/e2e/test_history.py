"""Runs as a history, through the real CLI: a resumed sweep's replaced attempt, tags, and paths that stay put
(issue 23, items 6 and 7)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import cli_processes
import pytest
import yaml
from conftest import CLI_ENV, MAIN_JOB_RUNS, MAIN_JOB_TAGS, REPO, validated_config

from gradlab import cli

pytestmark = pytest.mark.slow
TINY = ("grid.resolution=11", "train.steps=50", "optimizer.name=sgd", "figures=false")
POINTS = "x,y\n-2,0\n-1,0\n0.5,0\n-0.5,1\n1,1\n2,1\n"


def gradlab(cwd, *argv, timeout=300) -> subprocess.CompletedProcess:
    return cli_processes.run([sys.executable, "-m", "gradlab.cli", *map(str, argv)], cwd=cwd, capture_output=True,
                             text=True, timeout=timeout, env=CLI_ENV)


def listed(capsys, *argv) -> tuple[int, str]:
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().out


def test_a_resumed_sweep_reruns_only_the_jobs_not_ok_and_lists_as_a_history_with_its_tags(tmp_path, capsys,
                                                                                          monkeypatch):
    """Job 1 fails on a missing data file, job 0 (another file) is ok; once the file exists, `gradlab resume` runs
    job 1 alone again into resume-1/1, which replaces it in the summary and in `gradlab runs`."""
    data, other = tmp_path / "points.csv", tmp_path / "other.csv"
    other.write_text(POINTS)
    swept = gradlab(tmp_path, "logreg", "-m", *TINY, f"data.path={other},{data}", "tags=[study]")
    (sweep,) = (tmp_path / "outputs" / "logreg" / "multirun").glob("*/*")
    summary = lambda: list(csv.DictReader((sweep / "summary.csv").open()))  # noqa: E731
    assert swept.returncode == 2, swept.stderr  # 2: bad input (the missing file)
    assert [row["status"] for row in summary()] == ["ok", "failed"]
    before = {p: p.read_bytes() for p in sweep.glob("[01]/*") if p.is_file()}
    data.write_text(POINTS)
    resumed = gradlab(tmp_path, "resume", sweep)
    assert resumed.returncode == 0, resumed.stderr
    assert [(row["job"], row["attempt"], row["status"]) for row in summary()] == [
        ("0", "", "ok"), ("1", "resume-1", "ok")]
    assert not (sweep / "resume-1" / "0").exists()  # an ok job is not run again
    assert {p: p.read_bytes() for p in sweep.glob("[01]/*") if p.is_file()} == before  # earlier attempts kept
    again = gradlab(tmp_path, "resume", sweep)
    assert again.returncode == 0 and "nothing to resume" in again.stdout

    monkeypatch.chdir(tmp_path)
    sweep = sweep.relative_to(tmp_path)  # as found under the default ROOT, outputs/
    code, out = listed(capsys, "runs", "--json")
    rows = {row["path"]: row for row in json.loads(out)}
    assert code == 0 and sorted(rows) == [str(sweep / "0"), str(sweep / "resume-1" / "1")]
    assert all(row["status"] == "ok" and row["tags"] == ["study"] for row in rows.values())  # resume kept the tag

    code, out = listed(capsys, "runs", "--json", "--all")
    replaced = {row["path"]: row["replaced_by"] for row in json.loads(out) if row["replaced_by"]}
    assert replaced == {str(sweep / "1"): str(sweep / "resume-1" / "1")}

    monkeypatch.setenv("COLUMNS", "100")
    code, out = listed(capsys, "runs")
    lines = out.splitlines()
    assert lines[-1] == "(1 attempt replaced by a later `gradlab resume` not shown: --all)"
    assert len(lines) == 2 + 2 + 1 and max(map(len, lines)) <= 100
    code, out = listed(capsys, "runs", "--all", "--tag", "study")
    assert [line.split("  ")[0] for line in out.splitlines()[2:]] == ["ok", "failed (replaced)", "ok"]
    assert listed(capsys, "runs", "--tag", "other")[1] == "no runs under outputs match\n"


def test_a_rerun_never_follows_the_hydra_settings_in_a_record(tmp_path):
    """A record whose overrides.yaml names hydra.run.dir (and a job name leading out of outputs/): the rerun
    goes into DIR-rerun all the same, and reproduces the run."""
    run, outside = tmp_path / "run", tmp_path / "outside"
    first = cli_processes.run([sys.executable, str(REPO / "experiments" / "softmax_jacobian.py"),
                               f"hydra.run.dir={run}", "figures=false"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300, env=CLI_ENV)
    assert first.returncode == 0, first.stderr
    saved = run / ".hydra" / "overrides.yaml"
    planted = [f"hydra.run.dir={outside}", "hydra.job.name=../../x", "figures=false"]
    saved.write_text(yaml.safe_dump(planted))
    again = gradlab(tmp_path, "rerun", run)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"not passed on (Hydra's own settings, where the original ran): {' '.join(planted[:2])}" in again.stdout
    assert "reproduced: every metric identical" in again.stdout and "config: identical" in again.stdout
    assert (tmp_path / "run-rerun" / "metrics.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run-rerun"]  # nothing outside, no x/


def test_a_sweep_job_leading_out_of_its_sweep_is_refused(tmp_path):
    swept = gradlab(tmp_path, "softmax_jacobian", "-m", "hydra.sweep.subdir=${hydra.job.override_dirname}",
                    "tags=[../../../x]")
    assert swept.returncode == 2 and "Traceback" not in swept.stderr
    assert swept.stderr.splitlines()[-1].startswith("gradlab: config error: hydra.sweep.subdir='tags=[../../../x]' "
                                                    "is not allowed: a directory inside the sweep's")
    assert list(tmp_path.rglob("metrics.json")) == []  # the job never ran


def test_the_main_jobs_tags_are_every_runs(main_job, capsys):
    """`make run tags=[...]`: the main job and each of its runs carry the tags, so `--tag` finds them all."""
    out, proc = main_job
    assert proc["returncode"] == 0, proc["stderr"][-3000:]
    code, listing = listed(capsys, "runs", out, "--json", "--tag", MAIN_JOB_TAGS[1])
    rows = json.loads(listing)
    assert code == 0 and {row["experiment"] for row in rows} == {"run_all", *(
        spec.experiment for spec in validated_config("run_all").runs if spec.id in MAIN_JOB_RUNS)}
    assert all(tuple(row["tags"]) == MAIN_JOB_TAGS for row in rows)
    assert len(rows) == 1 + len(MAIN_JOB_RUNS)
