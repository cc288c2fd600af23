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

from gradlab.problems import autodiff_graph as graph
from gradlab.runner.config import checked, each, in_range, increasing_pair
from gradlab.runner.plotting import figure
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


@dataclass
class Config(BaseConfig):
    # points at which both tables are written out and checked
    x: list[float] = each(_is_number, "a finite number", [-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5])
    # relative step of the central finite difference, h = fd_step * max(1, |x|)
    fd_step: float = in_range(1e-12, 1.0, 1e-5)
    # the point whose values, tangents and adjoints annotate the drawing of the graph
    annotate_x: float = checked(0.5, _is_number, "a finite number")
    # y and dy/dx are plotted over this range of x
    plot_range: list[float] = increasing_pair([-3.0, 1.5])
    plot_points: int = checked(400, lambda n: isinstance(n, int) and n >= 2, "an integer >= 2")


def _refuse_overflow(points, dtype) -> None:
    """Raise naming x and the node for the first point whose tables would hold inf in `dtype`."""
    log_max = math.log(float(jnp.finfo(dtype).max))
    # f3 = e^x + e^2x = log(max) solved for x: e^x = (-1 + sqrt(1 + 4 log max)) / 2
    f4_limit = math.log((-1.0 + math.sqrt(1.0 + 4.0 * log_max)) / 2.0)
    for x in points:
        where = graph.first_overflow(float(x), dtype)
        if where is not None:
            hint = ""
            if where.startswith("node f4"):
                hint = f"; f4 = exp(f3) is finite only for x < {f4_limit:.4f}"
            raise RunFailed(f"x={float(x)!r}: {where}{hint}")


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
    rel = graph.max_relative_error
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


def _plot_curves(ctx: RunContext, cfg: Config, rows: list[dict]) -> None:
    grid = jnp.linspace(*cfg.plot_range, cfg.plot_points)
    fig, (ax_y, ax_d) = figure(2, width=11.0, height=4.2)
    ax_y.semilogy(grid, graph.y_of_x(grid), label="y(x)")
    ax_y.set(xlabel="x", ylabel="y (log scale)", title="y = exp(e^x + e^2x) + sin(e^x + e^2x)")
    ax_d.semilogy(grid, graph.closed_form_derivative(grid), label="closed form f1 (1 + 2 f1)(f4 + cos f3)")
    xs = [r["x"] for r in rows]
    ax_d.semilogy(xs, [r["forward"]["dy_dx"] for r in rows], "o", mfc="none", ms=9, label="forward mode")
    ax_d.semilogy(xs, [r["reverse"]["dy_dx"] for r in rows], "x", ms=7, label="reverse mode")
    ax_d.semilogy(xs, [r["jax_grad"] for r in rows], "+", ms=11, label="jax.grad")
    ax_d.set(
        xlabel="x",
        ylabel="dy/dx (log scale)",
        title="Forward mode, reverse mode and jax.grad all land on the closed form",
    )
    for ax in (ax_y, ax_d):
        ax.legend()
    ctx.save_figure(
        fig,
        "y_and_derivative.png",
        caption="y and dy/dx over x: the hand-written forward and reverse tables and jax.grad sit on the "
        "closed form dy/dx = f1 (1 + 2 f1)(f4 + cos f3) at every configured x",
    )


_POSITIONS = {
    "x": (0.0, 0.0),
    "f1": (2.2, 0.0),
    "f2": (4.4, 1.3),
    "f3": (6.6, 0.0),
    "f4": (8.8, 1.3),
    "f5": (8.8, -1.3),
    "y": (11.0, 0.0),
}


def _plot_graph(ctx: RunContext, x: float) -> None:
    xs = jnp.asarray(x)
    values = {"x": x, **{k: float(v) for k, v in graph.forward_values(xs).items()}}
    tangents = {"x": 1.0, **{n: float(graph.forward_tangents(xs)[f"d{n}_dx"]) for n in graph.NODES}}
    # dy/dy = 1 seeds the reverse pass; the table's keys dy_df3, dy_dx, ... name the node after "dy_d"
    adjoints = {"y": 1.0, **{k.removeprefix("dy_d"): float(v) for k, v in graph.reverse_adjoints(xs).items()}}
    fig, ax = figure(width=12.0, height=5.2)
    for parent, child, local in graph.EDGES:
        (x0, y0), (x1, y1) = _POSITIONS[parent], _POSITIONS[child]
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops={"arrowstyle": "-|>", "color": "0.4", "shrinkA": 36, "shrinkB": 36},
        )
        ax.text(
            (x0 + x1) / 2,
            (y0 + y1) / 2,
            f"∂{child}/∂{parent} = {local}",
            ha="center",
            va="center",
            fontsize=7,
            color="tab:purple",
            bbox={"fc": "white", "ec": "none", "pad": 1.0},
        )
    for node, (px, py) in _POSITIONS.items():
        head = "x (input)" if node == "x" else f"{node} = {graph.NODE_FORMULAS[node]}"
        label = (
            f"{head}\n"
            f"value = {values[node]:.5g}\n"
            f"d{node}/dx = {tangents[node]:.5g}\n"
            f"dy/d{node} = {adjoints[node]:.5g}"
        )
        ax.text(
            px,
            py,
            label,
            ha="center",
            va="center",
            fontsize=7.5,
            bbox={"boxstyle": "round", "fc": "white", "ec": "tab:blue"},
        )
    ax.set(xlim=(-0.9, 11.9), ylim=(-2.0, 2.0), xticks=[], yticks=[])
    ax.grid(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_title(
        f"Problems 9/10 at x = {x:g}: forward tangents (left to right) and reverse adjoints (right to left) "
        f"both give dy/dx = {tangents['y']:.6g}"
    )
    ctx.save_figure(
        fig,
        "computational_graph.png",
        caption=f"the graph x -> f1..f5 -> y at x = {x:g}, each node with its value, forward tangent "
        "df/dx and reverse adjoint dy/df; dy/dx at x equals dy/dx at y",
    )


def main(cfg: Config, ctx: RunContext) -> dict:
    dtype = jnp.asarray(0.0).dtype
    _refuse_overflow([*cfg.x, cfg.annotate_x, cfg.plot_range[1]], dtype)
    rows = [_table_at(float(x), cfg.fd_step) for x in cfg.x]
    for row in rows:
        _refuse_non_finite(row)
    errors = _max_errors(np.asarray(cfg.x, dtype=float), rows)
    x0 = jnp.asarray(cfg.annotate_x)
    ctx.save_text("jaxpr_y.txt", f"{jax.make_jaxpr(graph.y_of_x)(x0)}\n")
    ctx.save_text("jaxpr_grad_y.txt", f"{jax.make_jaxpr(jax.grad(graph.y_of_x))(x0)}\n")
    _plot_curves(ctx, cfg, rows)
    _plot_graph(ctx, cfg.annotate_x)
    ctx.log.info("max relative errors: %s", errors)
    return {
        "points": rows,
        "max_errors": errors,
        "dtype": str(dtype),
        "files": {"jaxpr_y": "jaxpr_y.txt", "jaxpr_grad_y": "jaxpr_grad_y.txt"},
    }


if __name__ == "__main__":
    launch("autodiff_modes")
