"""Figures of the Problem 2 experiment (`gradlab.experiments.map_l2`), drawn from its plot_data.npz."""

from __future__ import annotations

from gradlab.runner.plotting import Figures, figure

FIGURES = Figures()

TITLES = {"bernoulli": "Bernoulli (logistic regression)", "gaussian": "Gaussian (linear regression)"}


@FIGURES.add("map_vs_prior_sigma.png", "MAP estimates under a shared Norm(0, σ²) prior: they shrink to 0 as σ → 0 "
             "and reach the maximum likelihood estimate as σ grows; for the Gaussian model they lie on the ridge "
             "closed form.")
def map_vs_prior_sigma(data, cfg):
    sigmas = data["sigmas"]
    fig, axes = figure(ncols=2, width=12, height=4.6)
    for ax, (name, title) in zip(axes, TITLES.items(), strict=True):
        path = data[f"map_path_{name}"]
        for j, color in enumerate(("tab:blue", "tab:orange")):
            ax.semilogx(sigmas, path[:, j], color=color, lw=1.8, label=f"MAP φ{j}")
            if f"mle_{name}" in data:
                ax.axhline(data[f"mle_{name}"][j], color=color, ls="--", lw=1, label=f"maximum likelihood φ{j}")
            if name == "gaussian":
                ax.semilogx(sigmas[::4], data["ridge_path"][::4, j], "o", color=color, ms=4, mfc="none")
        if name == "gaussian":
            ax.plot([], [], "ko", mfc="none", ms=4, label="closed-form ridge")
        ax.axhline(0.0, color="k", lw=0.6)
        ax.set(title=title, xlabel="shared prior σ (strong prior ← → weak prior)", ylabel="φ_j")
        ax.legend(loc="center right")
    fig.suptitle("The MAP estimate moves from 0 (strong prior) to the maximum likelihood estimate (weak prior)")
    return fig
