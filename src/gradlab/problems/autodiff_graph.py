"""Forward and reverse mode by hand on a computational graph given as text (Problems 9 and 10, on any graph).

A graph is a list of inputs and a list of nodes in order, each an expression (`gradlab.problems.expression`) of
earlier names; the output is a node. The homework's graph (configs/graph/homework.yaml) is

    f1 = exp(x),  f2 = f1^2,  f3 = f1 + f2,  f4 = exp(f3),  f5 = sin(f3),  y = f4 + f5.

Every edge p -> c carries the local derivative dc/dp (the node's expression differentiated in p, symbolically).
Problem 10 (forward mode) pushes tangents from one input x_j to the output, one pass per input:

    dx_k/dx_j = [k = j],        dc/dx_j = sum over parents p of c:  (dc/dp) (dp/dx_j).

Problem 9 (reverse mode) pulls adjoints from the output back, one pass for every input at once, each node
summing over its children (f3 feeds f4 and f5, f1 feeds f2 and f3):

    dy/dy = 1,                  dy/dp = sum over children c of p:  (dy/dc) (dc/dp).

The adjoint dy/dp is the derivative of y with respect to node p when everything downstream of p is recomputed
and every other node is held fixed: what JAX returns for a perturbation added to p (`autodiff_checks.vjp_adjoints`).
All walks act elementwise: a point is a dict of arrays of the same shape (several points at once).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from gradlab.problems import derivative as rules
from gradlab.problems import expression as ex

MAX_NODES = 100  # a larger graph is refused (the drawing stays readable up to ~30)
MAX_INPUTS = 16
MAX_WRITTEN_OUT = 100  # operations of the output written as one formula of the inputs (headings, figure titles)


class GraphError(ValueError):
    """A graph that cannot be used: `where` names the node (or input), `message` says why, in one line."""

    def __init__(self, where: str, message: str, index: int | None = None):
        self.where, self.message, self.index = where, message, index
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Edge:
    parent: str
    child: str
    derivative: ex.Expr  # d child / d parent, as an expression of the graph's names

    @property
    def formula(self) -> str:
        return ex.to_text(self.derivative)


@dataclass(frozen=True)
class Graph:
    inputs: tuple[str, ...]
    nodes: tuple[tuple[str, ex.Expr], ...]  # in order; the output is the last
    edges: tuple[Edge, ...]

    @property
    def output(self) -> str:
        return self.nodes[-1][0]

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.inputs, *(name for name, _ in self.nodes))

    def parents(self, node: str) -> list[Edge]:
        return [e for e in self.edges if e.child == node]

    def formula(self, node: str) -> str:
        return "input" if node in self.inputs else ex.to_text(dict(self.nodes)[node])

    def output_formula(self) -> str:
        """The output as one formula of the inputs (every node inlined), as Problem 9 writes y; or, where that
        formula would take more than MAX_WRITTEN_OUT operations, the output's own node and the count: inlining
        can double the formula with every node (ex.inlined_operations), 2^100 operations for a chain of 100."""
        output, definitions = ex.Name(self.output), dict(self.nodes)
        operations = ex.inlined_operations(output, definitions)
        if operations <= MAX_WRITTEN_OUT:
            return ex.to_text(ex.inline(output, definitions))
        return f"{self.formula(self.output)} (in the inputs alone: {operations:.3g} operations, not written out)"


def _identifier(name: str, where: str) -> None:
    if not isinstance(name, str) or not ex.NAME.fullmatch(name) or name in ex.FUNCTIONS:
        raise GraphError(where, f"{name!r} is not a usable name: an ASCII letter or _ then letters, digits or _, "
                                f"not a function ({', '.join(ex.FUNCTIONS)})")


def build(inputs: Sequence[str], nodes: Mapping[str, str], output: str, output_name: str = "y") -> Graph:
    """The graph, checked before anything is computed; GraphError names the node and the reason.

    `output` is a node's name or an expression (then it becomes the last node, named output_name).
    Refused: a bad name, a syntax error (with its column), an unknown function or name, a name used before it is
    defined (which is also how a cycle shows: nodes are in order), a node or input the output does not use,
    more than MAX_NODES nodes or MAX_INPUTS inputs, an expression deeper than expression.MAX_DEPTH.
    """
    if not inputs:
        raise GraphError("graph.inputs", "no inputs: name at least one, with its value(s)")
    if len(inputs) > MAX_INPUTS:
        raise GraphError("graph.inputs", f"{len(inputs)} inputs, more than the limit of {MAX_INPUTS}")
    for name in inputs:
        _identifier(name, f"graph.inputs.{name}")
    texts = dict(nodes)
    if output in texts or output in inputs:
        if output in inputs:
            raise GraphError("graph.output", f"{output!r} is an input: the output must be a node or an expression")
        # the output node goes last; nodes after it cannot reach it (refused below)
        texts = {**{k: v for k, v in texts.items() if k != output}, output: texts[output]}
    else:
        if output_name in texts or output_name in inputs:
            raise GraphError("graph.output", f"the output expression would be named {output_name!r}, which is "
                                             "taken: name a node as the output instead")
        texts[output_name] = output
    if len(texts) > MAX_NODES:
        raise GraphError("graph.nodes", f"{len(texts)} nodes, more than the limit of {MAX_NODES}")
    defined: list[str] = list(inputs)
    order = list(texts)
    parsed, edges = [], []
    for name, text in texts.items():
        where = "graph.output" if name == output_name and name not in nodes else f"graph.nodes.{name}"
        _identifier(name, where)
        if name in defined:
            raise GraphError(where, f"{name!r} is defined twice (an input and a node)")
        try:
            tree = ex.parse(str(text) if isinstance(text, int | float) else text)
        except ex.ExpressionError as err:
            raise GraphError(where, str(err)) from None
        for used in ex.names(tree):
            if used == name:
                raise GraphError(where, f"{name} uses itself: a cycle")
            if used in order and used not in defined:
                raise GraphError(where, f"uses {used}, defined after {name}: a cycle or nodes out of order (each "
                                        "node may use only inputs and the nodes above it)")
            if used not in defined:
                raise GraphError(where, f"{used!r} is not defined (inputs: {', '.join(inputs)}; nodes: "
                                        f"{', '.join(n for n in order if n != name)})")
        parsed.append((name, tree))
        # d node / d parent, reusing the node's own value where the derivative contains it (d exp(x)/dx = f1)
        edges += [Edge(p, name, rules.substitute(rules.differentiate(tree, p), tree, name)) for p in ex.names(tree)]
        defined.append(name)
    graph = Graph(tuple(inputs), tuple(parsed), tuple(edges))
    reaching = _ancestors(graph, graph.output)
    for name in graph.names[:-1]:
        if name not in reaching:
            kind = "input" if name in inputs else "node"
            where = f"graph.inputs.{name}" if name in inputs else f"graph.nodes.{name}"
            raise GraphError(where, f"{kind} {name} is not used on the way to the output {graph.output} (its adjoint "
                                    "would be 0): use it or remove it")
    return graph


def _ancestors(graph: Graph, node: str) -> set[str]:
    found, stack = {node}, [node]
    while stack:
        for edge in graph.parents(stack.pop()):
            if edge.parent not in found:
                found.add(edge.parent)
                stack.append(edge.parent)
    return found


# --------------------------------------------------------------------------------------------------------
# The walks by hand (numpy): values, local derivatives, tangents, adjoints


def _finite(where: str, what: str, value: np.ndarray) -> None:
    bad = ~np.isfinite(value)
    if bad.any():
        index = int(np.flatnonzero(np.broadcast_to(bad, np.shape(value)).ravel())[0]) if np.ndim(value) else 0
        shown = np.ravel(value)[index] if np.ndim(value) else value
        raise GraphError(where, f"{what} = {shown} is not finite in {np.asarray(value).dtype}", index)


def forward_values(graph: Graph, point: Mapping[str, np.ndarray], *, checked: bool = True) -> dict[str, np.ndarray]:
    """The forward pass: every name's value (inputs included). checked: a domain error or a non-finite value
    raises GraphError naming the node (GraphError.index: the first point where it happens)."""
    dtype = np.result_type(*point.values())
    shape = np.broadcast_shapes(*(np.shape(v) for v in point.values()))
    values = {name: np.broadcast_to(np.asarray(point[name], dtype=dtype), shape) for name in graph.inputs}
    with np.errstate(all="ignore"):
        for name, tree in graph.nodes:
            try:
                value = ex.evaluate(tree, values, np, checked=checked)
            except ex.DomainError as err:
                raise GraphError(f"node {name} = {ex.to_text(tree)}", str(err), err.index) from None
            values[name] = np.broadcast_to(np.asarray(value, dtype=dtype), shape)
            if checked:
                _finite(f"node {name} = {ex.to_text(tree)}", name, values[name])
    return values


def local_derivatives(graph: Graph, values: Mapping[str, np.ndarray]) -> dict[tuple[str, str], np.ndarray]:
    """Every edge's local derivative d child / d parent at the point: {(parent, child): value}."""
    some = next(iter(values.values()))
    local = {}
    with np.errstate(all="ignore"):
        for edge in graph.edges:
            where = f"node {edge.child}: d{edge.child}/d{edge.parent} = {edge.formula}"
            try:
                value = ex.evaluate(edge.derivative, values, np, checked=True)
            except ex.DomainError as err:
                raise GraphError(where, str(err), err.index) from None
            local[edge.parent, edge.child] = np.broadcast_to(np.asarray(value, dtype=some.dtype), some.shape)
            _finite(where, f"d{edge.child}/d{edge.parent}", local[edge.parent, edge.child])
    return local


