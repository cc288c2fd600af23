"""Problems 4-6: the receptive field of each layer of a 1D conv stack, analytic against measured.

python experiments/receptive_field.py                        # Problem 6's stack
python experiments/receptive_field.py preset=problem4
python experiments/receptive_field.py 'layers=[{kernel:3,stride:2,dilation:1},{kernel:3,dilation:4}]'
python experiments/receptive_field.py -m preset=problem4,problem5,problem6
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gradlab.runner.config import at_least, checked
from gradlab.runner.plotting import figure
from gradlab.problems.receptive_field import (
    ConvSpec,
    input_length_for,
    receptive_field_analytic,
    receptive_field_measured,
)
from gradlab.runner.run import BaseConfig, RunFailed, launch


@dataclasses.dataclass
class ConvLayer:
    kernel: int = at_least(1, 3)
    stride: int = at_least(1, 1)
    dilation: int = at_least(1, 1)


PROBLEM6_STACK = [ConvLayer(5, 2, 1), ConvLayer(3, 1, 1), ConvLayer(5, 1, 2)]


@dataclasses.dataclass
class Config(BaseConfig):
    layers: list[ConvLayer] = checked(
        PROBLEM6_STACK, lambda v: len(v) > 0, "a non-empty list of {kernel, stride, dilation}"
    )
    max_input_length: int = at_least(1, 1_000_000)


def _describe(stack: list[ConvSpec]) -> str:
    return " -> ".join(f"k{s.kernel}s{s.stride}d{s.dilation}" for s in stack)


def _plot_support(ctx, stack, analytic, measured) -> None:
    layers = len(stack)
    fig, ax = figure(width=7.5, height=1.2 + 0.7 * layers)
    lo = min(measured.first) - 2
    hi = max(f + r for f, r in zip(measured.first, measured.fields, strict=True)) + 1
    for row, grad in enumerate(measured.gradients):
        level = layers - row
        positions = np.flatnonzero(grad > 0)
        ax.scatter(positions, np.full(positions.shape, level), marker="s", s=18, color="C0", zorder=3)
        start = measured.first[row]
        # the analytic field, drawn from the first measured position: it must end at the last one
        ax.plot([start - 0.4, start + analytic[row] - 0.6], [level - 0.25] * 2, color="C3", linewidth=2)
        ax.text(hi + 0.5, level, f"r = {analytic[row]} (measured {measured.fields[row]})", va="center")
    ax.set_yticks(range(1, layers + 1), [f"layer {layers - i}" for i in range(layers)])
    ax.set_xlim(lo, hi + 0.2 * (hi - lo) + 8)
    ax.set_ylim(0.4, layers + 0.6)
    ax.set_xlabel("input position (blue: nonzero d unit / d input; red: analytic receptive field)")
    ax.set_title(f"Input positions that influence one unit per layer, stack {_describe(stack)}")
    ctx.save_figure(
        fig,
        "receptive_field.png",
        caption="For each layer, the input positions with nonzero gradient of one interior unit span exactly "
        "the analytic receptive field r_l = r_{l-1} + (k_eff - 1) j_{l-1}.",
    )


def main(cfg: Config, ctx) -> dict:
    stack = [ConvSpec(layer.kernel, layer.stride, layer.dilation) for layer in cfg.layers]
    analytic, jumps = receptive_field_analytic(stack)
    length = input_length_for(stack)
    if length > cfg.max_input_length:
        raise RunFailed(
            f"measuring a receptive field of {max(analytic)} needs an input of {length} positions, more than "
            f"max_input_length={cfg.max_input_length}; raise it or use a smaller stack"
        )
    measured = receptive_field_measured(stack, length)
    if not measured.interior:
        raise RunFailed(f"the measured unit's support reached the edge of the {length}-long input")
    ctx.log.info("stack %s: analytic %s, measured %s", _describe(stack), analytic, measured.fields)
    _plot_support(ctx, stack, analytic, measured)
    return {
        "receptive_field": {
            "analytic": analytic,
            "measured": measured.fields,
            "nonzero_positions": measured.nonzero,
            "jump": jumps,
            "effective_kernel": [s.dilation * (s.kernel - 1) + 1 for s in stack],
        },
        "match": analytic == measured.fields,
        "input_length": length,
        "stack": _describe(stack),
    }


if __name__ == "__main__":
    launch("receptive_field")
