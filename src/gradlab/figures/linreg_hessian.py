"""Figures of the Problem 7 experiment (`gradlab.experiments.linreg_hessian`), drawn from its plot_data.npz."""

from __future__ import annotations

import numpy as np

from gradlab.runner.plotting import Figures, figure

FIGURES = Figures()

CASES = {"data": "data", "degenerate": "degenerate (all x_i equal)"}


@FIGURES.add("loss_surface.png", "Least-squares loss around its minimum with the Hessian's eigenvectors (equal axes, "
             "so they show orthogonal): with varied x both eigenvalues are positive (one minimum); with all x_i "
             "equal one eigenvalue is 0 and the minima form a line.")
def loss_surface(data, cfg):
    fig, axes = figure(len(CASES), width=5.8 * len(CASES), height=5.0, squeeze=False, layout="constrained")
    for ax, (case, title) in zip(axes[0], CASES.items(), strict=True):
        phi0, phi1, excess = data[f"{case}_phi0"], data[f"{case}_phi1"], data[f"{case}_excess_loss"]
        center = data[f"{case}_minimizer"]
        eigenvalues, eigenvectors = data[f"{case}_eigenvalues"], data[f"{case}_eigenvectors"]
        strictly_convex = bool(data[f"{case}_strictly_convex"])
        verdict = "strictly convex, one minimum" if strictly_convex else "singular H: a line of minima"
        ax.set_title(f"{title}: det H = {float(data[f'{case}_det']):.3g}\n{verdict}")
        if not bool(data.get(f"{case}_surface_resolved", True)):  # huge data: the window is below round-off
            ax.text(0.5, 0.5, f"flat to round-off around\nphi = ({center[0]:.6g}, {center[1]:.6g}):\nno contours",
                    transform=ax.transAxes, ha="center", va="center")
            ax.set(xticks=[], yticks=[])
            continue
        # square-root levels: evenly spaced in distance from the minimum for a quadratic bowl
        levels = np.linspace(0.0, np.sqrt(excess.max()), 16)[1:] ** 2
        contours = ax.contour(phi0, phi1, excess, levels=levels, cmap="viridis")
        fig.colorbar(contours, ax=ax, label="L[phi] - min L")
        half_width = cfg.surface_half_width
        for k, color in enumerate(("C3", "C1")):
            arrow = 0.8 * half_width * eigenvectors[:, k]
            ax.annotate("", center + arrow, center, arrowprops={"arrowstyle": "->", "color": color, "lw": 2})
            ax.plot([], [], color=color, lw=2, label=f"eigenvector, lambda = {eigenvalues[k]:.3g}")
        if not strictly_convex:
            line = center[:, None] + np.outer(eigenvectors[:, 0], 1.5 * (phi0 - center[0]))
            ax.plot(line[0], line[1], "k--", lw=1, label="minima: phi0 + phi1 x = mean y")
        ax.plot(*center, "k*", markersize=10, label="least-squares minimum")
        # one unit of phi0 as long as one of phi1: the eigenvectors are orthogonal, and look it
        ax.set_aspect("equal", adjustable="box")
        ax.set(xlim=(phi0[0], phi0[-1]), ylim=(phi1[0], phi1[-1]), xlabel="phi0 (intercept)", ylabel="phi1 (slope)")
        ax.legend(loc="lower left", frameon=True, framealpha=0.9)
    return fig
