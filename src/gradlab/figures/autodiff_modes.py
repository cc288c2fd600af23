"""Figures of the Problems 9 and 10 experiment (`gradlab.experiments.autodiff_modes`), from its plot_data.npz."""

from __future__ import annotations

import numpy as np

from gradlab.runner.plotting import Figures, figure

FIGURES = Figures()


@FIGURES.add("y_and_derivative.png", "y and dy/dx over x: the hand-written forward and reverse tables and jax.grad "
             "sit on the closed form dy/dx = f1 (1 + 2 f1)(f4 + cos f3) at every configured x")
def y_and_derivative(data, cfg):
    fig, (ax_y, ax_d) = figure(2, width=11.0, height=4.2)
    ax_y.semilogy(data["curve_x"], data["curve_y"], label="y(x)")
    ax_y.set(xlabel="x", ylabel="y (log scale)", title="y = exp(e^x + e^2x) + sin(e^x + e^2x)")
    ax_d.semilogy(data["curve_x"], data["curve_dy_dx"], label="closed form f1 (1 + 2 f1)(f4 + cos f3)")
    xs = data["points_x"]
    ax_d.semilogy(xs, data["points_forward"], "o", mfc="none", ms=9, label="forward mode")
    ax_d.semilogy(xs, data["points_reverse"], "x", ms=7, label="reverse mode")
    ax_d.semilogy(xs, data["points_jax_grad"], "+", ms=11, label="jax.grad")
    ax_d.set(xlabel="x", ylabel="dy/dx (log scale)",
             title="Forward mode, reverse mode and jax.grad all land on the closed form")
    for ax in (ax_y, ax_d):
        ax.legend()
    return fig


def layered_layout(nodes, parents, children, dx: float = 2.2, dy: float = 1.3) -> dict[str, tuple[float, float]]:
    """Node positions: column = longest path from the input; two nodes of a column sit at +-dy, and a lone node
    that an edge jumps over (f2, jumped by f1 -> f3) sits at +dy so that the edge passes below it."""
    depth = dict.fromkeys(nodes, 0)
    for _ in nodes:  # relax along the edges until the longest paths are found (the graph is tiny and acyclic)
        for parent, child in zip(parents, children, strict=True):
            depth[child] = max(depth[child], depth[parent] + 1)
    columns: dict[int, list[str]] = {}
    for node in nodes:
        columns.setdefault(depth[node], []).append(node)
    spans = [(depth[p], depth[c]) for p, c in zip(parents, children, strict=True)]
    positions = {}
    for column, members in columns.items():
        jumped = any(low < column < high for low, high in spans)
        rows = [dy if jumped else 0.0] if len(members) == 1 else np.linspace(dy, -dy, len(members))
        positions.update({node: (column * dx, float(row)) for node, row in zip(members, rows, strict=True)})
    return positions


def _slab(p0: np.ndarray, p1: np.ndarray, box) -> tuple[float, float]:
    """The parameters t at which the segment p0 + t (p1 - p0) enters and leaves an axis-aligned box."""
    low, high = -np.inf, np.inf
    for d, (lo, hi) in enumerate(((box.x0, box.x1), (box.y0, box.y1))):
        if p1[d] != p0[d]:
            t_lo, t_hi = (lo - p0[d]) / (p1[d] - p0[d]), (hi - p0[d]) / (p1[d] - p0[d])
            low, high = max(low, min(t_lo, t_hi)), min(high, max(t_lo, t_hi))
    return low, high


@FIGURES.add("computational_graph.png", "the graph x -> f1..f5 -> y at annotate_x, each node with its value, forward "
             "tangent df/dx and reverse adjoint dy/df; dy/dx at x equals dy/dx at y")
def computational_graph(data, cfg):
    nodes = [str(n) for n in data["graph_nodes"]]
    parents, children = [str(p) for p in data["edge_parents"]], [str(c) for c in data["edge_children"]]
    position = layered_layout(nodes, parents, children)
    fig, ax = figure(width=13.5, height=5.2)
    xs, ys = zip(*position.values(), strict=True)
    ax.set(xlim=(min(xs) - 0.9, max(xs) + 0.9), ylim=(min(ys) - 0.7, max(ys) + 0.7), xticks=[], yticks=[])
    ax.grid(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    boxes = {}
    for node, formula, value, tangent, adjoint in zip(nodes, data["graph_formulas"], data["graph_values"],
                                                      data["graph_tangents"], data["graph_adjoints"], strict=True):
        head = f"{node} ({formula})" if node == nodes[0] else f"{node} = {formula}"
        label = f"{head}\nvalue = {value:.5g}\nd{node}/dx = {tangent:.5g}\ndy/d{node} = {adjoint:.5g}"
        boxes[node] = ax.text(*position[node], label, ha="center", va="center", fontsize=7.5,
                              bbox={"boxstyle": "round", "fc": "white", "ec": "tab:blue"})
    fig.canvas.draw()  # places the boxes, whose extents clip the arrows and centre the labels
    renderer = fig.canvas.get_renderer()
    for parent, child, partial in zip(parents, children, data["edge_partials"], strict=True):
        start, end = boxes[parent].get_bbox_patch(), boxes[child].get_bbox_patch()
        ax.annotate("", xy=position[child], xytext=position[parent],
                    arrowprops={"arrowstyle": "-|>", "color": "0.4", "patchA": start, "patchB": end,
                                "shrinkA": 2, "shrinkB": 2})
        # The label goes at the middle of the arrow's visible part (between the two boxes), along the arrow and
        # a few points to its left: above it, as every edge points rightwards. Angle and offset are taken on
        # screen, where the axes are not square, so the label never covers its arrow.
        p0, p1 = ax.transData.transform([position[parent], position[child]])
        leave = _slab(p0, p1, start.get_window_extent(renderer))[1]
        enter = _slab(p0, p1, end.get_window_extent(renderer))[0]
        middle = ax.transData.inverted().transform(p0 + (leave + enter) / 2 * (p1 - p0))
        (dx, dy) = p1 - p0
        ax.annotate(f"∂{child}/∂{parent} = {partial}", xy=middle, xytext=3 * np.array([-dy, dx]) / np.hypot(dx, dy),
                    textcoords="offset points", rotation=np.degrees(np.arctan2(dy, dx)), rotation_mode="anchor",
                    ha="center", va="bottom", fontsize=7, color="tab:purple")
    x, dy_dx = cfg.annotate_x, data["graph_tangents"][-1]
    ax.set_title(f"Problems 9/10 at x = {x:g}: forward tangents (left to right) and reverse adjoints (right to left) "
                 f"both give dy/dx = {dy_dx:.6g}")
    return fig
