"""The main job as a user starts it (`python experiments/run_all.py`), once for the whole session, on small
configs: its report, and every run in it equal, number for number, to the same experiment run in-process.
(autodiff_scaling is not in it: its time claims need the sizes of its own config, see its e2e test.)

One main job stands in for a CLI start per experiment: each run in it is the experiment's real command line
(`launch(<name>)` in its own process), and the xdist workers share it (the first one to ask runs it).
"""

from __future__ import annotations

import json

import pytest
from conftest import MAIN_JOB_RUNS as RUNS
from conftest import validated_config

from gradlab.runner.records import lookup
from gradlab.verify.claims import CLAIMS

NOT_RESULTS = ("meta", "config", "plots", "status", "warnings")


def test_the_main_job_ends_ok_and_its_report_judges_every_claim(main_job):
    out, proc = main_job
    assert proc["returncode"] == 0, proc["stderr"][-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "ok"
    expected_claims = [c for c in CLAIMS if c.experiment in RUNS]
    report = (out / "report.md").read_text()
    judged = [line for line in report.splitlines() if line.startswith("| ")]
    for claim in expected_claims:
        quantity = claim.quantity.replace("|", "\\|")
        (line,) = [line for line in judged if f"| {quantity} |" in line]
        assert line.rstrip().endswith("| pass |"), line
    report = (out / "report.md").read_text()
    for claim in expected_claims:
        assert claim.quantity.replace("|", "\\|") in report
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= len(RUNS) and "Environment" in page
    assert "jax" in report and "float64" in report
    assert "## Run times" in report and "| logreg | ok |" in report


@pytest.mark.parametrize("run_id", list(RUNS))
def test_each_run_equals_the_same_experiment_run_in_process(main_job, run_experiment, run_id):
    out, _ = main_job
    overrides, compared = RUNS[run_id]
    from_cli = json.loads((out / run_id / "metrics.json").read_text())
    assert from_cli["status"] == "ok", from_cli.get("error")
    assert from_cli["meta"]["x64_enabled"] == (from_cli["config"]["precision"] == "float64")
    assert from_cli["plots"] and all((out / run_id / name).stat().st_size > 0 for name in from_cli["plots"])
    (spec,) = [spec for spec in validated_config("run_all").runs if spec.id == run_id]  # as the main job ran it
    code, in_process, _ = run_experiment(spec.experiment, *(spec.overrides or ()), *overrides)
    assert code == 0, in_process.get("error")
    if compared is None:
        results = {key: value for key, value in from_cli.items() if key not in NOT_RESULTS}
        assert results and results == {key: value for key, value in in_process.items() if key not in NOT_RESULTS}
    else:
        for path in compared:
            assert lookup(from_cli, path) is not None and lookup(from_cli, path) == lookup(in_process, path), path


def test_the_benchmark_times_in_float32_checks_in_float64_and_records_what_it_skipped(main_job):
    bench = json.loads((main_job[0] / "bench_logreg" / "metrics.json").read_text())
    assert bench["timing_dtype"] == "float32" and bench["sharding"] is None
    assert set(bench["skipped"]) == {"torch_loop", "sklearn_lbfgs"}
    assert "optional.sklearn=false" in bench["targets"]["large_newton_vs_sklearn"]["reason"]
    assert bench["targets"]["large_newton_vs_sklearn"]["met"] is None
    for size in ("small", "large"):
        assert bench["sizes"][size]["agreement"]["gd_max_rel_diff"] < 1e-12  # the check ran in float64
