"""One plot style for every experiment: titles state the claim, axes name their quantity."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

STYLE = {
    "figure.figsize": (6.4, 4.4),
    "figure.dpi": 110,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "image.cmap": "viridis",
}


def figure(ncols: int = 1, nrows: int = 1, width: float = 6.4, height: float = 4.4, **kwargs):
    """A new figure in the project style: `fig, axes = figure(2)`."""
    with plt.rc_context(STYLE):
        return plt.subplots(nrows, ncols, figsize=(width, height), **kwargs)


plt.rcParams.update(STYLE)
