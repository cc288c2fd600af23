"""What `launch` says when a command ends in an error: bad input is a config error (exit 2), anything else says
what it is (exit 1: `gradlab: error: <Type>: <message>`), with the traceback under HYDRA_FULL_ERROR=1."""

from __future__ import annotations

import sys

import pytest

from gradlab.runner import run


def launch(monkeypatch, *argv: str) -> int:
    # Hydra's logging set-up (logging.config.dictConfig) would close pytest's own log handlers: left out here
    quiet = ["hydra/job_logging=none", "hydra/hydra_logging=none"]
    monkeypatch.setattr(sys, "argv", ["logreg", "hydra.run.dir=run", *quiet, *argv])
    with pytest.raises(SystemExit) as done:
        run.launch("logreg")
    return done.value.code


def broken_experiment(monkeypatch):
    def fail(name):
        raise RuntimeError(f"cannot import {name}\nsecond line")

    monkeypatch.setattr(run, "experiment_module", fail)


def test_an_unknown_key_is_a_config_error_exit_2(hydra_in_process, monkeypatch, capfd):
    assert launch(monkeypatch, "train.stepz=3") == 2
    err = capfd.readouterr().err
    assert err.strip().splitlines()[-1] == ("gradlab: config error: train.stepz='3' is not allowed: not a key of "
                                            "configs/logreg.yaml (to add a new key, write +train.stepz=3)")
    assert "Traceback" not in err


def test_an_error_that_is_not_about_the_config_says_what_it_is_in_one_line_exit_1(hydra_in_process, monkeypatch,
                                                                                  capfd):
    broken_experiment(monkeypatch)
    assert launch(monkeypatch) == 1
    err = capfd.readouterr().err
    assert "config error" not in err and "Traceback" not in err
    assert err.strip().splitlines()[-1] == ("gradlab: error: RuntimeError: cannot import logreg "
                                            "(HYDRA_FULL_ERROR=1 for the traceback)")


def test_hydra_full_error_adds_the_traceback(hydra_in_process, monkeypatch, capfd):
    broken_experiment(monkeypatch)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    assert launch(monkeypatch) == 1
    err = capfd.readouterr().err
    assert "Traceback (most recent call last)" in err and "in fail" in err
    assert err.strip().splitlines()[-1] == "gradlab: error: RuntimeError: cannot import logreg"


@pytest.mark.parametrize("error, config", [
    (run.ConfigError("a.b", 3, "a number > 5"), True), (KeyError("x"), False), (AssertionError(), False),
    (OSError(28, "No space left on device"), False)])
def test_only_bad_input_is_a_config_error(error, config, capfd):
    assert run.report_error(error, "logreg") == (2 if config else 1)
    (line,) = capfd.readouterr().err.splitlines()
    assert line.startswith("gradlab: config error: " if config else f"gradlab: error: {type(error).__name__}")


def test_hydra_and_omegaconf_errors_are_config_errors():
    from hydra.errors import ConfigCompositionException, MissingConfigException
    from omegaconf.errors import InterpolationResolutionError

    assert all(run.is_config_error(e) for e in (ConfigCompositionException("x"), MissingConfigException("x", "y"),
                                                 InterpolationResolutionError("x")))
    assert not run.is_config_error(ValueError("x"))
