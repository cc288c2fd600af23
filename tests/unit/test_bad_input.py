"""Bad input through each experiment's real Hydra app (in this process): one line naming the key, exit code 2,
and a failed record. The same path as `python experiments/<name>.py <override>`, without a process start per case
(tests/e2e covers the process itself: test_logreg.py, test_run_contract.py)."""

from __future__ import annotations

import json

import pytest

from gradlab import cli

CASES = [
    ("autodiff_modes", "plot_points=1", "plot_points"),
    ("autodiff_scaling", "linear.P=[100,10]", "linear.P"),
    ("autodiff_scaling", "timing.repeats=3", "timing.repeats"),
    ("linreg_hessian", "data.x=[0,1,2] data.y=[0,1]", "data.y="),
    ("weight_decay", "lam=1.5", "lam"),
    ("logreg_sweep", "momenta=[0.5,1.0]", "momenta"),
    ("softmax_jacobian", "logits=[1.0]", "logits"),
    ("receptive_field", "layers.0.kernel=0", "layers[0].kernel"),
    ("receptive_field", "layers=[abc]", "layers[0]"),
    ("softmax_jacobian", "logits={a:1}", "logits"),
    ("map_l2", "prior_sigma=[0.0]", "prior_sigma"),
    ("logreg", "optimizer.lrr=0.1", "optimizer.lrr"),
    ("run_all", "only=[]", "only"),
    ("run_all", "only=[logreg,nonsense]", "nonsense"),
]


@pytest.mark.parametrize(("name", "overrides", "key"), CASES)
def test_bad_input_is_one_line_naming_the_key_and_exit_2(hydra_in_process, capsys, tmp_path, name, overrides, key):
    run_dir = tmp_path / "run"
    # Hydra's logging set-up (logging.config.dictConfig) would close pytest's own log handlers: left out here
    quiet = ["hydra/job_logging=none", "hydra/hydra_logging=none"]
    code = cli.main([name, f"hydra.run.dir={run_dir}", *quiet, *overrides.split()])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("gradlab: config error: ") and key in lines[0] and "not allowed" in lines[0]
    record = run_dir / "metrics.json"
    if record.exists():  # a value error is recorded; a Hydra composition error happens before any run exists
        assert json.loads(record.read_text())["status"] == "failed"
