"""`gradlab runs`, `compare`, the rerun verdict and every refusal, on hand-written run records (no JAX work)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gradlab import cli
from gradlab.runner import meta, reproduce, runs
from gradlab.runner.records import process_start_time

LOGREG_KEY_METRICS = ["fit.loss", "fit.grad_norm", "newton.iterations", "gradient.max_abs_err", "hessian.max_abs_err"]
VERSIONS = {"python": "3.11.7", "jax": "0.10.2", "jaxlib": "0.10.2", "numpy": "2.4.6", "platform": "Linux",
            "git_commit": "abc1234", "host": "elsewhere"}


def dead_pid() -> int:
    """The pid of a process that has finished (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=60)
    return child.pid


def write_run(directory: Path, *, status: str = "ok", experiment: str = "logreg", overrides: list[str] | None = None,
              config: dict | None = None, results: dict | None = None, meta: dict | None = None,
              key_metrics: list[str] | None = None, started_at: str = "2026-01-01T10:00:00+00:00",
              **extra) -> Path:
    """A run directory as the run layer leaves it: metrics.json and, when overrides are given, .hydra/."""
    directory.mkdir(parents=True, exist_ok=True)
    record = {"status": status, "experiment": experiment, **extra,
              "meta": {**VERSIONS, "started_at": started_at, "wall_time_s": 1.5, **(meta or {})},
              "config": config or {"optimizer": {"lr": 0.05}}, **(results or {"fit": {"loss": 0.25}})}
    (directory / "metrics.json").write_text(json.dumps(record))
    if overrides is not None:
        (directory / ".hydra").mkdir()
        (directory / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if key_metrics is not None:
        hydra = {"hydra": {"callbacks": {"sweep_summary": {"metrics": key_metrics}}, "runtime": {"cwd": "/nowhere"}}}
        (directory / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    return directory


@pytest.fixture
def three_runs(tmp_path):
    """An ok, a failed and a crashed logreg run, and one still running (this process), under tmp_path/outputs."""
    root = tmp_path / "outputs"
    write_run(root / "logreg/2026-01-01/10-00-00", overrides=["optimizer.lr=0.1"], config={"optimizer": {"lr": 0.1}},
              results={"fit": {"loss": 0.25, "grad_norm": 1e-9}}, key_metrics=["fit.loss", "fit.grad_norm"])
    write_run(root / "logreg/2026-01-01/11-00-00", status="failed", overrides=["optimizer.lr=10"],
              config={"optimizer": {"lr": 10.0}}, error="RunFailed: non-finite loss at step 3",
              started_at="2026-01-01T11:00:00+00:00")
    write_run(root / "logreg/multirun/2026-01-01/12-00-00/0", status="running", overrides=[],
              meta={"host": socket.gethostname(), "pid": dead_pid(), "pid_started": None},
              started_at="2026-01-01T12:00:00+00:00")
    write_run(root / "map_l2/2026-01-01/13-00-00", status="running", experiment="map_l2",
              meta={"host": socket.gethostname(), "pid": os.getpid(), "pid_started": process_start_time(os.getpid())},
              results={"mle": {"nll": 3.5, "phi": [1, 2]}, "map": {"nll": 4.0}, "sigma": 2.0, "ok": True},
              started_at="2026-01-01T13:00:00+00:00")
    return root


def gradlab(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def by_path(listing: list[dict], root: Path) -> dict[str, dict]:
    return {str(Path(row["path"]).relative_to(root)): row for row in listing}


def test_runs_lists_ok_failed_crashed_and_running(three_runs, capsys):
    code, out, _ = gradlab(capsys, "runs", three_runs, "--json")
    assert code == 0
    rows = by_path(json.loads(out), three_runs)
    assert {k: r["status"] for k, r in rows.items()} == {
        "logreg/2026-01-01/10-00-00": "ok",
        "logreg/2026-01-01/11-00-00": "failed",
        "logreg/multirun/2026-01-01/12-00-00/0": "crashed",  # says running; its process is gone
        "map_l2/2026-01-01/13-00-00": "running",  # says running; its process (this one) is alive
    }
    assert list(rows) == sorted(rows, key=lambda k: rows[k]["started_at"])  # oldest first
    ok, failed = rows["logreg/2026-01-01/10-00-00"], rows["logreg/2026-01-01/11-00-00"]
    assert ok["overrides"] == ["optimizer.lr=0.1"] and ok["wall_time_s"] == 1.5 and ok["git_commit"] == "abc1234"
    assert ok["metrics"] == {"fit.loss": 0.25, "fit.grad_norm": 1e-9}  # the run's own hydra.yaml names them
    assert failed["error"] == "RunFailed: non-finite loss at step 3"
    # without .hydra/hydra.yaml: the experiment's summary metrics from configs/logreg.yaml
    assert list(failed["metrics"]) == LOGREG_KEY_METRICS and failed["metrics"]["fit.loss"] == 0.25
    # an experiment that names no summary metrics: its first numbers
    assert rows["map_l2/2026-01-01/13-00-00"]["metrics"] == {"mle.nll": 3.5, "map.nll": 4.0, "sigma": 2.0}


def test_runs_table_and_csv(three_runs, capsys, monkeypatch):
    monkeypatch.chdir(three_runs.parent)
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = gradlab(capsys, "runs", "outputs")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["status", "wall", "overrides", "key", "metrics", "path"]
    assert max(map(len, lines)) <= 100  # a 100-column terminal, the metrics cut with "..."
    crashed = next(line for line in lines if "multirun" in line)
    assert crashed.split()[0] == "crashed" and crashed.split()[-1] == "outputs/logreg/multirun/2026-01-01/12-00-00/0"
    ok = next(line for line in lines if "10-00-00" in line)
    assert "optimizer.lr=0.1" in ok and "fit.loss=0.25" in ok and "1.5 s" in ok and "..." in ok

    code, out, _ = gradlab(capsys, "runs", "outputs", "--wide")  # every column, nothing cut
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:4] == ["experiment", "started", "status", "wall"]
    ok = next(line for line in lines if "10-00-00" in line)
    assert "fit.loss=0.25 fit.grad_norm=1e-09" in ok and "2026-01-01 10:00:00" in ok and "abc1234" in ok
    assert max(map(len, lines)) > 100

    code, out, _ = gradlab(capsys, "runs", "outputs", "--json")  # --json and --csv are never cut
    assert "fit.grad_norm" in json.loads(out)[0]["metrics"]

    code, out, _ = gradlab(capsys, "runs", "outputs", "--csv")
    table = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(table) == 4
    assert {"fit.loss", "fit.grad_norm", "mle.nll"} <= set(table[0]) and table[0]["fit.grad_norm"] == "1e-09"


@pytest.mark.parametrize(("filters", "expected"), [
    (["--status", "crashed"], ["logreg/multirun/2026-01-01/12-00-00/0"]),
    (["--status", "ok", "--status", "failed"], ["logreg/2026-01-01/10-00-00", "logreg/2026-01-01/11-00-00"]),
    (["--experiment", "map_l2"], ["map_l2/2026-01-01/13-00-00"]),
    (["--override", "optimizer.lr=0.1"], ["logreg/2026-01-01/10-00-00"]),
    (["--override", "optimizer.lr=1e1"], ["logreg/2026-01-01/11-00-00"]),  # values compared as numbers
    # not overridden, but the config it ran with has it
    (["--override", "optimizer.lr=0.05"], ["logreg/multirun/2026-01-01/12-00-00/0", "map_l2/2026-01-01/13-00-00"]),
    (["--experiment", "logreg", "--status", "running"], []),
])
def test_runs_filters(three_runs, capsys, filters, expected):
    code, out, _ = gradlab(capsys, "runs", three_runs, "--json", *filters)
    assert code == 0 and list(by_path(json.loads(out), three_runs)) == expected


def test_runs_refusals(tmp_path, capsys):
    code, out, _ = gradlab(capsys, "runs", tmp_path)
    assert code == 0 and out.strip() == f"no runs under {tmp_path}"
    code, _, err = gradlab(capsys, "runs", tmp_path / "missing")
    assert code == 2 and err == f"gradlab: error: {tmp_path / 'missing'}: no such directory\n"
    code, _, err = gradlab(capsys, "runs", tmp_path, "--override", "optimizer.lr")
    assert code == 2 and err.count("\n") == 1 and "key=value" in err


def test_compare_shows_only_what_differs(tmp_path, capsys):
    base = {"optimizer": {"lr": 0.05, "name": "adam"}, "train": {"steps": 100}}
    write_run(tmp_path / "a", overrides=[], config=base, results={"fit": {"loss": 0.25, "steps": 100}, "same": 1.0})
    write_run(tmp_path / "b", overrides=["optimizer.lr=0.1"], config={**base, "optimizer": {"lr": 0.1, "name": "adam"}},
              results={"fit": {"loss": 0.125, "steps": 100}, "same": 1.0, "extra": [1, 2]})
    # differs from a only in the 17th digit: shown in full, or the two cells would read alike
    write_run(tmp_path / "c", overrides=[], config=base, results={"fit": {"loss": 0.25000000000000006, "steps": 100},
                                                                   "same": 1.0}, meta={"jax": "0.10.3"})
    code, out, _ = gradlab(capsys, "compare", tmp_path / "a", tmp_path / "b", tmp_path / "c")
    assert code == 0
    sections = {line.split(":")[0]: line for line in out.splitlines() if not line.startswith(" ")}
    assert sections["config"] == "config: 1 of 3 keys differ"
    assert sections["metrics"] == "metrics: 2 of 4 keys differ"
    assert sections["versions"] == "versions: 1 of 7 keys differ"
    table = [line.split() for line in out.splitlines() if line.startswith("  ") and ":" not in line]
    cells = {row[0]: row[1:] for row in table}
    assert cells["optimizer.lr"] == ["0.05", "0.1", "0.05"]
    assert cells["fit.loss"] == ["0.25", "0.125", "0.25000000000000006"]
    assert cells["extra"] == ["(absent)", "[1,2]", "(absent)"]
    assert cells["jax"] == ["0.10.2", "0.10.2", "0.10.3"]
    assert not {"optimizer.name", "train.steps", "fit.steps", "same", "python"} & set(cells)
    assert "  b: logreg, ok, started 2026-01-01 10:00:00, overrides: optimizer.lr=0.1" in out.splitlines()


def test_compare_refusals(tmp_path, capsys):
    write_run(tmp_path / "a")
    (tmp_path / "empty").mkdir()
    code, _, err = gradlab(capsys, "compare", tmp_path / "a")
    assert code == 2 and err == f"gradlab: error: {tmp_path / 'a'}: compare needs two or more run directories\n"
    code, _, err = gradlab(capsys, "compare", tmp_path / "a", tmp_path / "empty")
    assert code == 2 and err == f"gradlab: error: {tmp_path / 'empty'}: no metrics.json (not a run directory)\n"


def record(results: dict, **meta) -> dict:
    return {"status": "ok", "experiment": "logreg", "meta": {**VERSIONS, "started_at": "x", "wall_time_s": 1.0, **meta},
            "config": {"optimizer": {"lr": 0.05}}, **results}


def test_rerun_says_whether_the_environment_is_the_locked_one(tmp_path):
    lock = tmp_path / "uv.lock"
    lock.write_text('version = 1\n[[package]]\nname = "numpy"\nversion = "0.0.1"\n'
                    '[[package]]\nname = "not-installed-anywhere"\nversion = "1.0"\n')
    status = meta.lock_status(lock)
    assert status["differs"] == {"numpy": f"installed {np.__version__}, locked 0.0.1"}  # absent packages not counted
    lines, _ = reproduce.rerun_report(record({}), record({}, lock=status))
    assert "environment: differs from uv.lock" in " ".join(lines) and "numpy installed" in " ".join(lines)
    as_locked = meta.lock_status()  # the checkout's own lock, as make setup installed it
    assert as_locked is not None and len(as_locked["sha256"]) == 12
    assert meta.lock_status(tmp_path / "absent.lock") is None


def test_rerun_verdict():
    old = record({"fit": {"loss": 0.1, "path": [1.0, 2.0]}, "bad": "NaN", "timing": {"seconds": 1.0}})
    same = record({"fit": {"loss": 0.1, "path": [1.0, 2.0]}, "bad": "NaN", "timing": {"seconds": 2.0}},
                  started_at="y", wall_time_s=2.0, pid=7)
    assert reproduce.compare_metrics(old, same, ignore=["timing.*"]) == (3, [], ["timing.seconds"])
    lines, reproduced = reproduce.rerun_report(old, same, ignore=["timing.*"])
    assert reproduced and "metrics: all 3 identical bit for bit" in lines
    assert "config: identical" in lines and lines[-1].startswith("versions: identical (python 3.11.7, jax 0.10.2")

    one_ulp = 0.1 + 2**-56  # the next float after 0.1
    moved = record({"fit": {"loss": one_ulp, "path": [1.0, 2.5]}, "bad": "NaN", "timing": {"seconds": 1.0}},
                   jax="0.10.3")
    identical, diffs, _ = reproduce.compare_metrics(old, moved)
    assert identical == 2 and [d.key for d in diffs] == ["fit.loss", "fit.path"]
    assert diffs[0].abs_diff == pytest.approx(2**-56) and diffs[0].rel_diff == pytest.approx(2**-56 / 0.1)
    assert (diffs[1].abs_diff, diffs[1].rel_diff) == (0.5, 0.25)
    lines, reproduced = reproduce.rerun_report(old, moved)
    assert not reproduced and "metrics: 2 of 4 differ (2 identical bit for bit):" in lines
    assert any(line.split()[:3] == ["jax", "0.10.2", "0.10.3"] for line in lines)

    failed = {**old, "status": "failed"}
    assert not reproduce.rerun_report(old, failed)[1]  # same numbers, but the rerun failed


def test_rerun_refusals(tmp_path, capsys):
    run = write_run(tmp_path / "run")  # no .hydra: its overrides are unknown
    code, _, err = gradlab(capsys, "rerun", run)
    assert code == 2 and err == (f"gradlab: error: {run / '.hydra' / 'overrides.yaml'}: missing: the run was not "
                                 "started by Hydra, so its overrides are unknown\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no rerun directory made

    odd = write_run(tmp_path / "odd", experiment="no_such_experiment", overrides=[])
    code, _, err = gradlab(capsys, "rerun", odd)
    assert code == 2 and "'no_such_experiment' is not a module of gradlab.experiments" in err

    rerunnable, taken = write_run(tmp_path / "ok", overrides=[]), write_run(tmp_path / "taken")
    code, _, err = gradlab(capsys, "rerun", rerunnable, "--out", taken)
    assert code == 2
    assert err == f"gradlab: error: {taken}: exists and is not empty; rerun never overwrites, pick a new --out\n"


def test_replot_refusals(tmp_path, capsys):
    code, _, err = gradlab(capsys, "replot", tmp_path)
    assert code == 2 and err == f"gradlab: error: {tmp_path}: no metrics.json (not a run directory)\n"

    run = write_run(tmp_path / "run", overrides=[])
    code, _, err = gradlab(capsys, "replot", run)
    assert code == 2
    assert err == f"gradlab: error: {run / 'plot_data.npz'}: missing: the run saved no arrays for its figures\n"

    np.savez_compressed(run / "plot_data.npz", x=np.arange(3.0))
    (run / "replot").mkdir()
    (run / "replot" / "mine.png").write_bytes(b"a figure the user restyled")
    code, _, err = gradlab(capsys, "replot", run, "--out", run / "replot")
    assert code == 2 and err == (f"gradlab: error: {run / 'replot'}: exists and is not empty; replot never "
                                 "overwrites, pick a new --out\n")
    code, _, err = gradlab(capsys, "replot", run, "--out", run)  # the run's own directory
    assert code == 2 and "exists and is not empty" in err

    other = write_run(tmp_path / "other", experiment="no_such_experiment")
    (other / "plot_data.npz").write_bytes(b"")
    code, _, err = gradlab(capsys, "replot", other)
    assert code == 2 and "'no_such_experiment' has no figures (no gradlab.figures.no_such_experiment)" in err
    assert not (other / "replot").exists()


@pytest.mark.parametrize("keep", [0, 0.05, 0.5, 0.99, "crc"])
def test_replot_refuses_a_damaged_plot_data_in_one_line(tmp_path, capsys, keep):
    """A plot_data.npz cut short (a full disk, a killed copy) or with a flipped byte: one line, exit 2, no replot/."""
    run = write_run(tmp_path / "run", experiment="softmax_jacobian", overrides=[])
    np.savez_compressed(run / "plot_data.npz", x=np.random.default_rng(0).normal(size=20_000))
    whole = (run / "plot_data.npz").read_bytes()
    damaged = (whole[:5000] + bytes(100) + whole[5100:]) if keep == "crc" else whole[:int(keep * len(whole))]
    (run / "plot_data.npz").write_bytes(damaged)
    code, out, err = gradlab(capsys, "replot", run)
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"gradlab: error: {run / 'plot_data.npz'}: damaged (")
    assert err.endswith("so its figures cannot be drawn; `gradlab rerun` computes them again\n")
    assert not (run / "replot").exists()


@pytest.mark.parametrize("command", ["rerun", "replot"])
def test_rerun_and_replot_refuse_a_record_that_is_json_but_not_a_record(tmp_path, capsys, command):
    run = write_run(tmp_path / "run", overrides=[])
    (run / "metrics.json").write_text("[1, 2]")
    (run / ".hydra" / "hydra.yaml").write_text("- a list, not Hydra's settings\n")
    code, _, err = gradlab(capsys, command, run)
    assert code == 2 and err == f"gradlab: error: {run}: metrics.json cannot be read\n"


def test_rerun_never_passes_hydra_settings_from_the_record(tmp_path):
    """A saved `hydra.run.dir=...` (or any hydra key) would put the rerun where the original ran, or anywhere."""
    saved = ["hydra.run.dir=/elsewhere", "optimizer.lr=0.1", "hydra/launcher=joblib", "+hydra.job.name=../x",
             "++hydra.verbose=true", "~hydra.job.env_set", "hydrant=1"]
    run = write_run(tmp_path / "run", overrides=saved)
    argv, _, left_out = reproduce.rerun_command(run, reproduce._record(run), tmp_path / "new")
    assert argv[3:] == [f"hydra.run.dir={(tmp_path / 'new').resolve()}", "optimizer.lr=0.1", "hydrant=1"]
    assert left_out == [o for o in saved if o not in ("optimizer.lr=0.1", "hydrant=1")]


@pytest.mark.parametrize(("content", "problem"), [
    (b"\xff\xfe\x00garbage", "not YAML (UnicodeDecodeError)"),
    (b"- optimizer.lr=0.1\n- [unclosed", "not YAML (ParserError)"),
    (b"", "empty"),
    (b"optimizer.lr: 0.1\n", "a dict, not a list of key=value strings"),
    (b"- 1\n- 2\n", "a list, not a list of key=value strings"),
])
def test_rerun_refuses_an_unreadable_overrides_file_in_one_line(tmp_path, capsys, content, problem):
    """It was read as "no overrides", and the rerun then blamed "a default in configs/ changed"."""
    run = write_run(tmp_path / "run", overrides=[])
    (run / ".hydra" / "overrides.yaml").write_bytes(content)
    code, out, err = gradlab(capsys, "rerun", run)
    assert code == 2 and out == ""
    assert err == (f"gradlab: error: {run / '.hydra' / 'overrides.yaml'}: cannot be read ({problem}), so the run's "
                   "overrides are unknown\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no rerun directory made


def test_runs_lists_an_unreadable_record_as_unreadable(tmp_path, capsys):
    """A truncated metrics.json (metrics.json is replaced atomically, so it is damaged, not half-written)."""
    good = write_run(tmp_path / "logreg/2026-01-01/10-00-00", overrides=["optimizer.lr=0.1"])
    cut = write_run(tmp_path / "logreg/2026-01-01/11-00-00", overrides=["optimizer.lr=0.2", "tags=[a]"])
    (cut / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"config_name": "logreg"}}}))
    (cut / "metrics.json").write_text((cut / "metrics.json").read_text()[:40])
    damaged = write_run(tmp_path / "logreg/2026-01-01/12-00-00", overrides=[], key_metrics=["fit.loss"])
    for name in ("metrics.json", ".hydra/overrides.yaml", ".hydra/hydra.yaml"):  # not even text
        (damaged / name).write_bytes(b"\xff\xfe\x00")
    listed = write_run(tmp_path / "list")
    (listed / "metrics.json").write_text("[1, 2]")  # JSON, but not a record
    code, out, _ = gradlab(capsys, "runs", tmp_path, "--json")
    rows = by_path(json.loads(out), tmp_path)
    assert code == 0 and {k: r["status"] for k, r in rows.items()} == {
        "logreg/2026-01-01/10-00-00": "ok", "logreg/2026-01-01/11-00-00": "unreadable", "list": "unreadable",
        "logreg/2026-01-01/12-00-00": "unreadable"}
    not_text = rows["logreg/2026-01-01/12-00-00"]
    assert (not_text["experiment"], not_text["overrides"]) == ("?", [])
    unreadable = rows["logreg/2026-01-01/11-00-00"]
    assert unreadable["experiment"] == "logreg" and unreadable["overrides"] == ["optimizer.lr=0.2", "tags=[a]"]
    assert unreadable["error"] == "metrics.json cannot be read (damaged or cut short)" and unreadable["tags"] == ["a"]
    assert unreadable["started_at"] is not None and rows["list"]["started_at"] is None  # .hydra's time, if any
    code, out, _ = gradlab(capsys, "runs", tmp_path, "--status", "unreadable")
    assert code == 0 and [line.split()[0] for line in out.splitlines()[2:]] == ["unreadable"] * 3
    code, _, err = gradlab(capsys, "compare", good, cut)
    assert code == 2 and err == f"gradlab: error: {cut}: metrics.json cannot be read\n"


