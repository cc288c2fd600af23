"""Figures of the Problem 8 experiment (`gradlab.experiments.logreg`), drawn from its plot_data.npz."""

from __future__ import annotations

import numpy as np

from gradlab.runner.plotting import Figures, figure

FIGURES = Figures()


def sigmoid(z: np.ndarray) -> np.ndarray:
    """sig(z) = 1 / (1 + exp(-z)), written with exp(-|z|) so it never overflows."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@FIGURES.add("sigmoid_family.png", "Problem 8(i): sig(phi0 + phi1 x) for several (phi0, phi1); phi0 moves the "
             "midpoint -phi0/phi1, |phi1| sets the steepness, a negative phi1 flips it.")
def sigmoid_family(data, cfg):
    low, high = cfg.sigmoid.x_range
    xs = np.linspace(low, high, 400)
    fig, ax = figure()
    for phi0, phi1 in cfg.sigmoid.family:
        (line,) = ax.plot(xs, sigmoid(phi0 + phi1 * xs), label=f"phi0={phi0:g}, phi1={phi1:g}")
        if phi1 != 0 and low <= -phi0 / phi1 <= high:
            ax.plot([-phi0 / phi1], [0.5], "o", color=line.get_color())
    ax.set(xlabel="x", ylabel="Pr(y=1 | x)", title="phi0 shifts the midpoint -phi0/phi1 (dots); |phi1| sets the "
           "steepness; phi1 < 0 flips the curve")
    ax.legend()
    return fig


@FIGURES.add("data_and_fit.png", "Problem 8(iv): the data and the fitted sigmoid (optax and Newton).")
def data_and_fit(data, cfg):
    x, y = data["x"], data["y"]
    xs = np.linspace(x.min() - 1, x.max() + 1, 300)
    fig, ax = figure()
    ax.scatter(x, y, c=y, cmap="coolwarm", edgecolor="k", zorder=3, label="data")
    ax.plot(xs, sigmoid(data["fit_phi"][0] + data["fit_phi"][1] * xs), label="optax fit")
    ax.plot(xs, sigmoid(data["newton_phi"][0] + data["newton_phi"][1] * xs), "--", label="Newton")
    ax.set(xlabel="x", ylabel="Pr(y=1 | x)", title="The fitted model separates the two classes")
    ax.legend()
    return fig


@FIGURES.add("loss_heatmap.png", "Problem 8(iv): the summed BCE loss as a heatmap over (phi0, phi1) with its grid "
             "minimum and both training trajectories.")
def loss_heatmap(data, cfg):
    fig, ax = figure(width=6.4, height=5.2)
    extent = [*cfg.grid.phi0_range, *cfg.grid.phi1_range]
    image = ax.imshow(np.log10(data["loss_map"]), origin="lower", extent=extent, aspect="auto")
    fig.colorbar(image, ax=ax, label="log10 L(phi0, phi1)")
    ax.contour(data["loss_map"], levels=20, origin="lower", extent=extent, colors="w", linewidths=0.4)
    # Newton first and thin, the optax trajectory on top: Newton's few iterates must not hide it
    newton_path, fit_path = data["newton_path"], data["fit_path"]
    ax.plot(newton_path[:, 0], newton_path[:, 1], "o--", color="orange", ms=4, lw=0.8, label="Newton iterates",
            zorder=3)
    ax.plot(fit_path[:, 0], fit_path[:, 1], "r-", lw=1.6, label="optax trajectory", zorder=4)
    ax.plot(*fit_path[-1], "rs", ms=5, zorder=4)
    ax.plot(*data["grid_argmin"], "w*", ms=12, label="grid minimum", zorder=5)
    ax.set(xlabel="phi0", ylabel="phi1", title="Binary cross-entropy over (phi0, phi1): one bowl, one minimum")
    ax.legend(loc="upper left")
    zoom_on_trajectories(ax, data, extent, newton_path, fit_path)
    return fig


def zoom_on_trajectories(ax, data, extent, newton_path, fit_path) -> None:
    """An inset (lower right) over the box around both trajectories and the grid minimum, 15% margin each side:
    on the full grid they fill a small corner."""
    points = np.concatenate([newton_path, fit_path, np.asarray(data["grid_argmin"])[None]])
    low, high = points.min(axis=0), points.max(axis=0)
    pad = 0.15 * np.maximum(high - low, 1e-3 * (np.abs(high) + 1))
    inset = ax.inset_axes([0.56, 0.04, 0.42, 0.42])
    inset.imshow(np.log10(data["loss_map"]), origin="lower", extent=extent, aspect="auto")
    inset.contour(data["loss_map"], levels=40, origin="lower", extent=extent, colors="w", linewidths=0.3)
    inset.plot(newton_path[:, 0], newton_path[:, 1], "o--", color="orange", ms=3, lw=0.8)
    inset.plot(fit_path[:, 0], fit_path[:, 1], "r-", lw=1.2)
    inset.plot(*data["grid_argmin"], "w*", ms=8)
    inset.set(xlim=(low[0] - pad[0], high[0] + pad[0]), ylim=(low[1] - pad[1], high[1] + pad[1]))
    inset.tick_params(labelsize=6, colors="w")
    inset.set_title("zoom on the trajectories", fontsize=7, color="w", pad=2)
    ax.indicate_inset_zoom(inset, edgecolor="w")


@FIGURES.add("min_eigenvalue_map.png", "Problem 8(v): the smallest eigenvalue of jax.hessian of the loss at every "
             "grid point; positive everywhere, so the loss is convex on the grid.")
def min_eigenvalue_map(data, cfg):
    min_eig_map = data["min_eig_map"]
    fig, ax = figure(width=6.4, height=5.2)
    extent = [*cfg.grid.phi0_range, *cfg.grid.phi1_range]
    image = ax.imshow(np.log10(np.maximum(min_eig_map, 1e-300)), origin="lower", extent=extent, aspect="auto")
    fig.colorbar(image, ax=ax, label="log10 of the smallest Hessian eigenvalue")
    ax.set(xlabel="phi0", ylabel="phi1",
           title=f"Smallest Hessian eigenvalue > 0 everywhere (min {min_eig_map.min():.2e})")
    return fig


@FIGURES.add("loss_curve.png", "Training (a): the optax loss curve, measured as the gap to the Newton optimum.")
def loss_curve(data, cfg):
    fig, ax = figure()
    ax.semilogy(data["steps"], data["losses"] - data["newton_loss"] + 1e-16,
                label=f"{cfg.optimizer.name}: L(step) - L(Newton)")
    ax.set(xlabel="step", ylabel="loss above the Newton optimum", title="Training converges to Newton's optimum")
    ax.legend()
    return fig
