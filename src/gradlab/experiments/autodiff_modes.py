"""Problems 9 and 10: reverse and forward mode by hand on y = exp(e^x + e^2x) + sin(e^x + e^2x).

python experiments/autodiff_modes.py                          # defaults: configs/autodiff_modes.yaml
python experiments/autodiff_modes.py 'x=[-1.0,0.0,2.5]' annotate_x=2.5
python experiments/autodiff_modes.py -m precision=float32,float64
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.experiments import memory
from gradlab.problems import autodiff_graph as graph
from gradlab.problems.numerics import max_rel_error
from gradlab.runner.config import ConfigError, checked, finite, finite_list, in_range, increasing_pair
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch


@dataclass
class Config(BaseConfig):
    x: list[float] = finite_list()  # points at which both tables are written out and checked
    fd_step: float = in_range(1e-12, 1.0)  # relative step of the central difference, h = fd_step * max(1, |x|)
    annotate_x: float = finite()  # the point whose values, tangents and adjoints annotate the graph drawing
    plot_range: list[float] = increasing_pair()  # y and dy/dx are plotted over this range of x
    plot_points: int = checked(lambda n: isinstance(n, int) and n >= 2, "an integer >= 2")


def _refuse_overflow(cfg: Config, dtype) -> None:
    """A ConfigError naming the key (x[i], annotate_x, plot_range) of the first point whose tables would hold inf
    in `dtype` (only large x overflow: of plot_range, its upper end)."""
    log_max = math.log(float(jnp.finfo(dtype).max))
    # f3 = e^x + e^2x = log(max) solved for x: e^x = (-1 + sqrt(1 + 4 log max)) / 2
    f4_limit = math.log((-1.0 + math.sqrt(1.0 + 4.0 * log_max)) / 2.0)
    points = [*((f"x[{i}]", x, x) for i, x in enumerate(cfg.x)), ("annotate_x", cfg.annotate_x, cfg.annotate_x),
              ("plot_range", cfg.plot_range, cfg.plot_range[1])]
    for key, value, x in points:
        where = graph.first_overflow(float(x), dtype)
        if where is not None:
            end = "an upper end " if key == "plot_range" else ""
            # f4 = exp(f3) is the first node to overflow as x grows: every node overflow lies beyond its limit
            limit = f"{end}x < {f4_limit:.4f}" if where.startswith("node") else "a point whose tables are finite"
            raise ConfigError(key, value, f"{limit} in {jnp.dtype(dtype).name} (at x={float(x)!r} {where})")


def _refuse_non_finite(row: dict) -> None:
    """A last guard (e.g. the finite difference stepping past the overflow point): no inf in a table."""
    flat = {**row["values"], **row["forward"], **{f"reverse {k}": v for k, v in row["reverse"].items()}}
    flat.update({k: v for k, v in row.items() if isinstance(v, float)})
    bad = [name for name, value in flat.items() if not math.isfinite(value)]
    if bad:
        raise RunFailed(f"x={row['x']!r}: {', '.join(bad)} not finite in {jnp.asarray(0.0).dtype}")


def _table_at(x: float, fd_step: float) -> dict:
    xs = jnp.asarray(x)
    to_float = lambda d: {k: float(v) for k, v in d.items()}  # noqa: E731
    _, vjp_dy_dx = jax.vjp(graph.y_of_x, xs)
    return {
        "x": x,
        "values": to_float(graph.forward_values(xs)),
        "forward": to_float(graph.forward_tangents(xs)),
        "reverse": to_float(graph.reverse_adjoints(xs)),
        "closed_form": float(graph.closed_form_derivative(xs)),
        "jax_grad": float(jax.grad(graph.y_of_x)(xs)),
        "jax_jvp": float(jax.jvp(graph.y_of_x, (xs,), (jnp.ones_like(xs),))[1]),
        "jax_vjp": float(vjp_dy_dx(jnp.ones_like(xs))[0]),
        "finite_difference": float(graph.central_difference(xs, fd_step)),
    }


def _max_errors(xs: np.ndarray, rows: list[dict]) -> dict:
    """Max relative errors over all x of each table entry against its independent route."""
    tangents_jax = graph.jax_tangents(jnp.asarray(xs))
    adjoints_jax = graph.jax_adjoints(jnp.asarray(xs))
    forward = {k: np.array([r["forward"][k] for r in rows]) for k in graph.TANGENT_ORDER}
    reverse = {k: np.array([r["reverse"][k] for r in rows]) for k in graph.ADJOINT_ORDER}
    column = lambda key: np.array([r[key] for r in rows])  # noqa: E731
    rel = lambda approx, reference: float(max_rel_error(approx, reference))  # noqa: E731
    return {
        "forward_vs_jax_jvp": max(rel(forward[k], tangents_jax[k]) for k in graph.TANGENT_ORDER),
        "reverse_vs_jax_vjp": max(rel(reverse[k], adjoints_jax[k]) for k in graph.ADJOINT_ORDER),
        "forward_vs_closed_form": rel(forward["dy_dx"], column("closed_form")),
        "reverse_vs_closed_form": rel(reverse["dy_dx"], column("closed_form")),
        "forward_vs_reverse": rel(forward["dy_dx"], reverse["dy_dx"]),
        "jax_grad_vs_closed_form": rel(column("jax_grad"), column("closed_form")),
        "finite_difference_vs_closed_form": rel(column("finite_difference"), column("closed_form")),
        "kind": "relative: max over x of |a - b| / |b|",
    }


def _curves(cfg: Config, rows: list[dict]) -> dict[str, np.ndarray]:
    """y and the closed-form dy/dx over plot_range, and each mode's dy/dx at the configured points."""
    grid = jnp.linspace(*cfg.plot_range, cfg.plot_points)
    return {
        "curve_x": grid,
        "curve_y": graph.y_of_x(grid),
        "curve_dy_dx": graph.closed_form_derivative(grid),
        "points_x": [r["x"] for r in rows],
        "points_forward": [r["forward"]["dy_dx"] for r in rows],
        "points_reverse": [r["reverse"]["dy_dx"] for r in rows],
        "points_jax_grad": [r["jax_grad"] for r in rows],
    }