def resumed_sweep(root: Path) -> Path:
    """A sweep of 3 jobs as `gradlab resume` leaves it: job 1 failed, failed again in resume-1, ok in resume-2;
    job 2 crashed, ok in resume-1. Job 0 was ok from the start."""
    sweep = root / "logreg/multirun/2026-01-01/12-00-00"
    write_run(sweep / "0", overrides=["optimizer.lr=0.1"])
    write_run(sweep / "1", status="failed", overrides=["optimizer.lr=10"], error="RunFailed: non-finite loss")
    write_run(sweep / "2", status="crashed", overrides=["optimizer.lr=1"], started_at="2026-01-01T12:00:01+00:00")
    write_run(sweep / "resume-1/1", status="failed", overrides=["optimizer.lr=10"], started_at="2026-01-02T00:00:00")
    write_run(sweep / "resume-1/2", overrides=["optimizer.lr=1"], started_at="2026-01-02T00:00:01")
    write_run(sweep / "resume-2/1", overrides=["optimizer.lr=10"], started_at="2026-01-03T00:00:00")
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"config_name": "logreg"}}}))
    write_run(root / "search/0")  # a search trial: a digit name, no multirun.yaml, so never replaced
    return sweep


def test_runs_hides_the_attempts_a_resume_replaced(tmp_path, capsys, monkeypatch):
    sweep = resumed_sweep(tmp_path)
    code, out, _ = gradlab(capsys, "runs", tmp_path, "--json")
    assert code == 0 and sorted(by_path(json.loads(out), tmp_path)) == [
        *(f"logreg/multirun/2026-01-01/12-00-00/{job}" for job in ("0", "resume-1/2", "resume-2/1")), "search/0"]
    code, out, _ = gradlab(capsys, "runs", tmp_path, "--json", "--all")
    rows = by_path(json.loads(out), tmp_path)
    replaced = {path: row["replaced_by"] for path, row in rows.items() if row["replaced_by"]}
    base = "logreg/multirun/2026-01-01/12-00-00"
    assert replaced == {f"{base}/1": str(sweep / "resume-2/1"), f"{base}/resume-1/1": str(sweep / "resume-2/1"),
                        f"{base}/2": str(sweep / "resume-1/2")}
    assert len(rows) == 7

    monkeypatch.chdir(tmp_path)
    code, out, _ = gradlab(capsys, "runs", ".")
    assert code == 0 and out.splitlines()[-1] == "(3 attempts replaced by a later `gradlab resume` not shown: --all)"
    assert len(out.splitlines()) == 2 + 4 + 1 and "replaced)" not in out
    code, out, _ = gradlab(capsys, "runs", ".", "--all", "--status", "failed")
    statuses = {line.split()[-1]: line.split("  ")[0] for line in out.splitlines()[2:]}
    assert statuses == {f"{base}/1": "failed (replaced)", f"{base}/resume-1/1": "failed (replaced)"}
    code, out, _ = gradlab(capsys, "runs", ".", "--status", "failed")  # every failed attempt was replaced
    assert out.splitlines() == ["no runs under . match",
                                "(2 attempts replaced by a later `gradlab resume` not shown: --all)"]


