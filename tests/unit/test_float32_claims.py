"""Every claim holds in float32 too (`precision=float32`, the usual precision on a GPU), judged on the mutation
tier's small configurations, one run per experiment (autodiff_scaling's time claims excepted, as there). logreg,
logreg_sweep and map_l2 each failed a claim in float32 until 2026-12-05: a tolerance written for float64 precision,
data drawn in float32 inside a trace."""

from __future__ import annotations

import pytest
from mutation.mutants import RUNS, judged_claims

from gradlab.verify.claims import CLAIMS
from gradlab.verify.report import evaluate

FLOAT32_RUNS = [run_id for run_id, run in RUNS.items() if run.claims is None and run_id != "autodiff_scaling"]


@pytest.mark.slow
@pytest.mark.parametrize("run_id", FLOAT32_RUNS)
def test_every_claim_holds_in_float32(run_experiment, run_id):
    run = RUNS[run_id]
    code, metrics, _ = run_experiment(run.experiment, "precision=float32", *run.overrides)
    assert code == 0, metrics.get("error")
    rows = [evaluate(claim, metrics) for claim in judged_claims(run_id, CLAIMS)]
    assert rows and all(row.verdict == "pass" for row in rows), [
        (row.claim.quantity, row.verdict, row.error, row.tolerance) for row in rows if row.verdict != "pass"]