def _annotated_graph(x: float) -> dict[str, np.ndarray]:
    """The graph (nodes, edges with their local partials) and every node's value, tangent and adjoint at x."""
    xs = jnp.asarray(x)
    nodes = (graph.INPUT, *graph.NODES)
    values = {graph.INPUT: xs, **graph.forward_values(xs)}
    tangents = graph.forward_tangents(xs)
    adjoints = graph.reverse_adjoints(xs)
    return {
        "graph_nodes": np.array(nodes),
        "graph_formulas": np.array([graph.NODE_FORMULAS[n] for n in nodes]),
        "graph_values": [values[n] for n in nodes],
        # dx/dx = 1 seeds the forward pass, dy/dy = 1 the reverse pass
        "graph_tangents": [1.0 if n == graph.INPUT else tangents[f"d{n}_dx"] for n in nodes],
        "graph_adjoints": [1.0 if n == graph.NODES[-1] else adjoints[f"dy_d{n}"] for n in nodes],
        "edge_parents": np.array([parent for parent, _, _ in graph.EDGES]),
        "edge_children": np.array([child for _, child, _ in graph.EDGES]),
        "edge_partials": np.array([local for _, _, local in graph.EDGES]),
    }


def memory_estimate(cfg: Config) -> dict[str, float]:
    """Bytes by the key that sizes them: the plotted curves, ~20 floats per plot point (the grid, y, dy/dx and
    their intermediates, host copies, plot_data.npz and the figure's paths: measured 160 bytes a point between
    plot_points = 3e6 and 1e7); the tables are a few floats per x."""
    return {"plot_points": cfg.plot_points * 20 * 8.0,
            "x": len(cfg.x) * 60 * (memory.word(cfg.precision) + memory.JSON_FLOAT_BYTES)}


def main(cfg: Config, ctx: RunContext) -> dict:
    dtype = jnp.asarray(0.0).dtype
    _refuse_overflow(cfg, dtype)
    rows = [_table_at(float(x), cfg.fd_step) for x in cfg.x]
    for row in rows:
        _refuse_non_finite(row)
    errors = _max_errors(np.asarray(cfg.x, dtype=float), rows)
    x0 = jnp.asarray(cfg.annotate_x)
    ctx.save_text("jaxpr_y.txt", f"{jax.make_jaxpr(graph.y_of_x)(x0)}\n")
    ctx.save_text("jaxpr_grad_y.txt", f"{jax.make_jaxpr(jax.grad(graph.y_of_x))(x0)}\n")
    ctx.keep(**_curves(cfg, rows), **_annotated_graph(cfg.annotate_x))
    ctx.log.info("max relative errors: %s", errors)
    return {
        "points": rows,
        "max_errors": errors,
        "dtype": str(dtype),
        "files": {"jaxpr_y": "jaxpr_y.txt", "jaxpr_grad_y": "jaxpr_grad_y.txt"},
    }


if __name__ == "__main__":
    launch("autodiff_modes")
