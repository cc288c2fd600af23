"""Every default is written once, in configs/<name>.yaml: the schemas hold types and ranges, no values."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from conftest import (
    REPO,
    changes_a_key,
    compose_config,
    composed_once,
    experiment_module,
    hydra_compose,
    override_parser,
    validated_config,
)
from omegaconf import OmegaConf

from gradlab.runner.config import ConfigError

EXPERIMENTS = sorted(p.stem for p in (REPO / "experiments").glob("*.py"))


def _nested_schema(hint) -> tuple[type | None, bool]:
    """(dataclass, is a list item) for a field type `D`, `list[D]`, `D | None` or `list[D] | None`."""
    for candidate in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(candidate):
            return candidate, False
        if typing.get_origin(candidate) is list:
            (item,) = typing.get_args(candidate) or (None,)
            if dataclasses.is_dataclass(item):
                return item, True
    return None, False


def _walk(schema: type, raw, where: str, in_list: bool):
    """Yield (key, problem) for each default written in the schema that the YAML also writes (or must write)."""
    hints = typing.get_type_hints(schema)
    for field in dataclasses.fields(schema):
        key = f"{where}{field.name}"
        has_default = field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
        value = raw.get(field.name) if raw is not None else None
        if has_default and not in_list:
            yield key, "has a default in the schema; its value belongs in the YAML only"
        elif has_default and raw is not None and field.name in raw:
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
            if value == default:
                yield key, f"the YAML repeats the schema's default {default!r}"
        nested, is_list = _nested_schema(hints[field.name])
        if nested is not None and value is not None:
            for index, item in enumerate(value if is_list else [value]):
                yield from _walk(nested, item, f"{key}[{index}]." if is_list else f"{key}.", in_list or is_list)


def test_every_experiment_has_a_config_and_an_importable_module():
    from gradlab.cli import experiments  # what `gradlab <name>` accepts: a module with a config

    assert set(experiments()) == set(EXPERIMENTS)  # every entry point is an experiment, and every one has one
    for name in EXPERIMENTS:
        assert (REPO / "configs" / f"{name}.yaml").is_file(), name
        assert dataclasses.is_dataclass(experiment_module(name).Config), name


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_no_default_value_is_written_twice(name):
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(compose_config(name), resolve=True)
    problems = list(_walk(experiment_module(name).Config, raw, "", in_list=False))
    assert not problems, problems
    validated_config(name)  # the YAML alone is a complete, valid config


def test_a_key_missing_from_the_yaml_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match=r"^config error: optimizer\.lr='<missing>' is not allowed: a value is "):
        validated_config("logreg", "~optimizer.lr")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_entry_points_only_launch(name):
    source = (REPO / "experiments" / f"{name}.py").read_text()
    code = [line for line in source.splitlines() if line.strip() and not line.startswith(('"""', "The ", "#"))]
    assert "def " not in source and "class " not in source
    assert code[-1].strip() == f'launch("{name}")' and len(source.splitlines()) <= 12


# overrides of every kind of value the tests change: numbers, null, booleans, strings with a comma, a quote or an
# interpolation, lists replaced, a list of lists, a mapping merged into a mapping
CHANGES = [
    ("logreg", ("figures=false", "grid.resolution=11", "optimizer.lr=1e-3", "data.path=null")),
    ("logreg", ("train.init=[1e300,0]", "tags=[a,\"b, c\",\"it's 2\"]", "newton.max_iter=${train.steps}")),
    ("autodiff_scaling", ("families=[linear]", "linear.P=[10,100]", "timing.min_window_s=0.001", "backend=cpu",
                          "presets.gpu.linear.P=[100,1000]", "memory.depths=[]")),
    ("bench_logreg", ("sizes.large={n_per_class: 500}", "limits.dtypes=[float32]", "optional.torch=false")),
    ("softmax_jacobian", ("logits=[1.0,2.0]",)),
    ("check_answers", ("answers=configs/examples/answers_two_inputs.yaml", "rtol=1e-3")),
]


@pytest.mark.parametrize(("name", "overrides"), CHANGES)
def test_overrides_of_keys_are_applied_as_hydra_applies_them(name, overrides):
    """conftest's compose_config applies key changes to a config composed once: the same config as Hydra's compose
    with the overrides, before and after interpolation."""
    assert all(changes_a_key(o, composed_once(name)) for o in override_parser().parse_overrides(list(overrides)))
    ours, hydras = compose_config(name, *overrides), hydra_compose(name, *overrides)
    assert OmegaConf.to_container(ours) == OmegaConf.to_container(hydras)
    assert OmegaConf.to_container(ours, resolve=True) == OmegaConf.to_container(hydras, resolve=True)
    assert OmegaConf.is_struct(ours) == OmegaConf.is_struct(hydras)


@pytest.mark.parametrize("override", ["scale=full", "+extra=1", "~seed", "linear@x=1", "hydra.job.name=x",
                                      "linear.P=[1,2],[3,4]", "linear.Q=[1,2]", "hydra/launcher=basic"])
def test_every_other_override_goes_through_hydra(override):
    """A group, +, ~, @package, hydra.*, a sweep or a missing key: composed by Hydra itself (its errors included)."""
    (parsed,) = override_parser().parse_overrides([override])
    assert not changes_a_key(parsed, composed_once("autodiff_scaling"))