def forward_pass(graph: Graph, local: Mapping[tuple[str, str], np.ndarray], seed: str,
                 counter: dict | None = None) -> dict[str, np.ndarray]:
    """Problem 10: one forward-mode pass, the tangent d name / d seed of every name, seeded with d seed/d seed = 1."""
    some = next(iter(local.values()))
    tangent = {name: np.full_like(some, float(name == seed)) for name in graph.inputs}
    with np.errstate(all="ignore"):  # an overflow is reported by _finite, naming the node
        for name, _ in graph.nodes:
            terms = [local[e.parent, name] * tangent[e.parent] for e in graph.parents(name)]
            tangent[name] = sum(terms[1:], terms[0]) if terms else np.zeros_like(some)
            if counter is not None and terms:  # one multiply per edge, one add per parent after the first
                counter["forward"] = counter.get("forward", 0) + 2 * len(terms) - 1
            _finite(f"node {name}", f"d{name}/d{seed}", tangent[name])
    return tangent


def forward_mode(graph: Graph, local: Mapping[tuple[str, str], np.ndarray],
                 counter: dict | None = None) -> dict[str, dict[str, np.ndarray]]:
    """One forward pass per input: {input: {name: d name / d input}} (n inputs cost n passes)."""
    return {seed: forward_pass(graph, local, seed, counter) for seed in graph.inputs}


