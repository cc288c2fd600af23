"""The check_answers experiment's answers file: its schema, and grading it against what the library computes.

The answers file is YAML with one optional section per problem; each section is a list of entries. An entry
states the question's inputs (all required; a layer's stride and dilation are 1 unless given) and at least one
answer field (only what is given is graded):

    softmax_jacobian:        # Problem 1: J[i][j] = d softmax(z)_i / d z_j
      - logits: [0.0, 0.0]
        jacobian: [[0.25, -0.25], [-0.25, 0.25]]
    weight_decay:            # Problem 3: the L2 coefficient lambda / (2 alpha) implied by decay rate lambda
      - {lam: 0.01, alpha: 0.1, l2_coefficient: 0.05}
    receptive_field:         # Problems 4-6: the receptive field of each layer's units
      - layers: [{kernel: 3}, {kernel: 3, stride: 2}, {kernel: 5, dilation: 2}]
        fields: [3, 5, 21]
    linreg_hessian:          # Problem 7: H of the least-squares loss for inputs x
      - x: [1.0, 2.0, 3.0]
        hessian: [[6.0, 12.0], [12.0, 28.0]]
    logreg_gradient:         # Problem 8 (iii): dL/dphi of the summed BCE
      - {phi: [0.0, 0.0], x: [-1.0, 1.0], y: [0.0, 1.0], gradient: [0.0, -1.0]}
    autodiff:                # Problems 9, 10 at x
      - x: 0.0
        forward: [df1/dx, df2/dx, df3/dx, df4/dx, df5/dx, dy/dx]
        reverse: [dy/df5, dy/df4, dy/df3, dy/df2, dy/df1, dy/dx]
    graph: two_inputs        # Problems 9, 10 on any graph (a preset, inline, or the config's): see answers_graph
    autodiff_tables:
      - at: {x1: 2.0, x2: 5.0}
        values: {v1: 0.6931472, v2: 10.0, v3: -0.9589243, v4: 10.6931472, v5: 11.6520715}
        tangents: {x1: {v1: 0.5, ...}, x2: {...}}
        adjoints: {v4: 1.0, v3: -1.0, v2: 1.0, v1: 1.0, x2: 1.7163378, x1: 5.5}

Each value is computed by JAX's autodiff where the problem is a derivative (the independent route the
experiments check their closed forms against), and by the library's formula otherwise; an autodiff_tables cell
(`answers_graph`) by the walk by hand and by JAX, and is correct only within tolerance of both.

Anchors and aliases (`&layers ...`, `*layers`) may repeat a part of the file, but they may add at most
ALIAS_ALLOWANCE nodes or as many as the file writes out, whichever is more: a file of a few KB whose aliases nest
("billion laughs") would otherwise expand into gigabytes while it is validated, graded and recorded.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import yaml

from gradlab.experiments import answers_graph
from gradlab.experiments.receptive_field import ConvLayer
from gradlab.problems import autodiff_graph, linreg, logistic, regularization, softmax
from gradlab.problems.numerics import all_finite, max_abs_error
from gradlab.problems.receptive_field import receptive_field_analytic
from gradlab.runner.config import Check, ConfigError, checked, finite, finite_list, positive, validate

ALIAS_ALLOWANCE = 10_000


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def expanded_size(root: yaml.Node) -> tuple[int, int]:
    """(nodes written in the file, nodes once every alias is expanded): one pass over the composed graph, where
    an alias is the very node of its anchor. Raises ValueError for an alias inside its own anchor (a cycle)."""
    sizes: dict[int, int] = {}
    ancestors: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        if finished:
            ancestors.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in _children(node))
        elif id(node) in ancestors:
            raise ValueError(f"an alias refers to its own anchor (line {node.start_mark.line + 1}): it never ends")
        elif id(node) not in sizes:
            ancestors.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node))
    return len(sizes), sizes[id(root)]


def load(text: str) -> Any:
    """The YAML document of an answers file (safe types only), after checking what its aliases expand to.

    Raises ValueError, with the reason, for a file whose aliases add more than max(ALIAS_ALLOWANCE, its own node
    count) nodes or refer to themselves, and for one nested too deep to read; yaml.YAMLError for invalid YAML.
    """
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        written, expanded = expanded_size(root)
        if expanded - written > max(ALIAS_ALLOWANCE, written):
            raise ValueError(f"aliases that add at most max({ALIAS_ALLOWANCE}, the {written} nodes written) nodes; "
                             f"these expand the file to {expanded:.3g} nodes (nested anchors, a 'billion laughs'?)")
        return loader.construct_document(root)
    except RecursionError:
        raise ValueError("YAML nested at most a few hundred levels deep (this file nests deeper)") from None
    finally:
        loader.dispose()


def answer(rank: int) -> Any:
    """An optional answer field: a number (rank 0), a list (1) or a matrix (2) of finite numbers."""
    shape = ("a number", "a list of numbers", "a matrix (list of rows) of numbers")[rank]

    def ok(value: Any) -> bool:
        return value is None or (np.ndim(value) == rank and all_finite(value))

    return dataclasses.field(default=None, metadata={"check": Check(ok, shape), "answer": True})


def vector_to_matrix(name: str, vector: str, matrix: str) -> type:
    """A section whose entry is one input vector (a non-empty list of finite numbers) and the matrix it gives."""
    return dataclasses.make_dataclass(name, [(vector, list[float], finite_list()), (matrix, Any, answer(2))])


SoftmaxAnswer = vector_to_matrix("SoftmaxAnswer", "logits", "jacobian")  # Problem 1: J = d softmax(z) / dz
LinregAnswer = vector_to_matrix("LinregAnswer", "x", "hessian")  # Problem 7: H of the least-squares loss


@dataclass
class WeightDecayAnswer:
    lam: float = finite()
    alpha: float = positive()
    l2_coefficient: Any = answer(0)


@dataclass
class ReceptiveFieldAnswer:
    layers: list[ConvLayer] = checked(lambda v: len(v) >= 1, "a non-empty list of {kernel, stride, dilation}")
    fields: Any = answer(1)


@dataclass
class LogregGradientAnswer:
    phi: list[float] = finite_list(length=2)
    x: list[float] = finite_list()
    y: list[float] = checked(lambda v: len(v) >= 1 and set(v) <= {0.0, 1.0}, "a list of 0/1 labels")
    gradient: Any = answer(1)


@dataclass
class AutodiffAnswer:
    x: float = finite()
    forward: Any = answer(1)
    reverse: Any = answer(1)


def _softmax(a: SoftmaxAnswer) -> dict:
    return {"jacobian": softmax.softmax_jacobian_autodiff(jnp.asarray(a.logits), "jacrev")}


def _weight_decay(a: WeightDecayAnswer) -> dict:
    return {"l2_coefficient": regularization.l2_coefficient(a.lam, a.alpha)}


def _receptive_field(a: ReceptiveFieldAnswer) -> dict:
    return {"fields": receptive_field_analytic([layer.spec() for layer in a.layers])[0]}


def _linreg(a: LinregAnswer) -> dict:
    x = jnp.asarray(a.x)
    return {"hessian": linreg.hessian_autodiff(jnp.zeros(2), x, jnp.zeros_like(x))}


# jitted: outside jit each operation would be compiled on its first use (docs/adding-an-experiment.md)
_bce_gradient_autodiff = jax.jit(jax.grad(logistic.bce_loss))


def _logreg(a: LogregGradientAnswer) -> dict:
    if len(a.x) != len(a.y):
        raise ValueError(f"x has {len(a.x)} values but y has {len(a.y)}")
    return {"gradient": _bce_gradient_autodiff(jnp.asarray(a.phi), jnp.asarray(a.x), jnp.asarray(a.y))}


def _autodiff(a: AutodiffAnswer) -> dict:
    x = jnp.asarray(a.x)
    tangents, adjoints = autodiff_graph.jax_tangents(x), autodiff_graph.jax_adjoints(x)
    return {"forward": [tangents[k] for k in autodiff_graph.TANGENT_ORDER],
            "reverse": [adjoints[k] for k in autodiff_graph.ADJOINT_ORDER]}


SECTIONS: dict[str, tuple[type, Callable[[Any], dict]]] = {
    "softmax_jacobian": (SoftmaxAnswer, _softmax),
    "weight_decay": (WeightDecayAnswer, _weight_decay),
    "receptive_field": (ReceptiveFieldAnswer, _receptive_field),
    "linreg_hessian": (LinregAnswer, _linreg),
    "logreg_gradient": (LogregGradientAnswer, _logreg),
    "autodiff": (AutodiffAnswer, _autodiff),
}


def answer_fields(schema: type) -> list[str]:
    """The answer fields of a section (the others are its inputs)."""
    return [f.name for f in dataclasses.fields(schema) if f.metadata.get("answer")]


def parse(document: Any, source: str, graph: dict | None = None) -> list[tuple[str, int, Any]]:
    """Validate an answers document; return (section, index, entry) triples. Errors name the entry.

    `graph` is the config's graph (a dict of configs/graph/'s keys), used by autodiff_tables where the file names
    none (None: the homework's)."""
    sections = [*SECTIONS, answers_graph.SECTION]
    if not isinstance(document, dict) or not document:
        raise ConfigError("answers", source, f"a YAML mapping with sections among: {', '.join(sections)}")
    document = dict(document)
    document_graph = document.pop("graph", None)
    built = None
    if document_graph is not None and answers_graph.SECTION not in document:
        raise ConfigError(f"{source}:graph", document_graph, f"the graph of section {answers_graph.SECTION} "
                                                             "(this file has none)")
    if answers_graph.SECTION in document:
        built = answers_graph.build(*answers_graph.resolve(document_graph, graph, source))
    entries = []
    for section, items in document.items():
        if section not in sections:
            if difflib.get_close_matches(str(section), sections, n=1, cutoff=0.75):  # a typo: worth quoting
                raise ConfigError(f"{source}:{section}", "<unknown section>", f"one of {', '.join(sections)}, or graph")
            # not a section at all (answers=/etc/shadow): the file's text is never quoted
            raise ConfigError("answers", source, f"a YAML mapping with sections among: {', '.join(sections)} (key "
                              f"{list(document).index(section) + 1} of this file is none of them)")
        if not isinstance(items, list) or not items:
            raise ConfigError(f"{source}:{section}", items, "a non-empty list of entries")
        for index, item in enumerate(items):
            where = f"{source}:{section}[{index}]"
            if section == answers_graph.SECTION:
                if not isinstance(item, dict):
                    raise ConfigError(where, item, "a mapping with keys among at, values, tangents, adjoints")
                entries.append((section, index, answers_graph.parse_entry(item, where, *built)))
                continue
            schema = SECTIONS[section][0]
            if not isinstance(item, dict):
                keys = [f.name for f in dataclasses.fields(schema)]
                raise ConfigError(where, item, f"a mapping with keys among {keys}")
            try:
                entry = validate(item, schema)
            except ConfigError as err:
                allowed = "a value is required (an input of the question)" if err.value == "<missing>" else err.allowed
                raise ConfigError(f"{where}.{err.key}", err.value, allowed) from None
            if all(getattr(entry, name) is None for name in answer_fields(schema)):
                raise ConfigError(where, item, f"at least one answer among {answer_fields(schema)}")
            entries.append((section, index, entry))
    return entries


def grade(entries: list[tuple[str, int, Any]], rtol: float, atol: float) -> list[dict]:
    """One row per answered quantity: the answer, the computed value, the max abs error, and the verdict.

    An autodiff_tables entry gives a row per cell, computed by the walk by hand and by JAX (`jax`): correct when
    within tolerance of both; `routes_agree` says whether the two agree within it."""
    rows = []
    close = lambda a, b: bool(np.isclose(a, b, rtol=rtol, atol=atol))  # noqa: E731
    for section, index, entry in entries:
        if section == answers_graph.SECTION:
            for quantity, (answer, walk, by_jax) in answers_graph.grade_entry(entry).items():
                rows.append({"section": section, "index": index, "quantity": quantity, "answer": answer,
                             "computed": walk, "jax": by_jax, "max_abs_error": abs(answer - walk),
                             "correct": close(answer, walk) and close(answer, by_jax),
                             "routes_agree": close(walk, by_jax)})
            continue
        try:
            computed = SECTIONS[section][1](entry)
        except ValueError as err:
            raise ConfigError(f"{section}[{index}]", dataclasses.asdict(entry), str(err)) from None
        for quantity, value in computed.items():
            answer = getattr(entry, quantity)
            if answer is None:
                continue
            expected = np.asarray(jax.tree.map(np.asarray, value), dtype=float)
            if not np.all(np.isfinite(expected)):  # the inputs are finite, what they give is not: name them
                inputs = {f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)
                          if not f.metadata.get("answer")}
                raise ConfigError(f"{section}[{index}]", inputs, f"inputs whose {quantity} is a finite float64 "
                                  f"(these give {expected.ravel()[~np.isfinite(expected.ravel())][0]})")
            given = np.asarray(answer, dtype=float)
            if given.shape != expected.shape:
                error, correct = None, False
            else:
                error = float(max_abs_error(given, expected))
                correct = bool(np.allclose(given, expected, rtol=rtol, atol=atol))
            rows.append({"section": section, "index": index, "quantity": quantity, "answer": answer,
                         "computed": expected.tolist(), "max_abs_error": error, "correct": correct})
    return rows