def test_tags_are_a_list_of_words_empty_by_default():
    from conftest import compose_config
    from omegaconf import OmegaConf

    from gradlab.runner.config import ConfigError, validate
    from gradlab.runner.run import BaseConfig

    raw = {k: v for k, v in OmegaConf.to_container(compose_config("softmax_jacobian")).items()
           if k in {f.name for f in dataclasses.fields(BaseConfig)}}
    assert raw["tags"] == [] and validate({**raw, "tags": ["a", "b c"]}, BaseConfig).tags == ["a", "b c"]
    for bad in (["a", ""], ["x,y"], ["  "], ["two\nlines"]):
        with pytest.raises(ConfigError) as err:
            validate({**raw, "tags": bad}, BaseConfig)
        assert str(err.value) == (f"config error: tags={bad!r} is not allowed: a list of words to find the run by "
                                  "(`gradlab runs --tag`): not empty, no ',' or newline")


def test_tags_are_saved_and_filtered(tmp_path, capsys):
    write_run(tmp_path / "a", config={"optimizer": {"lr": 0.1}, "tags": ["baseline"]}, overrides=["tags=[baseline]"])
    write_run(tmp_path / "b", config={"optimizer": {"lr": 0.2}, "tags": ["study", "baseline"]}, overrides=[])
    write_run(tmp_path / "c", config={"optimizer": {"lr": 0.3}, "tags": []}, overrides=[])
    write_run(tmp_path / "d", status="failed", config={}, overrides=["tags=[study]"])  # refused: tags from overrides
    (tmp_path / "d" / "metrics.json").write_text(json.dumps({"status": "failed", "experiment": "logreg"}))

    def tagged(*tags):
        code, out, _ = gradlab(capsys, "runs", tmp_path, "--json", *(f"--tag={t}" for t in tags))
        assert code == 0
        return sorted(by_path(json.loads(out), tmp_path))

    assert tagged("baseline") == ["a", "b"] and tagged("study") == ["b", "d"]
    assert tagged("baseline", "study") == ["a", "b", "d"]  # repeated: any of them, as --status
    assert tagged("nope") == []
    code, out, _ = gradlab(capsys, "runs", tmp_path, "--csv")
    assert [row["tags"] for row in csv.DictReader(io.StringIO(out))] == ["study", "baseline", "study,baseline", ""]
    code, out, _ = gradlab(capsys, "runs", tmp_path, "--wide")
    assert out.splitlines()[0].split()[7] == "tags" and "study,baseline" in out


