"""Problems 9 and 10 on any computational graph: a student's tables of values, tangents and adjoints, graded.

The answers file names the graph (a preset of configs/graph/), or writes it inline with the same keys, or leaves
it out (then the config's `graph` is used, `graph=homework` unless overridden); section `autodiff_tables` holds one
entry per point:

    graph: two_inputs                # or {inputs: {x1: 2.0, x2: 5.0}, nodes: {v1: log(x1), ...}, output: v5}
    autodiff_tables:
      - at: {x1: 2.0, x2: 5.0}       # the point (may be left out when the graph has one point)
        values:   {v1: 0.693147, v2: 10.0, ...}               # every node (inputs may be left out)
        tangents: {x1: {v1: 0.5, ...}, x2: {v1: 0.0, ...}}    # d node / d input: a column per input (Problem 10)
        adjoints: {v4: 1.0, ..., x2: 1.716338, x1: 5.5}       # dy / d name, every name but y (Problem 9)

Each table is optional (at least one per entry); a table that is given has every entry. Every cell is graded
against the walk by hand (`autodiff_graph`: tangents dc/dx_j = sum_p (dc/dp)(dp/dx_j), adjoints
dy/dp = sum_c (dy/dc)(dc/dp)) and against JAX's route (`autodiff_checks`: jax.jvp per input, jax.vjp with a
perturbation per node): a cell is correct when it is within tolerance of both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from gradlab.experiments.autodiff_modes import GraphConfig
from gradlab.problems import autodiff_checks as checks
from gradlab.problems import autodiff_graph as ag
from gradlab.runner.config import ConfigError
from gradlab.runner.run import CONFIG_DIR

SECTION = "autodiff_tables"
PRESETS = CONFIG_DIR / "graph"
GRAPH_KEYS = tuple(f.name for f in dataclasses.fields(GraphConfig))  # derivative, draw_at, plot_range: not graded
TABLES = ("values", "tangents", "adjoints")


@dataclass(frozen=True)
class GraphTables:
    """One entry of autodiff_tables, checked against its graph: the point and the student's cells by quantity."""

    graph: ag.Graph
    at: dict[str, float]
    cells: dict[str, float]  # "values.v1", "tangents.x2.v3", "adjoints.x1": the student's number


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and bool(np.isfinite(value))


def presets() -> list[str]:
    return sorted(path.stem for path in PRESETS.glob("*.yaml"))


def resolve(document_graph: Any, config_graph: Mapping | None, source: str) -> tuple[dict, str]:
    """The graph spec and the prefix its errors carry: the file's `graph` (a preset's name or a mapping), else the
    config's graph, else the homework's preset."""
    if document_graph is None:
        if config_graph is not None:
            return dict(config_graph), ""
        document_graph = "homework"
    where = f"{source}:graph"
    if isinstance(document_graph, str):
        if document_graph not in presets():
            raise ConfigError(where, document_graph, f"a preset of configs/graph/ ({', '.join(presets())}) or a graph "
                              f"written inline with keys {', '.join(GRAPH_KEYS)}; your own preset: leave graph out "
                              "of the file and pass it as the config's graph=NAME")
        return yaml.safe_load((PRESETS / f"{document_graph}.yaml").read_text()), f"{source}:"
    if not isinstance(document_graph, dict):
        raise ConfigError(where, document_graph, f"a preset's name ({', '.join(presets())}) or a mapping with keys "
                          f"{', '.join(GRAPH_KEYS)}")
    for key in document_graph:
        if key not in GRAPH_KEYS:
            raise ConfigError(f"{where}.{key}", "<unknown key>", f"a key of a graph: {', '.join(GRAPH_KEYS)}")
    return document_graph, f"{source}:"


def build(spec: Mapping, prefix: str) -> tuple[ag.Graph, dict[str, np.ndarray]]:
    """The graph (refused in one line naming the node, as autodiff_modes refuses it) and its points."""
    for key, kind in (("inputs", dict), ("nodes", dict), ("output", str)):
        if not isinstance(spec.get(key), kind):
            raise ConfigError(f"{prefix}graph.{key}", spec.get(key, "<missing>"),
                              "a mapping of names" if kind is dict else "a node's name or an expression")
    inputs, nodes = spec["inputs"], spec["nodes"]
    try:
        graph = ag.build(list(inputs), nodes, spec["output"])
    except ag.GraphError as err:
        written = {"graph.output": spec["output"], "graph.inputs": dict(inputs), "graph.nodes": f"{len(nodes)} nodes",
                   **{f"graph.nodes.{k}": v for k, v in nodes.items()},
                   **{f"graph.inputs.{k}": v for k, v in inputs.items()}}
        raise ConfigError(f"{prefix}{err.where}", written.get(err.where), err.message) from None
    lists = {}
    for name, value in inputs.items():
        values = value if isinstance(value, list) else [value]
        if not values or not all(map(_number, values)):
            raise ConfigError(f"{prefix}graph.inputs.{name}", value, "a finite number or a non-empty list of them")
        lists[name] = values
    sizes = {len(v) for v in lists.values()} - {1}
    if len(sizes) > 1:
        raise ConfigError(f"{prefix}graph.inputs", inputs, "lists of one length (the inputs' points pair up), "
                                                           "or numbers")
    size = max(sizes, default=1)
    return graph, {k: np.asarray(v * size if len(v) == 1 else v, dtype=np.float64) for k, v in lists.items()}


