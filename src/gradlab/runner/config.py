"""Declarative config validation: a dataclass schema per experiment, checked before any JAX work.

A schema is a plain dataclass whose fields carry their type and allowed range (in `metadata["check"]`) but
no default: every default value is written once, in `configs/<name>.yaml`.

    @dataclass
    class OptimizerConfig:
        name: str = one_of("sgd", "momentum", "adam")
        lr: float = positive()

`validate(raw_cfg, Schema)` merges the composed Hydra config onto `OmegaConf.structured(Schema)` (which
rejects unknown keys and wrong types), then walks the resulting object and applies every field's check.
Any failure raises `ConfigError` with a one-line message naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value that is not allowed; the message is one line: key, value, what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"config error: {key}={value!r} is not allowed: {allowed}")


@dataclasses.dataclass(frozen=True)
class Check:
    """A predicate on one value and the words that describe what it allows."""

    predicate: Callable[[Any], bool]
    allowed: str


def _field(check: Check) -> Any:
    """A schema field with a check and no default: its value comes from configs/<name>.yaml."""
    return dataclasses.field(metadata={"check": check})


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def finite() -> Any:
    """Any finite number."""
    return _field(Check(_finite, "a finite number"))


def finite_list(length: int | None = None, *, allow_none: bool = False) -> Any:
    """A non-empty list of finite numbers (exactly `length` of them if given), or None with allow_none."""
    size = f"{length} finite numbers" if length else "a non-empty list of finite numbers"

    def ok(x: Any) -> bool:
        if x is None:
            return allow_none
        return (len(x) == length if length else len(x) > 0) and all(map(_finite, x))

    return _field(Check(ok, size + (" or null" if allow_none else "")))


def positive() -> Any:
    """A finite number > 0."""
    return _field(Check(lambda x: _finite(x) and x > 0, "a finite number > 0"))


def at_least(low: float) -> Any:
    """A finite number >= low."""
    return _field(Check(lambda x: _finite(x) and x >= low, f"a number >= {low}"))


def in_range(low: float, high: float, *, include_high: bool = False) -> Any:
    """A finite number in [low, high) (or [low, high] with include_high)."""
    close = "]" if include_high else ")"
    ok = (lambda x: low <= x <= high) if include_high else (lambda x: low <= x < high)
    return _field(Check(lambda x: _finite(x) and ok(x), f"a number in [{low}, {high}{close}"))


def fraction() -> Any:
    """A share: a finite number in (0, 1]."""
    return _field(Check(lambda x: _finite(x) and 0 < x <= 1, "a number in (0, 1]"))


def one_of(*choices: str) -> Any:
    """One of a fixed set of strings."""
    return _field(Check(lambda x: x in choices, "one of " + ", ".join(map(repr, choices))))


def increasing_pair() -> Any:
    """A [low, high] range of two finite numbers with low < high."""

    def ok(x: Any) -> bool:
        return len(x) == 2 and all(map(_finite, x)) and x[0] < x[1]

    return _field(Check(ok, "two finite numbers [low, high] with low < high"))


def each(predicate: Callable[[Any], bool], allowed: str) -> Any:
    """A non-empty list whose every element satisfies predicate."""

    def ok(x: Any) -> bool:
        return len(x) > 0 and all(predicate(v) for v in x)

    return _field(Check(ok, f"a non-empty list, each element {allowed}"))


def seed() -> Any:
    """A random seed: an integer in [0, 2**32) (what jax.random.key takes in float32 and float64 alike)."""
    return _field(Check(lambda x: isinstance(x, int) and 0 <= x < 2**32, "an integer in [0, 2**32)"))


def checked(predicate: Callable[[Any], bool], allowed: str) -> Any:
    """Any other rule, stated as a predicate and the words for what it allows."""
    return _field(Check(predicate, allowed))


def validate(raw: DictConfig | dict, schema: type[T]) -> T:
    """Merge `raw` onto `schema`, check every field, and return the schema object.

    Raises ConfigError (one line) for an unknown key, a wrong type or a value out of range.
    """
    _check_list_items(raw, schema, prefix="")
    _check_no_huge_integer(raw, prefix="")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), raw)
        obj = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        raise _one_line(err) from None
    _check_fields(obj, prefix="")
    return obj


def _list_item_schema(hint: Any) -> type | None:
    """The dataclass D of a `list[D]` (or `list[D] | None`) type hint, else None."""
    for candidate in (hint, *typing.get_args(hint)):
        if typing.get_origin(candidate) is list:
            (item,) = typing.get_args(candidate) or (None,)
            return item if dataclasses.is_dataclass(item) else None
    return None


def _is_list(hint: Any) -> bool:
    """Whether a field's type is a list (`list[...]`, or `list[...] | None`)."""
    return any(typing.get_origin(candidate) is list for candidate in (hint, *typing.get_args(hint)))


