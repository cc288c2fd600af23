"""Figures of the logistic-regression benchmark (`gradlab.experiments.bench_logreg`), from its plot_data.npz."""

from __future__ import annotations

import numpy as np

from gradlab.runner.plotting import Figures, figure

FIGURES = Figures()


def _ratio(data, name: str) -> float | None:
    names = list(data["target_names"])
    if name not in names:
        return None
    value = float(data["target_values"][names.index(name)])
    return None if np.isnan(value) else value


def _bars(ax, data, key: str, ylabel: str) -> None:
    names, labels = list(data["implementations"]), list(data["size_labels"])
    width = 0.8 / len(labels)
    for i, (label, n) in enumerate(zip(labels, data["size_n"], strict=True)):
        ax.bar(np.arange(len(names)) + i * width, data[key][i], width, label=f"{label} (n={int(n):,})")
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(names)) + width * (len(labels) - 1) / 2, names, rotation=40, ha="right")
    ax.set(ylabel=ylabel)
    ax.legend()


def _targets(ax, data) -> None:
    """Each target as value / threshold on a log axis: right of the line at 1 is met."""
    names = list(data["target_names"])
    ratio = data["target_values"] / data["target_goals"]
    met = data["target_met"]
    colors = ["tab:green" if m == 1 else "tab:red" if m == 0 else "lightgray" for m in met]
    rows, shown = np.arange(len(names)), np.where(np.isnan(ratio), 1.0, ratio)
    ax.barh(rows, shown, color=colors)
    for row, (value, goal, m) in enumerate(zip(data["target_values"], data["target_goals"], met, strict=True)):
        text = "not measured" if np.isnan(value) else f"{value:.3g} (target {goal:g})"
        ax.annotate(text + ("" if np.isnan(m) else " met" if m else " missed"), (max(shown[row], 1.0), row),
                    xytext=(4, 0), textcoords="offset points", va="center", fontsize=7)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlim(min(0.5, np.nanmin(shown) / 1.5), max(2.0, np.nanmax(shown)) * 6)
    ax.set_yticks(rows, names, fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel="measured / target (>= 1: met; gray: not measured)", title="Targets")


@FIGURES.add("time_per_step_and_to_tolerance.png",
             "Time per step (GD step, Newton or L-BFGS iteration) and time to the gradient tolerance of every "
             "implementation at both data sizes, log scale, all measured in one run, alternating; below, every "
             "target of the benchmark as measured value over its threshold (green met, red missed, gray not "
             "measured).")
def time_per_step_and_to_tolerance(data, cfg):
    fig, axes = figure(2, 2, width=13, height=10, gridspec_kw={"height_ratios": [1.1, 1]})
    _bars(axes[0, 0], data, "time_per_step", "time per step (s)")
    _bars(axes[0, 1], data, "time_to_tolerance", "time to tolerance (s)")
    small_n = int(data["size_n"][list(data["size_labels"]).index("small")])
    library = _ratio(data, "small_library_vs_numpy_per_step")
    axes[0, 0].set_title(f"Per step: the library scan is {library:.0f}x NumPy on {small_n} points"
                         if library else "Time per step")
    newton = [_ratio(data, f"{label}_newton_vs_sklearn") for label in data["size_labels"]]
    axes[0, 1].set_title("To tolerance: Newton (jit) first" + (
        f", {min(newton):.0f}x to {max(newton):.0f}x before scikit-learn" if all(newton) else ""))
    gs = axes[1, 0].get_gridspec()
    for ax in axes[1]:
        ax.remove()
    _targets(fig.add_subplot(gs[1, :]), data)
    fig.suptitle(f"Logistic-regression GD, {cfg.timing_dtype}: the same problem in every implementation")
    fig.tight_layout()
    return fig