def _point(item: dict, where: str, graph: ag.Graph, points: dict[str, np.ndarray]) -> dict[str, float]:
    """The entry's `at`: a value per input (a number will do for one input), or the graph's only point."""
    at = item.get("at")
    inputs = ", ".join(graph.inputs)
    if at is None:
        count = len(next(iter(points.values())))
        if count != 1:
            raise ConfigError(f"{where}.at", "<missing>", f"the tables' point, {{{inputs}}} (the graph has {count} "
                                                          "points; at may be left out only with one)")
        return {k: float(v[0]) for k, v in points.items()}
    if _number(at) and len(graph.inputs) == 1:
        at = {graph.inputs[0]: at}
    if not isinstance(at, dict) or set(at) != set(graph.inputs) or not all(map(_number, at.values())):
        raise ConfigError(f"{where}.at", at, f"a finite value for each input, {{{inputs}}}, and nothing else")
    return {k: float(at[k]) for k in graph.inputs}


def _table(table: Any, where: str, required: list[str], optional: list[str], meaning: str) -> dict[str, float]:
    """A {name: number} table: every required name, optional ones allowed, nothing else."""
    if not isinstance(table, dict):
        raise ConfigError(where, table, f"a mapping {{name: number}} of {meaning}")
    for name, value in table.items():
        if name not in required and name not in optional:
            raise ConfigError(f"{where}.{name}", value, f"a name in the table of {meaning}: one of "
                                                        f"{', '.join(required + optional)}")
        if not _number(value):
            raise ConfigError(f"{where}.{name}", value, "a finite number")
    for name in required:
        if name not in table:
            raise ConfigError(f"{where}.{name}", "<missing>", f"a value: the table of {meaning} has every one of "
                                                              f"{', '.join(required)}")
    return {name: float(table[name]) for name in (*optional, *required) if name in table}


def parse_entry(item: dict, where: str, graph: ag.Graph, points: dict[str, np.ndarray]) -> GraphTables:
    """One entry of autodiff_tables, checked against the graph; ConfigError names the entry (and the cell)."""
    for key in item:
        if key not in ("at", *TABLES):
            raise ConfigError(f"{where}.{key}", "<unknown key>", f"a key among at, {', '.join(TABLES)}")
    if not any(item.get(table) is not None for table in TABLES):
        raise ConfigError(where, item, f"at least one table among {list(TABLES)}")
    at = _point(item, where, graph, points)
    nodes, inputs, y = [name for name, _ in graph.nodes], list(graph.inputs), graph.output
    cells = {}
    if item.get("values") is not None:
        values = _table(item["values"], f"{where}.values", nodes, inputs, "node values")
        cells |= {f"values.{k}": v for k, v in values.items()}
    if item.get("tangents") is not None:
        columns = _table_of_columns(item["tangents"], f"{where}.tangents", inputs)
        for seed in inputs:
            column = _table(columns[seed], f"{where}.tangents.{seed}", nodes, inputs, f"tangents d./d{seed}")
            cells |= {f"tangents.{seed}.{k}": v for k, v in column.items()}
    if item.get("adjoints") is not None:
        order = list(reversed(graph.names[:-1]))
        adjoints = _table(item["adjoints"], f"{where}.adjoints", order, [y], f"adjoints d{y}/d.")
        cells |= {f"adjoints.{k}": v for k, v in adjoints.items()}
    try:  # refuse a point outside the graph's domain now, before any array of the run
        _walk(graph, at)
    except ag.GraphError as err:
        raise ConfigError(f"{where}.at", at, f"a point where every node is defined and finite: {err}") from None
    return GraphTables(graph, at, cells)


def _table_of_columns(table: Any, where: str, inputs: list[str]) -> dict:
    if not isinstance(table, dict):
        raise ConfigError(where, table, f"a mapping {{input: {{name: number}}}}: a column per input "
                                        f"({', '.join(inputs)})")
    for seed in table:
        if seed not in inputs:
            raise ConfigError(f"{where}.{seed}", table[seed], f"an input of the graph: one of {', '.join(inputs)}")
    for seed in inputs:
        if seed not in table:
            raise ConfigError(f"{where}.{seed}", "<missing>", f"a column per input ({', '.join(inputs)}): one "
                                                              "forward pass each")
    return table


def _walk(graph: ag.Graph, at: Mapping[str, float]) -> dict[str, float]:
    """Problems 9 and 10 by hand at one point: {cell: value} for every cell a table may hold."""
    values = ag.forward_values(graph, {k: np.asarray(v, dtype=np.float64) for k, v in at.items()})
    local = ag.local_derivatives(graph, values)
    return _cells(graph, values, ag.forward_mode(graph, local), ag.reverse_mode(graph, local))


def _cells(graph: ag.Graph, values: Mapping, tangents: Mapping, adjoints: Mapping) -> dict[str, float]:
    return {**{f"values.{k}": float(values[k]) for k in graph.names},
            **{f"tangents.{s}.{k}": float(tangents[s][k]) for s in graph.inputs for k in graph.names},
            **{f"adjoints.{k}": float(adjoints[k]) for k in graph.names}}


def _jax_route(graph: ag.Graph, at: Mapping[str, float]) -> dict[str, float]:
    """The same cells by JAX: jax_values, jax.jvp once per input, jax.vjp with a perturbation per node."""
    tangents = checks.jvp_tangents(graph, at)
    return _cells(graph, checks.jax_values(graph, at), tangents, checks.vjp_adjoints(graph, at))


def grade_entry(entry: GraphTables) -> dict[str, tuple[float, float, float]]:
    """{cell: (the student's number, the walk's, JAX's)} for every cell the entry gives."""
    walk, jax_route = _walk(entry.graph, entry.at), _jax_route(entry.graph, entry.at)
    return {cell: (given, walk[cell], jax_route[cell]) for cell, given in entry.cells.items()}