def _check_list_items(raw: Any, schema: type, prefix: str) -> None:
    """Merge each element of a list-of-dataclass field on its own, so that an error names `layers[2].kernel`.

    (OmegaConf reports such errors with the element's key only, without the list and index.)
    """
    if not isinstance(raw, Mapping):
        return
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        if f.name not in raw:
            continue
        value, hint = raw[f.name], hints[f.name]
        if isinstance(value, Mapping) and _is_list(hint):  # OmegaConf names no key for this mismatch
            raise ConfigError(f"{prefix}{f.name}", dict(value), "a list, not a mapping")
        item_schema = _list_item_schema(hint)
        if item_schema is not None and isinstance(value, Sequence) and not isinstance(value, str):
            for index, item in enumerate(value):
                where = f"{prefix}{f.name}[{index}]."
                if not isinstance(item, Mapping):
                    raise ConfigError(where[:-1], item, f"a mapping of the keys of {item_schema.__name__}")
                try:
                    OmegaConf.merge(OmegaConf.structured(item_schema), item)
                except OmegaConfBaseException as err:
                    raise _one_line(err, prefix=where) from None
                _check_list_items(item, item_schema, where)
        elif dataclasses.is_dataclass(hint):
            _check_list_items(value, hint, f"{prefix}{f.name}.")


def _one_line(err: OmegaConfBaseException, prefix: str = "") -> ConfigError:
    key = prefix + (err.full_key or str(err.key or "?"))
    first_line = (err.msg or str(err)).splitlines()[0]
    if type(err).__name__ == "MissingMandatoryValue":
        return ConfigError(key, "<missing>", "a value is required (its default belongs in configs/<experiment>.yaml)")
    if type(err).__name__ == "ConfigKeyError":
        return ConfigError(key, "<unknown key>", f"not a key of {err.object_type_str or 'this config'}")
    return ConfigError(key, err.value, f"wrong type ({first_line})")


INT_LIMIT = 2**63  # integers beyond int64 overflow in NumPy and JAX


def _check_fields(obj: Any, prefix: str) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        items = value if isinstance(value, list) else [value]
        too_big = [v for v in items if isinstance(v, int) and abs(v) >= INT_LIMIT]
        if too_big:
            raise ConfigError(key, _plain(value), "integers below 2**63 (larger ones overflow in NumPy and JAX)")
        check: Check | None = f.metadata.get("check")
        if check is not None:
            try:
                ok = bool(check.predicate(value))
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ConfigError(key, _plain(value), check.allowed)
        if dataclasses.is_dataclass(value):
            _check_fields(value, prefix=f"{key}.")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if dataclasses.is_dataclass(item):
                    _check_fields(item, prefix=f"{key}[{i}].")


def _fits_a_float(value: int) -> bool:
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _check_no_huge_integer(raw: Any, prefix: str) -> None:
    """Refuse an integer beyond float64's range anywhere in `raw` (YAML reads `lam: 1000...0`, 400 digits, as an int)
    before OmegaConf turns it into a float, where it would overflow (OverflowError, not a config error). Smaller
    integers beyond int64 are refused by `_check_fields`, naming their key."""
    if isinstance(raw, dict | DictConfig):
        items = raw.items()
    else:
        items = enumerate(raw) if isinstance(raw, list | ListConfig) else ()
    for name, value in items:
        key = f"{prefix}{name}" if isinstance(name, str) else f"{prefix.rstrip('.')}[{name}]"
        if isinstance(value, int) and not isinstance(value, bool) and not _fits_a_float(value):
            digits = int(value.bit_length() * 0.30103) + 1  # str() of a huge int is refused beyond 4300 digits
            raise ConfigError(key, f"<an integer of ~{digits} digits>",
                              "a number within float64's range; integers below 2**63")
        if isinstance(value, dict | list | DictConfig | ListConfig):
            _check_no_huge_integer(value, f"{key}.")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return value


def to_dict(obj: Any) -> dict:
    """The validated schema object as plain JSON-ready data."""
    return dataclasses.asdict(obj)


# --------------------------------------------------------------------------------------------------------
# Sizes per backend. An experiment whose sizes depend on the device (`backend` and `presets` keys) keeps the
# CPU's at the top level and, per platform, a preset holding only the keys that change, under the same names:
# `presets.gpu.linear.P` replaces `linear.P` on a GPU. `backend: auto` picks the default device's platform.


def with_preset(cfg: T, schema: type[T], name: str, preset: Mapping) -> T:
    """`cfg` with `presets.<name>` merged over it, checked as the top-level keys are; a value refused is named
    `presets.<name>.<key>`."""
    try:
        return validate(OmegaConf.merge(OmegaConf.create(to_dict(cfg)), OmegaConf.create(dict(preset))), schema)
    except ConfigError as error:
        raise ConfigError(f"presets.{name}.{error.key}", error.value, error.allowed) from None


def check_presets(cfg: Any, schema: type) -> None:
    """`backend` is auto, cpu or a preset's name, and every preset gives a valid config: a bad GPU size is refused
    before the run on any machine, not only on a GPU."""
    if cfg.backend not in ("auto", "cpu", *cfg.presets):
        raise ConfigError("backend", cfg.backend, "auto, cpu or a preset: " + ", ".join(cfg.presets))
    for name, preset in cfg.presets.items():
        with_preset(cfg, schema, name, preset or {})


def for_backend(cfg: T, schema: type[T], platform: str) -> tuple[T, str]:
    """(the config with its backend's preset merged over it, which preset): `backend` names the preset, or `auto`
    takes `platform` (the default device's); the CPU, or a platform without a preset, runs the top-level keys."""
    name = platform if cfg.backend == "auto" else cfg.backend
    preset = cfg.presets.get(name)
    if not preset:
        return cfg, "cpu (top-level keys)" if name == "cpu" else f"{name}: no preset, the top-level (CPU) keys"
    return with_preset(cfg, schema, name, preset), f"{name} (presets.{name})"
