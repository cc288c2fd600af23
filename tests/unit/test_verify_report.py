"""The verification report (verify/report.py, verify/claims.py): rows filled, absent inputs 'not measured', the page."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gradlab.verify.claims import CLAIMS
from gradlab.verify.report import Claim, build_report, evaluate, table_rows, targets_table

OWNED = {"softmax_jacobian", "map_l2", "weight_decay", "linreg_hessian", "logreg", "receptive_field_problem4",
         "receptive_field_problem5", "receptive_field_problem6"}
CLAIM = Claim("8", "logreg", "gradient vs autodiff", None, None, error="gradient.max_abs_err",
              tolerance_metric="gradient.tolerance", statistic="max abs error over the grid",
              tolerance_why="n eps sum|x|", independent=True, arrays="grid_errors.csv")


def test_a_passing_row_has_every_column_filled():
    row = evaluate(CLAIM, {"status": "ok", "gradient": {"max_abs_err": 1e-14, "tolerance": 3e-13}})
    assert row.verdict == "pass" and row.tolerance == 3e-13
    _, quantity, statistic, expected, computed, error, tolerance, verdict = table_rows([row])[1]
    assert all((quantity, statistic, expected, computed, error, tolerance, verdict))
    assert "grid_errors.csv" in statistic and "n eps sum|x|" in tolerance and "3e-13" in tolerance


def test_an_error_above_its_derived_tolerance_fails():
    assert evaluate(CLAIM, {"status": "ok", "gradient": {"max_abs_err": 4e-13, "tolerance": 3e-13}}).verdict == "FAIL"


@pytest.mark.parametrize(("metrics", "reason"), [
    (None, "the run did not happen"),
    ({"status": "failed"}, "the run ended failed"),
    ({"status": "ok", "gradient": {"max_abs_err": 1e-14}}, "no metric gradient.tolerance"),
    ({"status": "ok", "gradient": {"tolerance": 1.0}}, "no metric gradient.max_abs_err"),
])
def test_missing_inputs_are_not_measured_with_the_reason_never_pass(metrics, reason):
    row = evaluate(CLAIM, metrics)
    assert row.verdict == "not measured" and row.reason == reason
    assert table_rows([row])[1][-1] == f"not measured: {reason}"


def test_every_claim_of_these_experiments_says_its_statistic_and_derivation():
    mine = [c for c in CLAIMS if c.experiment in OWNED]
    assert len(mine) >= 44
    for claim in mine:
        assert claim.statistic and claim.tolerance_why and claim.independent is True, claim.quantity
        assert claim.tolerance is not None or claim.tolerance_metric or claim.expect or claim.equal, claim.quantity


def test_the_page_has_contents_links_full_width_figures_and_an_experiments_tables(tmp_path):
    run = tmp_path / "logreg"
    run.mkdir()
    metrics = {"status": "ok", "gradient": {"max_abs_err": 1e-14, "tolerance": 3e-13}, "plots": {}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "report_tables.md").write_text("| point | value |\n|---|---|\n| x = 0 | 1.5 |\n")
    rows, _ = build_report(tmp_path, ["logreg", "softmax_jacobian"], [CLAIM])
    page = (tmp_path / "report.html").read_text()
    assert "<nav><h2>Contents</h2>" in page and "href='#run-logreg'" in page and "id='run-logreg'" in page
    assert "<td>x = 0</td><td>1.5</td>" in page and "figure{display:block;width:100%" in page
    markdown = (tmp_path / "report.md").read_text()
    assert "| x = 0 | 1.5 |" in markdown and "### softmax_jacobian: not run" in markdown
    assert [r.verdict for r in rows] == ["pass"]


@pytest.mark.slow
def test_numpy_reference_matches_optax_on_a_few_steps():
    """The hand-written NumPy route of Problem 3 (regularization.numpy_reference_runs) against optax, 20 steps."""
    import jax
    import jax.numpy as jnp

    from gradlab.problems import regularization as reg
    from gradlab.problems.logistic import bce_gradient_numpy, bce_loss

    x, y = np.linspace(-2, 2, 8), np.array([0, 0, 1, 0, 1, 1, 0, 1.0])
    phi = jnp.array([-0.5, 1.0])
    runs = jax.jit(lambda p: reg.weight_decay_runs(lambda q: bce_loss(q, jnp.asarray(x), jnp.asarray(y)), p, 0.05,
                                                   0.01, 20, 0.9, 0.9, 0.999, 1e-8))(phi)
    refs, scale = reg.numpy_reference_runs(lambda p: bce_gradient_numpy(p, x, y), np.asarray(phi), 0.05, 0.01, 20,
                                           0.9, 0.9, 0.999, 1e-8)
    assert scale > 0
    for _, run, reference in reg.REFERENCE_COMPARISONS:
        np.testing.assert_allclose(np.asarray(runs[run]), refs[reference], rtol=0, atol=1e-13)
    assert np.max(np.abs(refs["adamw"] - refs["adam_l2"])) > 1e-4  # the decoupled decay shows


def test_a_target_met_only_within_the_timing_spread_says_so():
    rows = targets_table({"targets": {
        "within": {"value": 0.992, "target": 1.0, "met": True},
        "clear": {"value": 1.5, "target": 1.0, "met": True},
        "short": {"value": 0.5, "target": 1.0, "met": False, "why": "memory bound"}}})
    verdicts = {row[0]: row[3] for row in rows[1:]}
    assert verdicts["within"] == "met within noise (0.992 >= 1 within the spread)"
    assert verdicts == {**verdicts, "clear": "met", "short": "MISSED"}