def test_help_lists_commands_and_experiments(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    for command in ("runs", "compare", "rerun", "replot", "run-all", "logreg ", "softmax_jacobian"):
        assert f"\n  {command}" in out or f"\n    {command}" in out, command
    assert "schemas" not in out  # a module of gradlab.experiments without a configs/<name>.yaml
    assert cli.main([]) == 2


def test_unknown_command(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["no_such_command"])
    assert done.value.code == 2 and "invalid choice: 'no_such_command'" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "printed"), [
    (["logreg", "--cfg", "job", "optimizer.lr=0.3"], "  lr: 0.3"),
    (["run-all", "--cfg", "job", "timeout_s=5"], "timeout_s: 5"),
])
def test_experiment_commands_are_the_hydra_apps(hydra_in_process, capsys, argv, printed):
    code, out, _ = gradlab(capsys, *argv)
    assert code == 0 and printed in out.splitlines()
    assert sys.argv[0] != "gradlab logreg"  # restored


def test_experiment_command_errors_are_hydra_errors(hydra_in_process, capsys):
    code, _, err = gradlab(capsys, "logreg", "--cfg", "job", "optimizer.nope=1")
    assert code == 2 and err.startswith("gradlab: config error: optimizer.nope=") and err.count("\n") == 1


def test_runs_module_helpers():
    assert runs.override_map(["+a.b=1", "~c", "d=[1, 2]", "e='x,y'", "f=1e1"]) == {
        "a.b": 1, "c": None, "d": [1, 2], "e": "x,y", "f": 10.0}
    assert runs.flatten({"a": {"b": 1, "c": {}}, "d": [1]}) == {"a.b": 1, "a.c": {}, "d": [1]}
    assert runs.max_differences([1.0, "NaN"], [1.0, "NaN"]) == (0.0, 0.0)
    assert runs.max_differences(0.0, 1e-300) == (1e-300, float("inf"))
    assert runs.max_differences([1.0], [1.0, 2.0]) is None and runs.max_differences("a", "b") is None


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=10), max_size=4))
def test_a_quoted_override_reads_back_exactly(texts):
    """hydra_quoted / tags_override: what the main job passes its runs, and rerun its new directory, read back by
    Hydra's own override parser as written (quotes, backslashes before quotes, brackets, commas, '=')."""
    assert runs.parse_override(runs.tags_override(texts)) == ("tags", texts)
    for text in texts:
        assert runs.parse_override("hydra.run.dir=" + runs.hydra_quoted(text)) == ("hydra.run.dir", text)
