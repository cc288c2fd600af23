"""The `gradlab` command end to end: runs, compare and rerun (bit for bit) on a real tiny logreg sweep without
figures; replot (no JAX) on the main job's logreg run, whose figures the main job draws anyway."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cli_processes
import matplotlib.image
import numpy as np
import pytest
from conftest import CLI_ENV, REPO, once_per_session

from gradlab import cli

TINY = ["grid.resolution=11", "figures=False"]  # as the sweeper writes a job's overrides back
pytestmark = pytest.mark.slow


def gradlab_command() -> list[str]:
    """The installed console script, or the module where the package is not installed with its scripts."""
    script = Path(sys.executable).parent / "gradlab"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "gradlab.cli"]


@pytest.fixture(scope="session")
def sweep(tmp_path_factory, worker_id) -> Path:
    """`gradlab logreg -m train.steps=10,20 ...`: two tiny jobs through the console script, once per session."""
    def run_sweep(sweep_dir: Path) -> dict:
        proc = cli_processes.run([*gradlab_command(), "logreg", "-m", "train.steps=10,20", *TINY,
                                  f"hydra.sweep.dir={sweep_dir}"], cwd=REPO, capture_output=True, text=True,
                                 timeout=600, env=CLI_ENV)
        return {"returncode": proc.returncode, "stderr": proc.stderr[-2000:]}

    sweep_dir, ended = once_per_session("cli_sweep", tmp_path_factory, worker_id, run_sweep)
    assert ended["returncode"] == 0, ended["stderr"]
    assert (sweep_dir / "summary.csv").is_file()  # the same Hydra app as python experiments/logreg.py -m
    return sweep_dir


def gradlab(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_runs_and_compare_a_sweep(sweep, capsys):
    code, out, _ = gradlab(capsys, "runs", sweep, "--json", "--experiment", "logreg")
    rows = {Path(row["path"]).name: row for row in json.loads(out)}
    assert code == 0 and {"0", "1"} <= set(rows)
    for job, steps in (("0", 10), ("1", 20)):
        assert rows[job]["status"] == "ok" and rows[job]["overrides"] == [f"train.steps={steps}", *TINY]
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert rows[job]["metrics"] == {  # the sweep summary's metrics, from the job's .hydra/hydra.yaml
            "fit.loss": metrics["fit"]["loss"], "fit.grad_norm": metrics["fit"]["grad_norm"],
            "newton.iterations": metrics["newton"]["iterations"],
            "gradient.max_abs_err": metrics["gradient"]["max_abs_err"],
            "hessian.max_abs_err": metrics["hessian"]["max_abs_err"]}
    code, out, _ = gradlab(capsys, "runs", sweep, "--json", "--override", "train.steps=20")
    names = [Path(row["path"]).name for row in json.loads(out)]
    assert "1" in names and "0" not in names  # (and 1's rerun, if that test ran first)

    code, out, _ = gradlab(capsys, "compare", sweep / "0", sweep / "1")
    lines = out.splitlines()
    assert code == 0 and "config: 1 of" in out and "versions: identical" in out
    assert ["train.steps", "10", "20"] in [line.split() for line in lines]
    assert any(line.split()[0] == "fit.loss" for line in lines if line.startswith("  "))
    assert not any(line.split()[0] in ("grid.resolution", "newton.loss") for line in lines if line.startswith("  "))


def test_rerun_reproduces_bit_for_bit(sweep, capsys):
    (sweep / "1-rerun").mkdir()  # taken (by hand): the rerun goes next to it, never into it
    (sweep / "1-rerun" / "notes.txt").write_text("mine")
    code, out, _ = gradlab(capsys, "rerun", sweep / "1")
    assert code == 0, out
    new_dir = sweep / "1-rerun-1"
    old, new = (json.loads((d / "metrics.json").read_text()) for d in (sweep / "1", new_dir))
    assert new["status"] == "ok" and new["config"] == old["config"]
    results = ("data", "fit", "newton", "heatmap", "loss_stability", "gradient", "hessian", "convex")
    assert {k: new[k] for k in results} == {k: old[k] for k in results}
    assert (sweep / "1-rerun" / "notes.txt").read_text() == "mine"
    assert "metrics: all" in out and "identical bit for bit" in out and "versions: identical" in out
    assert out.splitlines()[-1] == "reproduced: every metric identical"


def test_replot_without_jax_gives_the_same_images(main_job, tmp_path):
    run_dir, redrawn_dir = main_job[0] / "logreg", tmp_path / "replot"
    script = ("import sys; from gradlab.cli import main; code = main(sys.argv[1:]); "
              "assert 'jax' not in sys.modules, sorted(m for m in sys.modules if m.startswith('jax'))[:5]; "
              "sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", script, "replot", str(run_dir), "--out", str(redrawn_dir)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env=CLI_ENV)
    assert proc.returncode == 0, proc.stderr
    plots = json.loads((run_dir / "metrics.json").read_text())["plots"]
    assert len(plots) == 5
    for name in plots:
        original, redrawn = (matplotlib.image.imread(d / name) for d in (run_dir, redrawn_dir))
        assert original.shape == redrawn.shape and np.array_equal(original, redrawn), name
        assert f"  {name}" in proc.stdout and "same pixels" in proc.stdout
    assert proc.stdout.splitlines()[-1].startswith("5 of 5 figures drawn in ")