def reverse_mode(graph: Graph, local: Mapping[tuple[str, str], np.ndarray],
                 counter: dict | None = None) -> dict[str, np.ndarray]:
    """Problem 9: one reverse-mode pass, the adjoint dy/d name of every name (inputs included: the gradient).

    A node's adjoint is complete once all its children have been visited, which the reverse order guarantees.
    """
    some = next(iter(local.values()))
    adjoint: dict[str, np.ndarray] = {graph.output: np.ones_like(some)}
    with np.errstate(all="ignore"):  # an overflow is reported by _finite, naming the node
        for name, _ in reversed(graph.nodes):
            _finite(f"node {name}", f"d{graph.output}/d{name}", adjoint[name])
            for edge in graph.parents(name):
                contribution = adjoint[name] * local[edge.parent, name]
                seen = edge.parent in adjoint
                adjoint[edge.parent] = adjoint[edge.parent] + contribution if seen else contribution
                if counter is not None:  # one multiply per edge, one add per child after the first
                    counter["reverse"] = counter.get("reverse", 0) + 1 + seen
    for name in graph.inputs:
        _finite(f"input {name}", f"d{graph.output}/d{name}", adjoint[name])
    return {name: adjoint[name] for name in reversed(graph.names)}


def operation_counts(graph: Graph) -> dict[str, int]:
    """The cost argument on this graph, in primitive operations counted on its structure (E edges, N nodes).

    A forward pass does, at each node with k parents, k multiplies and k - 1 adds: 2E - N (N counts nodes with
    parents); n inputs need n passes. The reverse pass does, per edge, one multiply and, for a parent with m
    children, m - 1 adds: 2E - P (P parents); one pass for all inputs. Both share the node values and the local
    derivatives (operations in their expressions).
    """
    n_edges = len(graph.edges)
    with_parents = sum(1 for name, _ in graph.nodes if graph.parents(name))
    parents = len({e.parent for e in graph.edges})
    forward_pass_ops, reverse_pass_ops = 2 * n_edges - with_parents, 2 * n_edges - parents
    shared = sum(ex.operations(tree) for _, tree in graph.nodes) + sum(ex.operations(e.derivative) for e in graph.edges)
    n = len(graph.inputs)
    return {
        "inputs": n, "nodes": len(graph.nodes), "edges": n_edges,
        "value_and_local_derivative_ops": shared,
        "forward_pass_ops": forward_pass_ops, "forward_passes": n, "forward_total_ops": n * forward_pass_ops,
        "reverse_pass_ops": reverse_pass_ops, "reverse_passes": 1, "reverse_total_ops": reverse_pass_ops,
    }


