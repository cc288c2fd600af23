"""The main job on a reduced configuration: every run's directory, the report, one row per claim, the exit code."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO

from gradlab.verify.claims import CLAIMS

SUBSET = ["softmax_jacobian", "receptive_field_problem4", "linreg_hessian", "logreg"]
REDUCED = "overrides={logreg: ['grid.resolution=31', 'train.steps=300']}"


def _run_all(out_dir, *overrides):
    return subprocess.run(
        [sys.executable, str(REPO / "experiments" / "run_all.py"), f"hydra.run.dir={out_dir}", *overrides],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )


def test_run_all_reduced_end_to_end(tmp_path):
    out = tmp_path / "all"
    proc = _run_all(out, f"only=[{','.join(SUBSET)}]", REDUCED)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "ok"
    assert all(json.loads((out / run / "metrics.json").read_text())["status"] == "ok" for run in SUBSET)
    expected_claims = [c for c in CLAIMS if c.experiment in SUBSET]
    assert metrics["claims"] == {"claims": len(expected_claims), "passed": len(expected_claims), "failed": 0}
    report = (out / "report.md").read_text()
    table = [line for line in report.splitlines() if line.startswith("| ") and not line.startswith("| problem")]
    assert len(table) == len(expected_claims) and all(line.endswith("| pass |") for line in table)
    for claim in expected_claims:
        assert claim.quantity.replace("|", "\\|") in report
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 5 and "Environment" in page
    assert "jax" in report and "float64" in report


def test_one_failing_experiment_does_not_stop_the_rest(tmp_path):
    out = tmp_path / "fail"
    proc = _run_all(out, "only=[logreg,receptive_field_problem5]",
                    "overrides={logreg: ['optimizer.name=sgd', 'optimizer.lr=1e308', 'grid.resolution=11']}")
    assert proc.returncode == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "logreg" in metrics["error"]
    assert metrics["runs"]["logreg"]["status"] == "failed"
    assert metrics["runs"]["receptive_field_problem5"]["status"] == "ok"
    report = (out / "report.md").read_text()
    assert "### logreg: failed" in report and "at step" in report
    assert "| 5 | receptive field per layer: analytic vs measured | 7, 13, 19 | 7, 13, 19 |  | pass |" in report


def test_unknown_run_id_is_a_config_error(tmp_path):
    proc = _run_all(tmp_path / "bad", "only=[logreg,nonsense]")
    assert proc.returncode == 2 and "nonsense" in proc.stderr and "only" in proc.stderr
