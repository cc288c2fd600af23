"""A real seed sweep through the CLI: summary_seeds.csv is the NumPy mean and spread of the jobs' metrics."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from conftest import CLI_ENV, REPO

from gradlab.runner.seeds import t_quantile_975

pytestmark = pytest.mark.slow


def test_a_2_seed_sweep_reports_the_numpy_mean_std_and_interval_per_learning_rate(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "logreg.py"), "-m", "data.seed=0,1", "optimizer.lr=0.05,0.1",
         "grid.resolution=11", "train.steps=20", "figures=false"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=CLI_ENV,
    )
    assert proc.returncode == 0, proc.stderr
    (sweep_dir,) = (tmp_path / "outputs" / "logreg" / "multirun").glob("*/*")
    assert f"mean and spread over seeds: {sweep_dir.relative_to(tmp_path) / 'summary_seeds.csv'}" in proc.stdout
    jobs = {}
    for job in sweep_dir.glob("[0-9]*"):
        overrides = dict(o.split("=", 1) for o in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()))
        jobs.setdefault(overrides["optimizer.lr"], []).append(json.loads((job / "metrics.json").read_text()))
    with open(sweep_dir / "summary_seeds.csv") as handle:
        rows = list(csv.DictReader(handle))
    metrics = ["fit.loss", "fit.grad_norm", "newton.iterations", "gradient.max_abs_err", "hessian.max_abs_err",
               "fit.gap_to_newton"]  # the experiment's summary metrics, then its objective
    assert [(r["optimizer.lr"], r["metric"]) for r in rows] == [(lr, m) for lr in ("0.05", "0.1") for m in metrics]
    for row in rows:
        section, name = row["metric"].split(".")
        x = np.array([record[section][name] for record in jobs[row["optimizer.lr"]]], dtype=float)
        assert (row["n"], row["failed"], row["missing"]) == ("2", "0", "0")
        assert float(row["mean"]) == pytest.approx(np.mean(x), rel=1e-12, abs=1e-300)
        assert float(row["std"]) == pytest.approx(np.std(x, ddof=1), rel=1e-12, abs=1e-300)
        assert (float(row["min"]), float(row["max"])) == (x.min(), x.max())
        half = t_quantile_975(1) * np.std(x, ddof=1) / np.sqrt(2)
        assert float(row["ci95_low"]) == pytest.approx(np.mean(x) - half, rel=1e-9, abs=1e-300)
    gap = {r["optimizer.lr"]: float(r["mean"]) for r in rows if r["metric"] == "fit.gap_to_newton"}
    assert gap["0.1"] < gap["0.05"]  # the larger step gets closer to Newton's optimum in 20 steps, on average
    assert (sweep_dir / "summary_seeds.png").stat().st_size > 0
