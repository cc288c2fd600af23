"""One plot style for every experiment: titles state the claim, axes name their quantity."""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gradlab.runner.records import atomic_open, os_error_line

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


@functools.cache
def pyplot():
    """matplotlib.pyplot on the Agg backend in the project style, imported on first use: a run that draws no
    figure (figures=false) never pays its ~0.25 s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(STYLE)
    return plt


def figure(ncols: int = 1, nrows: int = 1, width: float = 6.4, height: float = 4.4, **kwargs):
    """A new figure in the project style: `fig, axes = figure(2)`."""
    return pyplot().subplots(nrows, ncols, figsize=(width, height), **kwargs)


def save(fig: Any, target: Path) -> None:
    """Write `fig` to `target` (PNG, tight bounding box; through a temporary file, never a truncated one) and free
    it, even when the writing fails."""
    try:
        with atomic_open(target, "wb") as handle:
            fig.savefig(handle, format=Path(target).suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight")
    finally:
        pyplot().close(fig)


# --------------------------------------------------------------------------------------------------------
# Figures drawn from saved arrays: `gradlab/figures/<experiment>.py` registers each of its plots here. A figure
# reads only the run's plot data (numpy arrays, saved as plot_data.npz) and its config, never JAX, so a run's
# plots can be redrawn in a second (`gradlab replot DIR`) and one failing plot cannot lose the others.

PlotData = Mapping[str, np.ndarray]
Draw = Callable[[PlotData, Any], Any]  # (plot data, config) -> matplotlib Figure


When = Callable[[PlotData, Any], bool]  # (plot data, config) -> whether this run has the figure


@dataclasses.dataclass(frozen=True)
class Figure:
    """One PNG of a run: its file name, the claim it shows (recorded in metrics.json), and how to draw it.

    `when` (optional) leaves the figure out of a run whose config left that part empty.
    """

    name: str
    caption: str
    draw: Draw
    when: When | None = None


class Figures:
    """The figures of one experiment, in drawing order.

        FIGURES = Figures()

        @FIGURES.add("loss_curve.png", "Training converges to Newton's optimum.")
        def loss_curve(data, cfg):
            fig, ax = figure()
            ax.semilogy(data["losses"])
            return fig
    """

    def __init__(self) -> None:
        self.figures: list[Figure] = []

    def add(self, name: str, caption: str, when: When | None = None) -> Callable[[Draw], Draw]:
        def register(draw: Draw) -> Draw:
            self.figures.append(Figure(name, caption, draw, when))
            return draw

        return register

    def draw_all(self, data: PlotData, cfg: Any, out_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
        """Draw and save every figure; return ({name: caption} saved, {name: error} for those that failed)."""
        saved, errors = {}, {}
        for fig_spec in self.figures:
            if fig_spec.when is not None and not fig_spec.when(data, cfg):
                continue
            try:
                save(fig_spec.draw(data, cfg), out_dir / fig_spec.name)
                saved[fig_spec.name] = fig_spec.caption
            except Exception as err:  # noqa: BLE001 - a figure that cannot be drawn is recorded, the rest go on
                errors[fig_spec.name] = (os_error_line(err, with_name=False) if isinstance(err, OSError)
                                         else f"{type(err).__name__}: {err}".splitlines()[0])
        return saved, errors


def save_plot_data(path: Path, data: PlotData) -> None:
    """The arrays behind a run's figures, as one .npz (no pickled objects), through a temporary file: a failed
    write (a full disk, `ulimit -f`) leaves no truncated archive."""
    with atomic_open(path, "wb") as handle:
        np.savez_compressed(handle, **{key: np.asarray(value) for key, value in data.items()})


def load_plot_data(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def figures_of(experiment: str) -> Figures:
    """The figures of an experiment (`gradlab.figures.<experiment>.FIGURES`); none if it draws nothing."""
    try:
        module = importlib.import_module(f"gradlab.figures.{experiment}")
    except ModuleNotFoundError as err:
        if err.name != f"gradlab.figures.{experiment}":
            raise
        return Figures()
    return module.FIGURES


def thinned_steps(steps: int, max_points: int = 4000) -> np.ndarray:
    """At most ~max_points step indices in [0, steps), dense at the start and log-spaced after, always with the last.

    A curve over millions of steps draws the same from these, and stays within what Agg can render.
    """
    if steps <= max_points:
        return np.arange(steps)
    head = np.arange(max_points // 2)
    tail = np.geomspace(max_points // 2, steps - 1, max_points // 2).astype(np.int64)
    return np.unique(np.concatenate([head, tail, [steps - 1]]))
