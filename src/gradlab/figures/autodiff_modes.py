"""Figures of the Problems 9 and 10 experiment (`gradlab.experiments.autodiff_modes`), from its plot_data.npz."""

from __future__ import annotations

import numpy as np

from gradlab.runner.plotting import Figures, figure

FIGURES = Figures()


@FIGURES.add("y_and_derivative.png", "y and dy/dx along the first input: the hand-written forward and reverse "
             "tables and jax.grad sit on the closed form (or the reverse walk where none is given) at every point")
def y_and_derivative(data, cfg):
    fig, (ax_y, ax_d) = figure(2, width=11.0, height=4.2)
    x, y = str(data["curve_input"]), str(data["output_name"])
    text = str(data["output_text"])
    title = f"{y} = {text}" if len(text) <= 60 else f"{y} = {text[:57]}..."
    held = str(data["curve_held"])
    title += f" ({held})" if held else ""

    def log_scale(values) -> bool:  # positive and spanning more than two decades
        return bool(np.all(values > 0)) and float(np.max(values) / np.min(values)) > 100

    positive = log_scale(data["curve_y"]) and log_scale(data["curve_derivative"])
    plot = ax_y.semilogy if positive else ax_y.plot
    plot(data["curve_x"], data["curve_y"], label=f"{y}({x})")
    ax_y.set(xlabel=x, ylabel=y + (" (log scale)" if positive else ""), title=title)
    plot = ax_d.semilogy if positive else ax_d.plot
    reference = "closed form" if bool(data["curve_is_closed_form"]) else "reverse mode along the range"
    plot(data["curve_x"], data["curve_derivative"], label=reference)
    xs = data["points_x"]
    plot(xs, data["points_forward"], "o", mfc="none", ms=9, label="forward mode")
    plot(xs, data["points_reverse"], "x", ms=7, label="reverse mode")
    plot(xs, data["points_jax_grad"], "+", ms=11, label="jax.grad")
    ax_d.set(xlabel=x, ylabel=f"d{y}/d{x}" + (" (log scale)" if positive else ""),
             title=f"Forward mode, reverse mode and jax.grad all land on the {reference}")
    for ax in (ax_y, ax_d):
        ax.legend()
    return fig


MAX_EDGE_LABELS = 12  # more edges than this: each edge's derivative is written in its child's box


def _edge_text(formula, value: float) -> str:
    """'2 * f1 = 3.297', or just '1' where the formula is a number."""
    try:
        float(str(formula))
    except ValueError:
        return f"{formula} = {value:.4g}"
    return str(formula)


def layered_layout(nodes, parents, children, dx: float = 2.6, dy: float = 1.3) -> dict[str, tuple[float, float]]:
    """Node positions: column = longest path from an input; the nodes of a column sit 2 dy apart, ordered by the
    mean height of their parents (fewer crossings), and a lone node that an edge jumps over (f2, jumped by
    f1 -> f3) sits at +dy so that the edge passes below it."""
    depth = dict.fromkeys(nodes, 0)
    for _ in nodes:  # relax along the edges until the longest paths are found (the graph is small and acyclic)
        for parent, child in zip(parents, children, strict=True):
            depth[child] = max(depth[child], depth[parent] + 1)
    columns: dict[int, list[str]] = {}
    for node in nodes:
        columns.setdefault(depth[node], []).append(node)
    spans = [(depth[p], depth[c]) for p, c in zip(parents, children, strict=True)]
    positions: dict[str, tuple[float, float]] = {}
    for column in sorted(columns):
        members = columns[column]
        heights = {m: [positions[p][1] for p, c in zip(parents, children, strict=True) if c == m] for m in members}
        members = sorted(members, key=lambda m: -np.mean(heights[m]) if heights[m] else 0.0)  # stable: ties keep order
        jumped = any(low < column < high for low, high in spans)
        n = len(members)  # a column of n nodes, 2 dy apart, centred (two nodes at +-dy)
        rows = [dy if jumped else 0.0] if n == 1 else ((n - 1) / 2 - np.arange(n)) * 2 * dy
        positions.update({node: (column * dx, float(row)) for node, row in zip(members, rows, strict=True)})
    return positions


def _fit_boxes(ax, boxes, renderer) -> None:
    """Widen the axes' limits until every node box lies inside them (tall boxes of a many-input graph)."""
    for _ in range(3):
        inside = ax.get_window_extent(renderer)
        extents = [box.get_bbox_patch().get_window_extent(renderer) for box in boxes]
        over = [max(0.0, inside.y0 - min(e.y0 for e in extents)), max(0.0, max(e.y1 for e in extents) - inside.y1),
                max(0.0, inside.x0 - min(e.x0 for e in extents)), max(0.0, max(e.x1 for e in extents) - inside.x1)]
        if max(over) <= 0:
            return
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        per_x, per_y = (x1 - x0) / inside.width, (y1 - y0) / inside.height  # data units per pixel
        pad = 4.0  # pixels
        ax.set_ylim(y0 - (over[0] + pad) * per_y * 1.2, y1 + (over[1] + pad) * per_y * 1.2)
        ax.set_xlim(x0 - (over[2] + pad) * per_x * 1.2, x1 + (over[3] + pad) * per_x * 1.2)
        ax.figure.canvas.draw()


