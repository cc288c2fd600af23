"""Figures of the vectorised Problem 8 sweep (`gradlab.experiments.logreg_sweep`), drawn from its plot_data.npz."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm

from gradlab.runner.plotting import Figures, figure

FIGURES = Figures()

GAP_FLOOR = 1e-16  # gaps at or below round-off are drawn at this value (a log axis has no zero)
BAND_MOMENTA = 3  # the band panel shows the first, middle and last momentum


def log_edges(values: np.ndarray) -> np.ndarray:
    """Cell edges for log-spaced centres: geometric midpoints, the outer cells as wide as their neighbours."""
    logs = np.log10(values)
    step = np.diff(logs) if len(logs) > 1 else np.array([1.0])
    return 10 ** np.concatenate([[logs[0] - step[0] / 2], logs[:-1] + step / 2, [logs[-1] + step[-1] / 2]])


def band_indices(count: int) -> np.ndarray:
    return np.unique(np.linspace(0, count - 1, min(BAND_MOMENTA, count)).round().astype(int))


@FIGURES.add("final_gap_vs_lr.png", "Vectorised sweep: left, the median over seeds of the final loss minus each "
             "seed's Newton optimum on a learning-rate x momentum grid (log colour scale; star: the best cell, "
             "or circles: cells tied at the round-off floor, none best); "
             "right, the median against the learning rate with its interquartile band over seeds for three momenta.")
def final_gap_vs_lr(data, cfg):
    lrs, momenta = data["lrs"], data["momenta"]
    gap = np.maximum(data["gap"], GAP_FLOOR)  # (seeds, lrs, momenta)
    median = np.median(gap, axis=0)
    uses_momentum = cfg.optimizer == "momentum"
    fig, (heat, bands) = figure(2, width=12.0, height=4.6)

    rows = np.arange(len(momenta) + 1) - 0.5  # momentum as categories: one row per configured value
    image = heat.pcolormesh(log_edges(lrs), rows, median.T, norm=LogNorm(vmin=median.min(), vmax=median.max()),
                            shading="flat")
    fig.colorbar(image, ax=heat, label="final loss - optimum (median over seeds)")
    # cells within a factor 10 of the round-off floor tie: a "best" among them would be picked by noise
    tied = np.argwhere(median <= 10 * GAP_FLOOR)
    if len(tied) > 1:
        heat.plot(lrs[tied[:, 0]], tied[:, 1], "o", ms=5, mec="w", mfc="none",
                  label=f"{len(tied)} cells tie at the round-off floor (<= {10 * GAP_FLOOR:.0e}): no best cell")
        heat.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=8)
    else:
        best_lr, best_m = np.unravel_index(int(np.argmin(median)), median.shape)
        heat.plot(lrs[best_lr], best_m, "w*", ms=12, mec="k")
    heat.set_xscale("log")
    heat.set_yticks(np.arange(len(momenta)), [f"{m:g}" for m in momenta])
    heat.grid(False)
    heat.set(xlabel="learning rate", ylabel="momentum" if uses_momentum else f"momentum (unused by {cfg.optimizer})",
             title=f"Median final gap over {gap.shape[0]} seeds after {cfg.steps} steps: small learning rates "
             "have not converged, the largest diverge")
    heat.title.set_fontsize(8)

    for index in band_indices(len(momenta)) if uses_momentum else [0]:
        per_seed = gap[:, :, index]
        label = f"momentum {momenta[index]:g}" if uses_momentum else cfg.optimizer
        (line,) = bands.loglog(lrs, np.median(per_seed, axis=0), label=label)
        low, high = np.percentile(per_seed, [25, 75], axis=0)
        bands.fill_between(lrs, low, high, color=line.get_color(), alpha=0.2)
    bands.set(xlabel="learning rate", ylabel="final loss - optimum (line: median, band: quartiles over seeds)",
              title="Momentum m converges at ~(1 - m) times smaller learning rates (step lr / (1 - m))")
    bands.legend()
    fig.tight_layout()
    return fig


@FIGURES.add("convergence_curves.png", "Vectorised sweep: loss minus optimum against step for several learning "
             "rates (first seed, first momentum).", when=lambda data, cfg: cfg.curves > 0)
def convergence_curves(data, cfg):
    fig, ax = figure()
    optimum = data["optimum"][0]
    for lr, losses in zip(data["curve_lrs"], data["curve_losses"], strict=True):
        ax.semilogy(np.maximum(losses - optimum, GAP_FLOOR), label=f"lr {lr:.3g}")
    ax.set(xlabel="step", ylabel="loss - optimum", title="Convergence curves (first seed, first momentum)")
    ax.legend()
    return fig
