"""Figures of the Problems 4-6 experiment (`gradlab.experiments.receptive_field`), drawn from its plot_data.npz."""

from __future__ import annotations

import numpy as np

from gradlab.runner.plotting import Figures, figure

FIGURES = Figures()


@FIGURES.add("receptive_field.png", "For each layer, the input positions with nonzero gradient of one interior unit "
             "span exactly the analytic receptive field r_l = r_{l-1} + (k_eff - 1) j_{l-1}.")
def receptive_field(data, cfg):
    analytic, measured, first = data["analytic"], data["measured"], data["first"]
    layers = len(analytic)
    fig, ax = figure(width=7.5, height=1.2 + 0.7 * layers)
    lo = first.min() - 2
    hi = (first + measured).max() + 1
    for row, grad in enumerate(data["gradients"]):
        level = layers - row
        positions = np.flatnonzero(grad > 0)
        ax.scatter(positions, np.full(positions.shape, level), marker="s", s=18, color="C0", zorder=3)
        # the analytic field, drawn from the first measured position: it must end at the last one
        start = first[row]
        ax.plot([start - 0.4, start + analytic[row] - 0.6], [level - 0.25] * 2, color="C3", linewidth=2)
        ax.text(hi + 0.5, level, f"r = {analytic[row]} (measured {measured[row]})", va="center")
    ax.set_yticks(range(1, layers + 1), [f"layer {layers - i}" for i in range(layers)])
    ax.set_xlim(lo, hi + 0.2 * (hi - lo) + 8)
    ax.set_ylim(0.4, layers + 0.6)
    ax.set(xlabel="input position (blue: nonzero d unit / d input; red: analytic receptive field)",
           title=f"Input positions that influence one unit per layer, stack {data['stack']}")
    return fig
