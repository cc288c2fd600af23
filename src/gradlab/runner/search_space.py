"""A search's config (`configs/hpo/<name>.yaml`), checked, and the parameter space it gives Optuna.

    study_name: logreg_lr_momentum
    storage: sqlite:///${dir}/study.db       # null: in memory
    n_trials: 30                             # trials in the study in all, a resumed one included
    direction: minimize                      # of the run's `objective`
    seed: 12345                              # TPE sampler seed
    dir: outputs/logreg/search/${study_name} # trial n runs in <dir>/<n>
    overrides: [optimizer.name=momentum]     # experiment overrides every trial runs with
    params:                                  # config key: {low, high[, log, step, integer]} or {choices: [...]}
      optimizer.lr: {low: 0.001, high: 10.0, log: true}

Pure: no Optuna here; `suggest` calls the trial it is given. Every bad value is a one-line `ConfigError`
naming the key (`search.<key>`), the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

from gradlab.runner.config import ConfigError, at_least, checked, one_of, seed, validate
from gradlab.runner.dirs import stays_inside

RANGE_KEYS = ("low", "high", "log", "step", "integer")
SPEC_HELP = "{low: L, high: H} with L < H (optional log: true, step: S, integer: true), or {choices: [...]}"


@dataclasses.dataclass
class SearchConfig:
    """The schema of configs/hpo/<name>.yaml (the values are in the YAML)."""

    study_name: str = checked(stays_inside, "a non-empty name without '/', not '.' or '..' (a folder of dir)")
    storage: str | None = checked(lambda s: s is None or "://" in s,
                                  "null (in memory) or a database URL, e.g. sqlite:///outputs/study.db")
    n_trials: int = at_least(1)
    direction: str = one_of("minimize", "maximize")
    seed: int = seed()
    dir: str = checked(bool, "a directory for the trials' runs")
    overrides: list[str]
    params: dict[str, Any] = checked(bool, f"at least one parameter, key: {SPEC_HELP}")


@dataclasses.dataclass(frozen=True)
class Param:
    """One searched config key: a float or integer range (log scale, step), or a list of choices."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    integer: bool = False
    choices: tuple | None = None


def parse_search(raw: DictConfig | dict) -> SearchConfig:
    """The checked search config; ConfigError names the key as `search.<key>`."""
    try:
        return validate(raw, SearchConfig)
    except ConfigError as err:
        raise ConfigError(f"search.{err.key}", err.value, err.allowed) from None


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def parse_param(key: str, spec: Any) -> Param:
    """A Param from `key: spec` of the config's `params` (a mapping, see SPEC_HELP)."""
    where = f"search.params.{key}"
    if not isinstance(spec, dict):
        raise ConfigError(where, spec, SPEC_HELP)
    if "choices" in spec:
        choices = spec["choices"]
        if set(spec) != {"choices"}:
            raise ConfigError(where, spec, "choices alone, without " + ", ".join(sorted(set(spec) - {"choices"})))
        if not isinstance(choices, list) or not choices or not all(
                c is None or isinstance(c, bool | int | float | str) for c in choices):
            raise ConfigError(f"{where}.choices", choices, "a non-empty list of numbers, strings, booleans or null")
        return Param(key, choices=tuple(choices))
    unknown = sorted(set(spec) - set(RANGE_KEYS))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", spec[unknown[0]], f"not a key of a parameter: {SPEC_HELP}")
    low, high = spec.get("low"), spec.get("high")
    log, step, integer = spec.get("log", False), spec.get("step"), spec.get("integer", False)
    for name, value in (("low", low), ("high", high)):
        if not _number(value):
            raise ConfigError(f"{where}.{name}", value, "a finite number")
    for name, value in (("log", log), ("integer", integer)):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}.{name}", value, "true or false")
    if low >= high:
        raise ConfigError(where, spec, "a range with low < high")
    if integer and not (float(low).is_integer() and float(high).is_integer()):
        raise ConfigError(where, spec, "integer bounds for integer: true")
    if log and low <= 0:
        raise ConfigError(f"{where}.low", low, "a number > 0 on a log scale (log: true)")
    if step is not None and not (_number(step) and step > 0 and (not integer or float(step).is_integer())):
        raise ConfigError(f"{where}.step", step, "a number > 0 (an integer for integer: true), or null")
    if step is not None and log:
        raise ConfigError(f"{where}.step", step, "null on a log scale (Optuna draws log-uniformly without a step)")
    if integer:
        return Param(key, int(low), int(high), log, int(step) if step is not None else None, True)
    return Param(key, float(low), float(high), log, float(step) if step is not None else None)


def parse_params(params: dict[str, Any], experiment_cfg: DictConfig, experiment: str) -> list[Param]:
    """The searched parameters, each a key of the experiment's composed config."""
    parsed = []
    for key, spec in params.items():
        if OmegaConf.select(experiment_cfg, key, default="<absent>") == "<absent>" or key.startswith("hydra."):
            raise ConfigError("search.params", key, f"a key of configs/{experiment}.yaml")
        parsed.append(parse_param(key, spec))
    return parsed


def bounds(param: Param) -> list[Any]:
    """The values a parameter can take at the edges of its range (or every choice): checked against the
    experiment's schema before the search starts, so a range the experiment refuses fails at once."""
    return list(param.choices) if param.choices is not None else [param.low, param.high]


def suggest(trial: Any, param: Param) -> Any:
    """The trial's value of `param` (Optuna's `suggest_*`; the distribution is recorded in the study)."""
    if param.choices is not None:
        return trial.suggest_categorical(param.key, list(param.choices))
    if param.integer:
        return trial.suggest_int(param.key, param.low, param.high, step=param.step or 1, log=param.log)
    return trial.suggest_float(param.key, param.low, param.high, step=param.step, log=param.log)


def as_override(key: str, value: Any) -> str:
    """`key=value` for Hydra: floats in their shortest exact form (a rerun gets the same bits), text quoted."""
    if value is None or isinstance(value, bool):
        return f"{key}={str(value).lower() if value is not None else 'null'}"
    if isinstance(value, int | float):
        return f"{key}={value!r}"
    if re.fullmatch(r"[\w/.:+@-]+", value):
        return f"{key}={value}"
    return f"{key}='" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def split_arguments(experiment: str, arguments: list[str]) -> tuple[str, list[str], list[str]]:
    """(search config name, its overrides, the experiment's overrides) of `gradlab search` arguments:
    `search=NAME` picks configs/hpo/NAME.yaml (default <experiment>_optuna), `search.KEY=VALUE` sets its keys."""
    name, search_overrides, run_overrides = f"{experiment}_optuna", [], []
    for argument in arguments:
        if argument.startswith("search="):
            name = argument.split("=", 1)[1]
        elif argument.startswith("search."):
            search_overrides.append(argument[len("search."):])
        else:
            run_overrides.append(argument)
    return name, search_overrides, run_overrides
