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
    ("autodiff_scaling", "cores=0", "cores"),
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


# ------------------------------------------------------------------------------------------------------------
# Errors name the input that caused them (issue 23 item 5): a value that would make results non-finite is named
# as the key or data column it is, never as the metric it would have spoiled (`fit.distance_to_heatmap_min = inf`)
# nor as a learning rate to lower.

HUGE_CSV = "x,y\n-1,0\n1,1\n1e308,1\n-1e308,0\n"
SECRET = "root:$6$s3cr3t-hash$:19000:0:99999:7:::\n"  # what /etc/shadow's first line looks like

INPUT_CASES = [
    # the run computes in a forked child: what it prints is captured at the file descriptor (capfd)
    ("logreg", "train.init=[1e308,1e308]", "config error: train.init=[1e+308, 1e+308] is not allowed: a starting "
                                           "point"),
    ("logreg", "train.init=[1e300,0]", "config error: train.init=[1e+300, 0.0] is not allowed: a start where the "
                                       "loss's Hessian is positive definite"),
    ("logreg", "grid.phi0_range=[-1e308,1e308]", "config error: grid.phi0_range, grid.phi1_range="),
    ("logreg", "data.path={huge}", "is not allowed: data with |x| < 6.7e+153 (the Hessian sums x^2 over 4 points in "
                                   "float64): line 4, column x is beyond"),
    ("logreg", "data.mean0=-1e300 data.mean1=1e300", "config error: data.mean0, data.mean1, data.std=[-1e+300, "),
    ("logreg", "data.path={secret}", "a CSV whose first line (its header) names columns x and y (no column x and y; "
                                     "1 column)"),
    ("map_l2", "prior_sigma=[1e300]", "config error: prior_sigma=[1e+300] is not allowed: numbers sigma < "
                                      "4.74e+153 (float64"),
    ("map_l2", "prior_sigma=[1e20] precision=float32", "config error: prior_sigma=[1e+20] is not allowed: numbers "
                                                       "sigma < 6.52e+18 (float32"),
    ("map_l2", "sigma_sweep.range=[1.0,1e160]", "config error: sigma_sweep.range=[1.0, 1e+160] is not allowed: a "
                                                "range up to sigma < 4.74e+153"),
]


@pytest.mark.parametrize(("name", "overrides", "expected"), INPUT_CASES)
def test_an_input_that_would_give_non_finite_results_is_named(hydra_in_process, capfd, tmp_path, name, overrides,
                                                              expected):
    (tmp_path / "huge.csv").write_text(HUGE_CSV)
    (tmp_path / "secret.csv").write_text(SECRET + "1,0\n")
    overrides = overrides.format(huge=tmp_path / "huge.csv", secret=tmp_path / "secret.csv")
    run_dir = tmp_path / "run"
    code = cli.main([name, f"hydra.run.dir={run_dir}", "hydra/job_logging=none", "hydra/hydra_logging=none",
                     "grid.resolution=11" if name == "logreg" else "sigma_sweep.num=3", *overrides.split()])
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert expected in lines[0]
    assert "lower optimizer.lr" not in err and " = inf" not in err and "s3cr3t" not in err
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "failed" and "s3cr3t" not in json.dumps(record)


@pytest.mark.parametrize(("entry", "expected"), [
    ("{lam: 1.0e300, alpha: 1.0e-300, l2_coefficient: 1.0}",
     "config error: weight_decay[0]={'lam': 1e+300, 'alpha': 1e-300} is not allowed: inputs whose l2_coefficient is a "
     "finite float64 (these give inf)"),
    ("{lam: 1" + "0" * 400 + ", alpha: 0.1, l2_coefficient: 1.0}",
     "config error: answers.yaml:weight_decay[0].lam='<an integer of ~401 digits>' is not allowed: a number within "
     "float64's range"),
])
def test_answers_whose_inputs_overflow_name_the_entry(hydra_in_process, capfd, tmp_path, entry, expected):
    answers = tmp_path / "answers.yaml"
    answers.write_text(f"weight_decay:\n  - {entry}\n")
    run_dir = tmp_path / "run"
    code = cli.main(["check_answers", f"hydra.run.dir={run_dir}", "hydra/job_logging=none", "hydra/hydra_logging=none",
                     f"answers={answers}"])
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"gradlab: {expected}"), err
    assert "graded.0.computed" not in err


@pytest.mark.parametrize(("content", "shown"), [(b"x,y\n1,0\nhunter2,1\n", "line 3, column x: not a number"),
                                                (b"\xff\xfe secret", "is not UTF-8")])
def test_an_error_never_quotes_the_file_it_refused(tmp_path, content, shown):
    from gradlab.runner.config import ConfigError
    from gradlab.runner.data_io import load_xy_csv

    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_xy_csv(str(path), key="data.path", binary_labels=True)
    assert shown in str(err.value) or "UTF-8" in str(err.value)
    assert "hunter2" not in str(err.value) and "secret" not in str(err.value)


def test_a_run_dir_that_is_a_file_is_called_a_file(hydra_in_process, capfd, tmp_path):
    existing = tmp_path / "notes.txt"
    existing.write_text("mine\n")
    code = cli.main(["logreg", f"hydra.run.dir={existing}", "hydra/job_logging=none", "hydra/hydra_logging=none"])
    err = capfd.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is a file, not a folder" in err and "another run" not in err
    assert existing.read_text() == "mine\n"


def test_an_unquoted_non_ascii_run_dir_gets_a_hint_to_quote_it(hydra_in_process, capfd, tmp_path):
    run_dir = tmp_path / "résultats"
    code = cli.main(["logreg", f"hydra.run.dir={run_dir}", "hydra/job_logging=none", "hydra/hydra_logging=none"])
    err = capfd.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"must be quoted for Hydra: \"hydra.run.dir='{run_dir}'\"" in err


def test_an_integer_beyond_float64_is_a_config_error_naming_its_key():
    from conftest import config_error

    err = config_error("logreg", "optimizer.lr=1" + "0" * 400)  # once an OverflowError, exit 1
    assert err.key == "optimizer.lr" and "<an integer of ~401 digits>" in str(err)
    assert "larger ones overflow" in str(config_error("logreg", f"data.seed={10**40}"))  # int64's own message kept


@pytest.mark.parametrize(("text", "named"), [
    (SECRET + "daemon:*:19000:0:99999:7:::\n", "key 1 of this file is none of them"),  # answers=/etc/shadow
    ("weigth_decay:\n  - {lam: 0.01, alpha: 0.1, l2_coefficient: 0.05}\n", "answers.yaml:weigth_decay="),  # a typo
])
def test_an_answers_file_that_is_not_one_is_refused_without_quoting_it(text, named, tmp_path):
    from gradlab.experiments import answers
    from gradlab.runner.config import ConfigError

    with pytest.raises(ConfigError) as err:
        answers.parse(answers.load(text), "answers.yaml")
    assert named in str(err.value) and "s3cr3t" not in str(err.value) and "\n" not in str(err.value)
