"""The pure parts of `gradlab search` (runner/search_space.py): the search config, the space, what Optuna draws."""

from __future__ import annotations

import math

import pytest
from conftest import compose_config

from gradlab.runner.config import ConfigError
from gradlab.runner.search_space import (
    Param,
    as_override,
    bounds,
    parse_param,
    parse_params,
    parse_search,
    split_arguments,
    suggest,
)

optuna = pytest.importorskip("optuna", reason="the `hpo` extra is not installed: pip install -e '.[hpo]'")

SPACE = [Param("optimizer.lr", 1e-3, 10.0, log=True), Param("optimizer.momentum", 0.0, 0.9, step=0.1),
         Param("train.steps", 10, 1000, log=True, integer=True), Param("optimizer.name", choices=("sgd", "adam"))]


def shipped_search(*overrides: str) -> dict:
    """configs/hpo/logreg_optuna.yaml composed as `gradlab search` composes it."""
    from hydra import compose, initialize_config_dir

    from gradlab.runner.run import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(compose("hpo/logreg_optuna", overrides=list(overrides)), resolve=True)


@pytest.mark.slow
def test_the_shipped_search_searches_keys_of_logreg_within_ranges_its_schema_accepts():
    from gradlab.runner.config import validate
    from gradlab.runner.run import experiment_module

    spec = parse_search(shipped_search())
    base = compose_config("logreg", *spec.overrides)
    params = parse_params(spec.params, base, "logreg")
    assert params and spec.storage.startswith("sqlite:///") and spec.storage.endswith(f"{spec.dir}/study.db")
    for param in params:
        for value in bounds(param):
            validate(compose_config("logreg", *spec.overrides, as_override(param.key, value)),
                     experiment_module("logreg").Config)


@pytest.mark.parametrize("override, key, allowed", [
    ("n_trials=0", "search.n_trials", ">= 1"),
    ("direction=down", "search.direction", "'minimize', 'maximize'"),
    ("seed=-1", "search.seed", "2**32"),
    ("storage=optuna.db", "search.storage", "database URL"),
    ("study_name=a/b", "search.study_name", "without '/'"),
])
def test_a_bad_search_key_is_one_line_naming_it(override, key, allowed):
    with pytest.raises(ConfigError) as err:
        parse_search(shipped_search(override))
    assert err.value.key == key and allowed in err.value.allowed and "\n" not in str(err.value)


@pytest.mark.parametrize("spec, key, allowed", [
    ({"low": 1.0, "high": 0.1}, "search.params.p", "low < high"),
    ({"low": 1.0, "high": 1.0}, "search.params.p", "low < high"),
    ({"low": 0.0, "high": 1.0, "log": True}, "search.params.p.low", "> 0 on a log scale"),
    ({"low": 0.0, "high": 1.0, "lowest": 0}, "search.params.p.lowest", "not a key of a parameter"),
    ({"low": 0.1, "high": 1.0, "log": True, "step": 0.1}, "search.params.p.step", "null on a log scale"),
    ({"low": 0.5, "high": 3, "integer": True}, "search.params.p", "integer bounds"),
    ({"low": 0, "high": 3, "integer": True, "step": 0.5}, "search.params.p.step", "an integer"),
    ({"low": "a", "high": 3}, "search.params.p.low", "a finite number"),
    ({"low": 0, "high": math.inf}, "search.params.p.high", "a finite number"),
    ({"low": 0, "high": 1, "log": "yes"}, "search.params.p.log", "true or false"),
    ({"choices": []}, "search.params.p.choices", "non-empty list"),
    ({"choices": [1, 2], "low": 0}, "search.params.p", "choices alone"),
    (0.1, "search.params.p", "{low: L, high: H}"),
])
def test_a_bad_parameter_is_refused_naming_its_key_and_what_is_allowed(spec, key, allowed):
    with pytest.raises(ConfigError) as err:
        parse_param("p", spec)
    assert err.value.key == key and allowed in err.value.allowed and "\n" not in str(err.value)


def test_a_parameter_that_is_not_a_key_of_the_experiment_is_refused():
    base = compose_config("logreg")
    with pytest.raises(ConfigError) as err:
        parse_params({"optimizer.lrr": {"low": 0.1, "high": 1.0}}, base, "logreg")
    assert str(err.value) == ("config error: search.params='optimizer.lrr' is not allowed: "
                              "a key of configs/logreg.yaml")
    assert parse_params({"optimizer.lr": {"low": 0.1, "high": 1}}, base, "logreg") == [
        Param("optimizer.lr", 0.1, 1.0)]


def draws(seed: int, n: int = 12) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    trials = []
    for number in range(n):
        trial = study.ask()
        trials.append({p.key: suggest(trial, p) for p in SPACE})
        study.tell(trial, float(number % 5))  # a history, so TPE proposes from it after its start-up trials
        trials[-1]["distributions"] = study.trials[-1].distributions
    return trials


def test_suggest_draws_within_each_range_on_its_scale_and_grid_and_records_the_distribution():
    for values in draws(seed=3):
        assert 1e-3 <= values["optimizer.lr"] <= 10.0 and isinstance(values["optimizer.lr"], float)
        assert values["optimizer.momentum"] == pytest.approx(round(values["optimizer.momentum"], 1), abs=1e-12)
        assert 10 <= values["train.steps"] <= 1000 and isinstance(values["train.steps"], int)
        assert values["optimizer.name"] in ("sgd", "adam")
        assert values["distributions"] == {
            "optimizer.lr": optuna.distributions.FloatDistribution(1e-3, 10.0, log=True),
            "optimizer.momentum": optuna.distributions.FloatDistribution(0.0, 0.9, step=0.1),
            "train.steps": optuna.distributions.IntDistribution(10, 1000, log=True),
            "optimizer.name": optuna.distributions.CategoricalDistribution(["sgd", "adam"])}


@pytest.mark.slow
def test_the_same_seed_draws_the_same_trials_in_the_same_order_and_another_seed_others():
    first, again, other = draws(seed=7), draws(seed=7), draws(seed=8)
    assert first == again and first != other
    lrs = [math.log10(v["optimizer.lr"]) for v in draws(seed=1, n=40)]  # log scale: every decade is drawn
    assert {math.floor(x) for x in lrs} == {-3, -2, -1, 0}


@pytest.mark.parametrize("value", [0.1 + 0.2, 1e-05, 12345.678e100, 3, -2, True, None, "adam", "a b's, [c]"])
def test_an_override_parses_back_to_the_exact_value(value):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    (parsed,) = OverridesParser.create().parse_overrides([as_override("k", value)])
    assert parsed.key_or_group == "k" and parsed.value() == value and type(parsed.value()) is type(value)


def test_arguments_split_into_the_search_config_its_keys_and_the_experiments_overrides():
    assert split_arguments("logreg", ["train.steps=5", "search.n_trials=3", "search=other", "+x=1"]) == (
        "other", ["n_trials=3"], ["train.steps=5", "+x=1"])
    assert split_arguments("logreg", [])[0] == "logreg_optuna"
