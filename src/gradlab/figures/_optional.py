"""Figures of which a run draws only some: a part of the experiment that the config left empty has no figure.

    FIGURES = OptionalFigures()

    @FIGURES.add("memory_vs_depth.png", "...", when=lambda data, cfg: len(cfg.memory.depths) > 0)
    def memory_vs_depth(data, cfg): ...

(A candidate for `gradlab.runner.plotting.Figures.add` itself; used by autodiff_scaling and logreg_sweep.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gradlab.runner.plotting import Draw, Figures, PlotData

When = Callable[[PlotData, Any], bool]


class OptionalFigures(Figures):
    """`Figures` whose `add` takes `when(data, cfg)`: a figure whose `when` is false is not drawn for that run."""

    def __init__(self) -> None:
        super().__init__()
        self.when: dict[str, When] = {}

    def add(self, name: str, caption: str, when: When | None = None) -> Callable[[Draw], Draw]:
        if when is not None:
            self.when[name] = when
        return super().add(name, caption)

    def draw_all(self, data: PlotData, cfg: Any, out_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
        drawn = Figures()
        drawn.figures = [f for f in self.figures if self.when.get(f.name, lambda *_: True)(data, cfg)]
        return drawn.draw_all(data, cfg, out_dir)
