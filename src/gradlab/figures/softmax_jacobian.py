"""Figures of the Problem 1 experiment (`gradlab.experiments.softmax_jacobian`), drawn from its plot_data.npz."""

from __future__ import annotations

import numpy as np

from gradlab.runner.plotting import Figures, figure

FIGURES = Figures()


@FIGURES.add("softmax_jacobian.png", "Heatmaps of the softmax Jacobian: symmetric, rows sum to 0, negative off the "
             "diagonal; in the saturated case every entry is tiny yet nonzero and matches autodiff in relative error.")
def softmax_jacobian(data, cfg):
    cases = [str(case) for case in data["cases"]]
    fig, axes = figure(len(cases), width=5.6 * len(cases), height=4.8, squeeze=False, layout="constrained")
    for ax, name in zip(axes[0], cases, strict=True):
        jacobian = data[f"{name}_jacobian"]
        if name == "saturated":
            # entries span ~90 orders of magnitude: show log10|J| so the tiny ones are visible
            with np.errstate(divide="ignore"):
                image = ax.imshow(np.log10(np.abs(jacobian)), cmap="magma")
            label = "log10 |J_ij|"
        else:
            bound = np.abs(jacobian).max()
            image = ax.imshow(jacobian, cmap="RdBu_r", vmin=-bound, vmax=bound)
            label = "J_ij"
        fig.colorbar(image, ax=ax, label=label)
        ax.grid(False)
        ax.set(xlabel="logit j", ylabel="softmax output i",
               title=f"{name}: J = diag(s) - s s^T\nmatches jacfwd/jacrev to rel err {data[f'{name}_max_rel_err']:.1e}")
    return fig
