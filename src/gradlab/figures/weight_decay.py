"""Figures of the Problem 3 experiment (`gradlab.experiments.weight_decay`), drawn from its plot_data.npz."""

from __future__ import annotations

import numpy as np

from gradlab.runner.plotting import Figures, figure

FIGURES = Figures()

LABELS = {
    "sgd_manual": "by hand: (1-λ)φ - α∇L",
    "sgd_l2": "optax.sgd on L~",
    "sgd_optax_decay": "add_decayed_weights(λ/α) + sgd on L",
    "momentum_l2": "sgd(momentum) on L~",
    "momentum_decay": "add_decayed_weights + sgd(momentum) on L",
    "momentum_decoupled": "trace → add_decayed_weights → lr (SGDW)",
    "adam_l2": "adam on L~",
    "adamw": "adamw(weight_decay=λ/α) on L",
}
PANELS = {
    "SGD: all three coincide": ("sgd_l2", "sgd_manual", "sgd_optax_decay"),
    "momentum: coupled decay = L2, decoupled differs": ("momentum_l2", "momentum_decay", "momentum_decoupled"),
    "Adam: AdamW ≠ Adam on L~": ("adam_l2", "adamw"),
}
STYLES = ("-", "--", ":")


@FIGURES.add("trajectories_over_loss.png", "SGD by hand, optax.sgd on L~ and add_decayed_weights+sgd on L trace the "
             "same path, as do coupled momentum and momentum on L~; decoupled momentum (SGDW) and AdamW leave the "
             "L2 path.")
def trajectories_over_loss(data, cfg):
    fig, axes = figure(ncols=3, width=16, height=5)
    for ax, (title, names) in zip(axes, PANELS.items(), strict=True):
        contours = ax.contour(data["contour_phi0"], data["contour_phi1"], data["contour_values"], levels=25,
                              cmap="viridis", alpha=0.6)
        ax.clabel(contours, fontsize=6)
        for name, style in zip(names, STYLES, strict=False):
            path = data[f"path_{name}"]
            ax.plot(path[:, 0], path[:, 1], style, lw=1.6, label=LABELS[name])
        ax.plot(*data["path_sgd_l2"][0], "ko", label="start")
        ax.plot(*data["minimizer"], "r*", ms=12, label="minimizer of L~")
        ax.set(title=title, xlabel="φ0 (intercept)", ylabel="φ1 (slope)")
        ax.legend(loc="best")
    fig.suptitle("Weight decay = gradient descent on L~ = L + λ/(2α)Σφ² for SGD, not for Adam (contours: L~)")
    return fig


@FIGURES.add("per_step_difference.png", "Per-step max |difference| to the matching L2 run: SGD and coupled momentum "
             "stay at the machine-epsilon scale, AdamW and decoupled momentum (SGDW) leave it by orders of magnitude.")
def per_step_difference(data, cfg):
    eps = float(data["machine_epsilon"])
    # identical steps (difference exactly 0, e.g. the shared start) would vanish on a log axis: draw them
    # at a floor far below machine epsilon and say so in the legend
    floor = eps * 1e-3
    fig, ax = figure(width=11, height=5)
    comparisons = list(zip(data["difference_groups"], data["difference_runs"], data["difference_references"],
                           data["differences"], strict=True))
    # series that coincide (both SGD routes sit exactly on the floor) must stay visible: each gets its own marker,
    # line style and a small multiplicative offset on the log axis (stated in the legend), markers staggered
    styles = ["-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1))]
    markers = ["o", "s", "^", "D", "v"]
    for i, (group, run, reference, diff) in enumerate(comparisons):
        shift = 1.6**i
        steps = np.arange(diff.size)
        ax.semilogy(steps, np.maximum(diff, floor) * shift, ls=styles[i % len(styles)], lw=1.4,
                    marker=markers[i % len(markers)], markevery=(i * max(1, diff.size // 60), max(1, diff.size // 12)),
                    ms=5, label=f"{group}: {LABELS[run]} vs {LABELS[reference]}" + (f" (x{shift:.2g})" if i else ""))
    ax.axhline(eps, color="k", ls="--", lw=0.8, label=f"machine epsilon ({eps:.1e})")
    ax.axhline(floor, color="gray", ls=":", lw=0.8, label="exactly 0 (drawn at this floor)")
    ax.set(title="SGD with weight decay stays on the L2 path to round-off; AdamW and SGDW leave it",
           xlabel="step t", ylabel="max_k |φ_k(t) − φ_k,L2(t)| (series offset, see legend)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    return fig