# --------------------------------------------------------------------------------------------------------
# Tables: the names of Problem 10's tangents (per input, in forward order) and Problem 9's adjoints (backwards)


def tangent_table(graph: Graph, tangents: Mapping[str, Mapping]) -> dict:
    """{"d<node>_d<input>": value}: for each input, its column f1 .. y (Problem 10's order)."""
    return {f"d{name}_d{seed}": tangents[seed][name] for seed in graph.inputs for name, _ in graph.nodes}


def adjoint_table(graph: Graph, adjoints: Mapping) -> dict:
    """{"d<y>_d<name>": value}: from the last node before y back to the inputs (Problem 9's order)."""
    return {f"d{graph.output}_d{name}": adjoints[name] for name in reversed(graph.names[:-1])}


# --------------------------------------------------------------------------------------------------------
# The homework's graph, for callers that grade Problems 9/10 without a config (check_answers)

_HOMEWORK = Path(__file__).resolve().parents[1] / "configs" / "graph" / "homework.yaml"


@functools.cache
def homework() -> Graph:
    """The graph of configs/graph/homework.yaml (its one place): f1 = exp(x), ..., y = f4 + f5."""
    spec = yaml.safe_load(_HOMEWORK.read_text())
    return build(list(spec["inputs"]), spec["nodes"], spec["output"])


def __getattr__(name: str):
    """TANGENT_ORDER and ADJOINT_ORDER of the homework's graph (df1_dx .. dy_dx; dy_df5 .. dy_df1, dy_dx)."""
    if name == "TANGENT_ORDER":
        return tuple(tangent_table(homework(), {"x": dict.fromkeys(homework().names)}))
    if name == "ADJOINT_ORDER":
        return tuple(adjoint_table(homework(), dict.fromkeys(homework().names)))
    raise AttributeError(name)


def jax_tangents(x) -> dict:
    """The homework's tangents d f_i / dx by jax.jvp, keyed as TANGENT_ORDER."""
    from gradlab.problems.autodiff_checks import jvp_tangents  # the JAX route, imported only when asked for

    return tangent_table(homework(), jvp_tangents(homework(), {"x": x}))


def jax_adjoints(x) -> dict:
    """The homework's adjoints dy / d f_i by jax.vjp, keyed as ADJOINT_ORDER."""
    from gradlab.problems.autodiff_checks import vjp_adjoints

    return adjoint_table(homework(), vjp_adjoints(homework(), {"x": x}))
