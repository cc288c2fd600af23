"""Problems 9 and 10: forward and reverse mode by hand on a computational graph from configs/graph/.

python experiments/autodiff_modes.py                                  # the homework's graph (graph=homework)
python experiments/autodiff_modes.py graph=two_inputs                 # y = log(x1) + x1 x2 - sin(x2)
python experiments/autodiff_modes.py 'graph.inputs.x=[-1.0,0.0,2.5]' 'graph.draw_at={x: 2.5}'
python experiments/autodiff_modes.py "graph.nodes.f5='cos(f3)'"       # quote expressions: Hydra reads f(x) itself
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.experiments import memory
from gradlab.problems import autodiff_checks as checks
from gradlab.problems import autodiff_graph as ag
from gradlab.problems import expression as ex
from gradlab.runner.config import ConfigError, checked, in_range, increasing_pair
from gradlab.runner.run import BaseConfig, RunContext, check_memory, launch
from gradlab.runner.tables import markdown_table

MAX_POINTS = 10_000  # points per run (each is a full table in metrics.json)
REPORT_TABLES = "report_tables.md"  # the verification report includes this file of the run dir (verify/report.py)


@dataclass
class GraphConfig:
    inputs: dict[str, Any]  # name: a number or a list of numbers (the points)
    nodes: dict[str, Any]  # name: expression of inputs and nodes above, in order
    output: str  # a node's name, or an expression (then named y)
    derivative: dict[str, str] | None  # closed forms dy/d<input> to check, in inputs and nodes
    draw_at: dict[str, float] | None  # the point drawn on the graph; None: the first point
    plot_range: list[float] = increasing_pair()  # range of the first input for the y and dy/dx curves


@dataclass
class Config(BaseConfig):
    graph: GraphConfig
    fd_step: float = in_range(1e-12, 1.0)  # relative step of the central difference, h = fd_step * max(1, |x|)
    plot_points: int = checked(lambda n: isinstance(n, int) and n >= 2, "an integer >= 2")


# --------------------------------------------------------------------------------------------------------
# The config's graph and points, every refusal a one-line ConfigError naming the key, node and value


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)


def _points(inputs: dict[str, Any], dtype) -> dict[str, np.ndarray]:
    """{input: array of its points}: a number is one point (or repeated along the others' lists)."""
    lists = {}
    for name, value in inputs.items():
        key = f"graph.inputs.{name}"
        values = value if isinstance(value, list) else [value]
        if not values or not all(map(_number, values)):
            raise ConfigError(key, value, "a finite number or a non-empty list of finite numbers (every input needs "
                                          "a value)")
        lists[name] = values
    sizes = {len(v) for v in lists.values() if len(v) > 1}
    if len(sizes) > 1:
        raise ConfigError("graph.inputs", inputs, "lists of one length (the inputs' points pair up), or numbers")
    size = sizes.pop() if sizes else 1
    if size > MAX_POINTS:
        raise ConfigError("graph.inputs", f"{size} points", f"at most {MAX_POINTS} points")
    return {k: np.asarray(v * size if len(v) == 1 else v, dtype=dtype) for k, v in lists.items()}


def _point_key(graph: ag.Graph, points: dict[str, np.ndarray], index: int) -> tuple[str, Any]:
    if len(graph.inputs) == 1:
        (name,) = graph.inputs
        return f"graph.inputs.{name}[{index}]", float(points[name][index])
    return f"graph.inputs[{index}]", {k: float(v[index]) for k, v in points.items()}


def _walk(graph: ag.Graph, point: dict[str, np.ndarray], counter: dict | None = None) -> dict:
    values = ag.forward_values(graph, point)
    local = ag.local_derivatives(graph, values)
    return {"values": values, "local": local, "forward": ag.forward_mode(graph, local, counter),
            "reverse": ag.reverse_mode(graph, local, counter)}


def prepare(cfg: Config) -> tuple[ag.Graph, dict[str, np.ndarray], dict[str, np.ndarray], dict[str, ex.Expr]]:
    """The graph, its points, the drawn point and the closed forms; refuses a bad graph or point (ConfigError)."""
    g = cfg.graph
    dtype = np.dtype(cfg.precision)
    try:
        graph = ag.build(list(g.inputs), g.nodes, g.output)
    except ag.GraphError as err:  # the error names the key; the message quotes what the user wrote there
        written = {"graph.output": g.output, "graph.inputs": dict(g.inputs), "graph.nodes": f"{len(g.nodes)} nodes",
                   **{f"graph.nodes.{k}": v for k, v in g.nodes.items()},
                   **{f"graph.inputs.{k}": v for k, v in g.inputs.items()}}
        raise ConfigError(err.where, written.get(err.where), err.message) from None
    points = _points(g.inputs, dtype)
    closed = {}
    for name, text in (g.derivative or {}).items():
        key = f"graph.derivative.{name}"
        if name not in graph.inputs:
            raise ConfigError(key, text, f"a closed form dy/d<input> for an input ({', '.join(graph.inputs)})")
        try:
            closed[name] = ex.parse(str(text))
        except ex.ExpressionError as err:
            raise ConfigError(key, text, str(err)) from None
        unknown = [n for n in ex.names(closed[name]) if n not in graph.names]
        if unknown:
            raise ConfigError(key, text, f"an expression of the graph's names ({', '.join(graph.names)}): "
                                         f"{unknown[0]!r} is not one")
    if g.draw_at is not None and set(g.draw_at) != set(graph.inputs):
        raise ConfigError("graph.draw_at", g.draw_at, f"a value for each input ({', '.join(graph.inputs)}), or null")
    draw = ({k: np.asarray([g.draw_at[k]], dtype=dtype) for k in graph.inputs} if g.draw_at is not None
            else {k: v[:1] for k, v in points.items()})
    _refuse_where_undefined(graph, points, closed, lambda i: _point_key(graph, points, i))
    _refuse_where_undefined(graph, draw, closed, lambda i: ("graph.draw_at", g.draw_at))
    _check_plot_range(cfg, graph, draw)
    _check_steps(cfg, graph, points)
    return graph, points, draw, closed


def _refuse_where_undefined(graph: ag.Graph, point: dict, closed: dict, key_of) -> None:
    """Walk both modes (and the closed forms) at the points: a domain error or a non-finite value anywhere is a
    ConfigError naming the point's key (key_of(index) -> key, value) and, in the message, the node."""
    try:
        walk = _walk(graph, point)
        for name in closed:
            with np.errstate(all="ignore"):
                value = ex.evaluate(closed[name], walk["values"], np, checked=True)
            finite = np.isfinite(np.broadcast_to(value, point[name].shape))
            if not finite.all():
                raise ag.GraphError(f"graph.derivative.{name}", f"dy/d{name} is not finite",
                                    int(np.flatnonzero(~finite)[0]))
    except ag.GraphError as err:
        key, value = key_of(err.index or 0)
        raise ConfigError(key, value, f"a point where every node is defined and finite: {err}") from None
    except ex.DomainError as err:
        key, value = key_of(err.index)
        raise ConfigError(key, value, f"a point inside the closed form's domain: {err}") from None


def _curve_point(graph: ag.Graph, draw: dict[str, np.ndarray], grid: np.ndarray) -> dict[str, np.ndarray]:
    """The first input along grid, the others held at the drawn point."""
    first = graph.inputs[0]
    return {k: grid if k == first else np.full_like(grid, v[0]) for k, v in draw.items()}


def _check_plot_range(cfg: Config, graph: ag.Graph, draw: dict[str, np.ndarray]) -> None:
    """Refuse a plot range where a node leaves its domain or overflows, naming where (bisected to the boundary)."""
    first = graph.inputs[0]
    grid = np.linspace(*cfg.graph.plot_range, cfg.plot_points, dtype=np.dtype(cfg.precision))
    try:
        _walk(graph, _curve_point(graph, draw, grid))
        return
    except ag.GraphError as err:
        bad, where = err.index or 0, str(err)
    boundary = grid[bad]
    if bad > 0:  # bisect between the last good and the first bad grid point; say what fails at the boundary
        low, high = grid[bad - 1], grid[bad]
        for _ in range(60):
            mid = (low + high) / 2
            try:
                _walk(graph, _curve_point(graph, draw, np.asarray([mid], dtype=grid.dtype)))
                low = mid
            except ag.GraphError as err:
                high, where = mid, str(err)
        boundary = high
    raise ConfigError("graph.plot_range", cfg.graph.plot_range, f"a range of {first} where every node is defined "
                      f"and finite: {where}, from {first} = {float(boundary):.6g} on")


def _check_steps(cfg: Config, graph: ag.Graph, points: dict[str, np.ndarray]) -> None:
    """The central difference evaluates y at x +- 2h: refuse a step that leaves a node's domain there."""
    for name in graph.inputs:
        h = cfg.fd_step * np.maximum(1.0, np.abs(points[name]))
        for sign in (-2.0, -1.0, 1.0, 2.0):
            try:
                ag.forward_values(graph, {**points, name: points[name] + sign * h})
            except ag.GraphError as err:
                raise ConfigError("fd_step", cfg.fd_step, f"a step whose central difference stays where every node "
                                  f"is defined and finite (at {name} = {float(points[name][err.index or 0])!r} "
                                  f"{'+-'[sign < 0]} {abs(sign):g}h: {err})") from None


def check_config(cfg: Config) -> None:
    """Every refusal before any array: the memory budget first (the plot range's check walks plot_points points),
    then the graph, its points, the plot range and the finite-difference steps."""
    check_memory(sys.modules[__name__], cfg)
    prepare(cfg)


# --------------------------------------------------------------------------------------------------------
# The run


def _rows(graph: ag.Graph, points: dict, walk: dict, routes: dict) -> list[dict]:
    tangents, adjoints = ag.tangent_table(graph, walk["forward"]), ag.adjoint_table(graph, walk["reverse"])
    rows = []
    for i in range(len(next(iter(points.values())))):
        rows.append({
            "inputs": {k: float(v[i]) for k, v in points.items()},
            "values": {name: float(walk["values"][name][i]) for name, _ in graph.nodes},
            "forward": {k: float(v[i]) for k, v in tangents.items()},
            "reverse": {k: float(v[i]) for k, v in adjoints.items()},
            "local_derivatives": {f"d{c}_d{p}": float(v[i]) for (p, c), v in walk["local"].items()},
            "gradient": {n: {route: float(v[i]) for route, v in r.items()} for n, r in routes.items()},
        })
    return rows


def _tables_markdown(graph: ag.Graph, rows: list[dict], counts: dict) -> str:
    """One table per point (values, tangents per input, adjoints), the edges, every route's gradient, the cost."""
    y, fmt = graph.output, (lambda v: f"{v:.10g}")
    table = lambda header, body: markdown_table(header, body).rstrip("\n")  # noqa: E731
    # level-4 headings: the report includes this file under its own '### autodiff_modes' heading
    parts = [f"#### Forward and reverse mode on {y} = {graph.output_formula()}", ""]
    for row in rows:
        at = ", ".join(f"{k} = {v:g}" for k, v in row["inputs"].items())
        header = ["name", "formula", "value", *(f"d./d{n} (forward pass {i + 1})" for i, n in enumerate(graph.inputs)),
                  f"d{y}/d. (the reverse pass)"]
        body = [[name, graph.formula(name), fmt(row["inputs"].get(name, row["values"].get(name, 0.0))),
                 *(fmt(1.0 * (name == n)) if name in graph.inputs else fmt(row["forward"][f"d{name}_d{n}"])
                   for n in graph.inputs),
                 fmt(1.0) if name == y else fmt(row["reverse"][f"d{y}_d{name}"])] for name in graph.names]
        edges = [[f"{e.parent} -> {e.child}", f"d{e.child}/d{e.parent} = {e.formula}",
                  fmt(row["local_derivatives"][f"d{e.child}_d{e.parent}"])] for e in graph.edges]
        routes = [[f"d{y}/d{n}", *(fmt(v) for v in r.values())] for n, r in row["gradient"].items()]
        parts += [f"#### At {at}", "", table(header, body), "", table(["edge", "local derivative", "value"], edges),
                  "", table(["", *next(iter(row["gradient"].values()))], routes), ""]
    cost = [["forward", counts["forward_passes"], counts["forward_pass_ops"], counts["forward_total_ops"],
             counts["forward_ops_walked"]],
            ["reverse", 1, counts["reverse_pass_ops"], counts["reverse_total_ops"], counts["reverse_ops_walked"]]]
    parts += [f"#### Cost: {len(graph.inputs)} input(s), {counts['edges']} edges: forward mode's passes against "
              "reverse mode's one", "",
              table(["mode", "passes", "chain-rule ops a pass", "total (counted on the graph)", "total (walked)"],
                    [[str(c) for c in r] for r in cost]), "",
              f"Both modes first compute the node values and the local derivatives: "
              f"{counts['value_and_local_derivative_ops']} operations.", ""]
    return "\n".join(parts)


def memory_estimate(cfg: Config) -> dict[str, float]:
    """Bytes by key: the plotted curves (~20 floats a plot point: grid, values and derivatives of every node,
    host copies, plot_data.npz), and a full table per point (values, tangents, adjoints, JSON)."""
    size = len(cfg.graph.nodes) + len(cfg.graph.inputs) + 1
    points = max((len(v) for v in cfg.graph.inputs.values() if isinstance(v, list)), default=1)
    word = memory.word(cfg.precision) + memory.JSON_FLOAT_BYTES
    return {"plot_points": cfg.plot_points * (20 + 2 * size) * 8.0,
            "graph.inputs": points * size * (len(cfg.graph.inputs) + 6) * word}


def main(cfg: Config, ctx: RunContext) -> dict:
    graph, points, draw, closed = prepare(cfg)
    counter: dict[str, int] = {}
    walk = _walk(graph, points, counter)
    routes, jvp, vjp = checks.gradient_routes(graph, points, walk, closed, cfg.fd_step)
    errors = checks.max_errors(graph, walk, routes, jvp, vjp)
    counts = ag.operation_counts(graph)
    counts |= {"forward_ops_walked": counter.get("forward", 0), "reverse_ops_walked": counter.get("reverse", 0)}
    rows = _rows(graph, points, walk, routes)
    ctx.save_text(REPORT_TABLES, _tables_markdown(graph, rows, counts))
    y_of = lambda p: checks.jax_values(graph, p)[graph.output]  # noqa: E731
    x0 = {k: jnp.asarray(v[0]) for k, v in draw.items()}
    ctx.save_text("jaxpr_y.txt", f"{jax.make_jaxpr(y_of)(x0)}\n")
    ctx.save_text("jaxpr_grad_y.txt", f"{jax.make_jaxpr(jax.grad(y_of))(x0)}\n")
    ctx.keep(**_curves(cfg, graph, points, draw, closed, routes), **_drawn(graph, draw))
    ctx.log.info("max relative errors: %s", errors)
    return {
        "graph": {"inputs": list(graph.inputs), "nodes": {n: ex.to_text(t) for n, t in graph.nodes},
                  "output": graph.output, "edges": [[e.parent, e.child, e.formula] for e in graph.edges]},
        "points": rows,
        "max_errors": errors,
        "operation_counts": counts,
        "dtype": str(np.dtype(cfg.precision)),
        "files": {"tables": REPORT_TABLES, "jaxpr_y": "jaxpr_y.txt", "jaxpr_grad_y": "jaxpr_grad_y.txt"},
    }


def _curves(cfg: Config, graph: ag.Graph, points: dict, draw: dict, closed: dict, routes: dict) -> dict:
    """y and dy/d<first input> (the closed form if given, else the reverse walk) along the plot range."""
    first = graph.inputs[0]
    grid = np.linspace(*cfg.graph.plot_range, cfg.plot_points, dtype=np.dtype(cfg.precision))
    on_line = np.ones(points[first].shape, dtype=bool)
    for k in graph.inputs[1:]:
        on_line &= points[k] == draw[k][0]
    walk = _walk(graph, _curve_point(graph, draw, grid))
    with np.errstate(all="ignore"):
        closed_value = ex.evaluate(closed[first], walk["values"], np) if first in closed else None
    derivative = (np.broadcast_to(closed_value, grid.shape) if first in closed else walk["reverse"][first])
    return {"curve_x": grid, "curve_y": walk["values"][graph.output], "curve_derivative": derivative,
            "curve_is_closed_form": first in closed,
            # the configured points that lie on this line (the other inputs at their drawn values)
            "points_x": points[first][on_line], "points_forward": routes[first]["forward"][on_line],
            "points_reverse": routes[first]["reverse"][on_line], "points_jax_grad": routes[first]["jax_grad"][on_line],
            "curve_held": ", ".join(f"{k} = {float(v[0]):g}" for k, v in draw.items() if k != first),
            "curve_input": first, "output_name": graph.output,
            "output_text": graph.output_formula()}


def _drawn(graph: ag.Graph, draw: dict) -> dict[str, np.ndarray]:
    """The graph and, at the drawn point, every name's value, tangents (one column per input) and adjoint."""
    walk = _walk(graph, draw)
    names = graph.names
    return {
        "graph_nodes": np.array(names),
        "graph_inputs": np.array(graph.inputs),
        "graph_formulas": np.array([graph.formula(n) for n in names]),
        "graph_values": [float(walk["values"][n][0]) for n in names],
        "graph_tangents": [[float(walk["forward"][seed][n][0]) for seed in graph.inputs] for n in names],
        "graph_adjoints": [float(walk["reverse"][n][0]) for n in names],
        "draw_at": [float(draw[k][0]) for k in graph.inputs],
        "edge_parents": np.array([e.parent for e in graph.edges]),
        "edge_children": np.array([e.child for e in graph.edges]),
        "edge_partials": np.array([e.formula for e in graph.edges]),
        "edge_values": [float(walk["local"][e.parent, e.child][0]) for e in graph.edges],
    }


if __name__ == "__main__":
    launch("autodiff_modes")
