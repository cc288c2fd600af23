"""Grading a student's numeric answers to Homework 1 against what the library computes.

The answers file is YAML with one optional section per problem; each section is a list of entries, and every
answer field in an entry is optional (only what is given is graded):

    softmax_jacobian:        # Problem 1: J[i][j] = d softmax(z)_i / d z_j
      - logits: [0.0, 0.0]
        jacobian: [[0.25, -0.25], [-0.25, 0.25]]
    weight_decay:            # Problem 3: the L2 coefficient lambda / (2 alpha) implied by decay rate lambda
      - {lam: 0.01, alpha: 0.1, l2_coefficient: 0.05}
    receptive_field:         # Problems 4-6: the receptive field of each layer's units
      - layers: [{kernel: 3, stride: 1, dilation: 1}, ...]
        fields: [3, 5, 7]
    linreg_hessian:          # Problem 7: H of the least-squares loss for inputs x
      - x: [1.0, 2.0, 3.0]
        hessian: [[6.0, 12.0], [12.0, 28.0]]
    logreg_gradient:         # Problem 8 (iii): dL/dphi of the summed BCE
      - {phi: [0.0, 0.0], x: [-1.0, 1.0], y: [0.0, 1.0], gradient: [0.0, -1.0]}
    autodiff:                # Problems 9, 10 at x
      - x: 0.0
        forward: [df1/dx, df2/dx, df3/dx, df4/dx, df5/dx, dy/dx]
        reverse: [dy/df5, dy/df4, dy/df3, dy/df2, dy/df1, dy/dx]

Each value is computed by JAX's autodiff where the problem is a derivative (the independent route the
experiments check their closed forms against), and by the library's formula otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.problems import autodiff_graph
from gradlab.problems import linreg
from gradlab.problems import logistic
from gradlab.problems import regularization
from gradlab.problems import softmax
from gradlab.runner.config import ConfigError, at_least, checked, finite, finite_list, positive, validate
from gradlab.problems.receptive_field import ConvSpec, receptive_field_analytic


def _all_finite(values: Any) -> bool:
    try:
        return bool(np.all(np.isfinite(np.asarray(values, dtype=float))))
    except (TypeError, ValueError):
        return False


def answer(rank: int) -> Any:
    """An optional answer field: a number (rank 0), a list (1) or a matrix (2) of finite numbers."""
    shape = ("a number", "a list of numbers", "a matrix (list of rows) of numbers")[rank]

    def ok(value: Any) -> bool:
        return value is None or (np.ndim(value) == rank and _all_finite(value))

    return checked(None, ok, shape)


@dataclass
class LayerAnswer:
    kernel: int = at_least(1, 1)
    stride: int = at_least(1, 1)
    dilation: int = at_least(1, 1)


@dataclass
class SoftmaxAnswer:
    logits: list[float] = finite_list([])
    jacobian: Any = answer(2)


@dataclass
class WeightDecayAnswer:
    lam: float = finite(0.0)
    alpha: float = positive(1.0)
    l2_coefficient: Any = answer(0)


@dataclass
class ReceptiveFieldAnswer:
    layers: list[LayerAnswer] = checked([], lambda v: len(v) >= 1, "a non-empty list of {kernel, stride, dilation}")
    fields: Any = answer(1)


@dataclass
class LinregAnswer:
    x: list[float] = finite_list([])
    hessian: Any = answer(2)


@dataclass
class LogregGradientAnswer:
    phi: list[float] = finite_list([0.0, 0.0], length=2)
    x: list[float] = finite_list([])
    y: list[float] = checked([], lambda v: len(v) >= 1 and set(v) <= {0.0, 1.0}, "a list of 0/1 labels")
    gradient: Any = answer(1)


@dataclass
class AutodiffAnswer:
    x: float = finite(0.0)
    forward: Any = answer(1)
    reverse: Any = answer(1)


def _softmax(a: SoftmaxAnswer) -> dict:
    return {"jacobian": softmax.softmax_jacobian_autodiff(jnp.asarray(a.logits), "jacrev")}


def _weight_decay(a: WeightDecayAnswer) -> dict:
    return {"l2_coefficient": regularization.l2_coefficient(a.lam, a.alpha)}


def _receptive_field(a: ReceptiveFieldAnswer) -> dict:
    stack = [ConvSpec(layer.kernel, layer.stride, layer.dilation) for layer in a.layers]
    return {"fields": receptive_field_analytic(stack)[0]}


def _linreg(a: LinregAnswer) -> dict:
    x = jnp.asarray(a.x)
    return {"hessian": linreg.hessian_autodiff(jnp.zeros(2), x, jnp.zeros_like(x))}


def _logreg(a: LogregGradientAnswer) -> dict:
    if len(a.x) != len(a.y):
        raise ValueError(f"x has {len(a.x)} values but y has {len(a.y)}")
    return {"gradient": jax.grad(logistic.bce_loss)(jnp.asarray(a.phi), jnp.asarray(a.x), jnp.asarray(a.y))}


FORWARD_ORDER = ("df1_dx", "df2_dx", "df3_dx", "df4_dx", "df5_dx", "dy_dx")  # Problem 10
REVERSE_ORDER = ("dy_df5", "dy_df4", "dy_df3", "dy_df2", "dy_df1", "dy_dx")  # Problem 9


def _autodiff(a: AutodiffAnswer) -> dict:
    x = jnp.asarray(a.x)
    tangents, adjoints = autodiff_graph.jax_tangents(x), autodiff_graph.jax_adjoints(x)
    return {"forward": [tangents[k] for k in FORWARD_ORDER], "reverse": [adjoints[k] for k in REVERSE_ORDER]}


SECTIONS: dict[str, tuple[type, Callable[[Any], dict]]] = {
    "softmax_jacobian": (SoftmaxAnswer, _softmax),
    "weight_decay": (WeightDecayAnswer, _weight_decay),
    "receptive_field": (ReceptiveFieldAnswer, _receptive_field),
    "linreg_hessian": (LinregAnswer, _linreg),
    "logreg_gradient": (LogregGradientAnswer, _logreg),
    "autodiff": (AutodiffAnswer, _autodiff),
}
INPUT_FIELDS = {"logits", "lam", "alpha", "layers", "x", "y", "phi"}


def parse(document: Any, source: str) -> list[tuple[str, int, Any]]:
    """Validate an answers document; return (section, index, entry) triples. Errors name the entry."""
    if not isinstance(document, dict) or not document:
        raise ConfigError("answers", source, f"a YAML mapping with sections among: {', '.join(SECTIONS)}")
    entries = []
    for section, items in document.items():
        if section not in SECTIONS:
            raise ConfigError(f"{source}:{section}", "<unknown section>", f"one of {', '.join(SECTIONS)}")
        if not isinstance(items, list) or not items:
            raise ConfigError(f"{source}:{section}", items, "a non-empty list of entries")
        schema = SECTIONS[section][0]
        for index, item in enumerate(items):
            where = f"{source}:{section}[{index}]"
            if not isinstance(item, dict):
                keys = [f.name for f in dataclasses.fields(schema)]
                raise ConfigError(where, item, f"a mapping with keys among {keys}")
            try:
                entry = validate(item, schema)
            except ConfigError as err:
                raise ConfigError(f"{where}.{err.key}", err.value, err.allowed) from None
            if all(getattr(entry, f.name) is None for f in dataclasses.fields(schema) if f.name not in INPUT_FIELDS):
                raise ConfigError(where, item, "at least one answer field besides the inputs")
            entries.append((section, index, entry))
    return entries


def grade(entries: list[tuple[str, int, Any]], rtol: float, atol: float) -> list[dict]:
    """One row per answered quantity: the answer, the computed value, the max abs error, and the verdict."""
    rows = []
    for section, index, entry in entries:
        try:
            computed = SECTIONS[section][1](entry)
        except ValueError as err:
            raise ConfigError(f"{section}[{index}]", dataclasses.asdict(entry), str(err)) from None
        for quantity, value in computed.items():
            answer = getattr(entry, quantity)
            if answer is None:
                continue
            expected = np.asarray(jax.tree.map(np.asarray, value), dtype=float)
            given = np.asarray(answer, dtype=float)
            if given.shape != expected.shape:
                error, correct = None, False
            else:
                error = float(np.max(np.abs(given - expected)))
                correct = bool(np.allclose(given, expected, rtol=rtol, atol=atol))
            rows.append({"section": section, "index": index, "quantity": quantity, "answer": answer,
                         "computed": expected.tolist(), "max_abs_error": error, "correct": correct})
    return rows