def _slab(p0: np.ndarray, p1: np.ndarray, box) -> tuple[float, float]:
    """The parameters t at which the segment p0 + t (p1 - p0) enters and leaves an axis-aligned box."""
    low, high = -np.inf, np.inf
    for d, (lo, hi) in enumerate(((box.x0, box.x1), (box.y0, box.y1))):
        if p1[d] != p0[d]:
            t_lo, t_hi = (lo - p0[d]) / (p1[d] - p0[d]), (hi - p0[d]) / (p1[d] - p0[d])
            low, high = max(low, min(t_lo, t_hi)), min(high, max(t_lo, t_hi))
    return low, high


@FIGURES.add("computational_graph.png", "the graph at graph.draw_at, each node with its value, forward tangents "
             "df/dx_j (one pass per input) and reverse adjoint dy/df (one pass), each edge with its local derivative; "
             "dy/dx_j at the output's tangent equals the adjoint at x_j")
def computational_graph(data, cfg):
    nodes = [str(n) for n in data["graph_nodes"]]
    parents, children = [str(p) for p in data["edge_parents"]], [str(c) for c in data["edge_children"]]
    inputs = [str(n) for n in data["graph_inputs"]]
    position = layered_layout(nodes, parents, children)
    columns = len({x for x, _ in position.values()})
    rows = max(sum(1 for p in position.values() if p[0] == x) for x, _ in position.values())
    lines = 3 + len(inputs) + (max(children.count(n) for n in nodes) if len(parents) > MAX_EDGE_LABELS else 0)
    fig, ax = figure(width=3.4 * columns + 1.0, height=max(5.2, (0.4 + 0.17 * lines) * rows))
    xs, ys = zip(*position.values(), strict=True)
    ax.set(xlim=(min(xs) - 0.9, max(xs) + 0.9), ylim=(min(ys) - 0.7, max(ys) + 0.7), xticks=[], yticks=[])
    ax.grid(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    # A small graph gets each edge's derivative beside its arrow; past MAX_EDGE_LABELS edges those labels would
    # crowd the arrows, so each node's box lists the derivatives of its incoming edges instead.
    in_boxes = len(parents) > MAX_EDGE_LABELS
    incoming = {node: "".join(f"\n∂{node}/∂{p} = {_edge_text(f, v)}" for p, c, f, v in zip(
        parents, children, data["edge_partials"], data["edge_values"], strict=True) if c == node) for node in nodes}
    boxes = {}
    for node, formula, value, tangent, adjoint in zip(nodes, data["graph_formulas"], data["graph_values"],
                                                      data["graph_tangents"], data["graph_adjoints"], strict=True):
        head = f"{node} ({formula})" if node in inputs else f"{node} = {formula}"
        forward = "".join(f"\nd{node}/d{seed} = {t:.5g}" for seed, t in zip(inputs, tangent, strict=True))
        label = f"{head}\nvalue = {value:.5g}{forward}\nd{nodes[-1]}/d{node} = {adjoint:.5g}"
        label += incoming[node] if in_boxes else ""
        boxes[node] = ax.text(*position[node], label, ha="center", va="center", fontsize=7.5,
                              bbox={"boxstyle": "round", "fc": "white", "ec": "tab:blue"})
    fig.canvas.draw()  # places the boxes, whose extents clip the arrows and centre the labels
    renderer = fig.canvas.get_renderer()
    _fit_boxes(ax, boxes.values(), renderer)
    for parent, child, partial, local in zip(parents, children, data["edge_partials"], data["edge_values"],
                                             strict=True):
        start, end = boxes[parent].get_bbox_patch(), boxes[child].get_bbox_patch()
        ax.annotate("", xy=position[child], xytext=position[parent],
                    arrowprops={"arrowstyle": "-|>", "color": "0.4", "patchA": start, "patchB": end,
                                "shrinkA": 2, "shrinkB": 2})
        if in_boxes:
            continue
        # The label goes at the middle of the arrow's visible part (between the two boxes), along the arrow and
        # a few points to its left: above it, as every edge points rightwards. Angle and offset are taken on
        # screen, where the axes are not square, so the label never covers its arrow.
        p0, p1 = ax.transData.transform([position[parent], position[child]])
        leave = _slab(p0, p1, start.get_window_extent(renderer))[1]
        enter = _slab(p0, p1, end.get_window_extent(renderer))[0]
        middle = ax.transData.inverted().transform(p0 + (leave + enter) / 2 * (p1 - p0))
        (dx, dy) = p1 - p0
        ax.annotate(f"∂{child}/∂{parent} = {_edge_text(partial, local)}", xy=middle,
                    xytext=3 * np.array([-dy, dx]) / np.hypot(dx, dy),
                    textcoords="offset points", rotation=np.degrees(np.arctan2(dy, dx)), rotation_mode="anchor",
                    ha="center", va="bottom", fontsize=7, color="tab:purple")
    at = ", ".join(f"{k} = {v:g}" for k, v in zip(inputs, data["draw_at"], strict=True))
    y = nodes[-1]
    gradient = ", ".join(f"d{y}/d{k} = {g:.6g}" for k, g in zip(inputs, data["graph_tangents"][-1], strict=True))
    ax.set_title(f"Problems 9/10 at {at}: forward tangents (left to right, one pass per input) and reverse adjoints "
                 f"(right to left, one pass) both give {gradient}", wrap=True)
    return fig
