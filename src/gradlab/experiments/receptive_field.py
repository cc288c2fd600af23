"""Problems 4-6: the receptive field of each layer of a 1D conv stack, analytic against measured.

    python experiments/receptive_field.py                        # Problem 6's stack (preset=problem6)
    python experiments/receptive_field.py preset=problem4
    python experiments/receptive_field.py 'layers=[{kernel:3,stride:2},{kernel:3,dilation:4}]'
    python experiments/receptive_field.py -m preset=problem4,problem5,problem6
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gradlab.problems.receptive_field import (
    ConvSpec,
    effective_kernel,
    input_length_for,
    receptive_field_analytic,
    receptive_field_measured,
)
from gradlab.runner.config import ConfigError, at_least, checked
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch


def _unless_given(field: Any, default: int) -> Any:
    """`field` (its type and range) with a default, for keys a layer may leave out: a list item has no YAML
    of its own, so a layer written `{kernel: 3}` has stride 1 and dilation 1."""
    return dataclasses.field(default=default, metadata=field.metadata)


@dataclasses.dataclass
class ConvLayer:
    """One 1D convolution of the stack (also the layer schema of the answers file)."""

    kernel: int = at_least(1)
    stride: int = _unless_given(at_least(1), 1)
    dilation: int = _unless_given(at_least(1), 1)

    def spec(self) -> ConvSpec:
        return ConvSpec(self.kernel, self.stride, self.dilation)

    def __repr__(self) -> str:  # as the user writes a layer, in errors that quote the stack
        return f"{{kernel: {self.kernel}, stride: {self.stride}, dilation: {self.dilation}}}"


@dataclasses.dataclass
class Config(BaseConfig):
    layers: list[ConvLayer] = checked(lambda v: len(v) > 0, "a non-empty list of {kernel, stride, dilation}")
    max_input_length: int = at_least(1)


def describe(stack: list[ConvSpec]) -> str:
    """k5s2d1 -> k3s1d1 -> ...: kernel, stride and dilation of each layer, input first."""
    return " -> ".join(f"k{s.kernel}s{s.stride}d{s.dilation}" for s in stack)


def memory_estimate(cfg: Config) -> dict[str, float]:
    """Bytes by the key that sizes them, the stack (`layers`): its input length n, and a run holds the L x n input
    gradients (on the device, on the host, in plot_data.npz) beside the layer outputs and each row's support
    (measured: L = 1, 4, 18 at n = 1e7, 1e7, 2.1e6 peak 0.4-0.6, 0.85, 0.7 GB above the interpreter's own); and
    the traced program, one pullback per layer through all L layers (measured: 100 and 200 layers of kernel 1,
    0.5 and 1.8 GB, ~50 KB per layer squared). A stack longer than max_input_length allocates no gradients:
    main refuses it."""
    stack = [layer.spec() for layer in cfg.layers]
    length = input_length_for(stack)
    gradients = 0.0 if length > cfg.max_input_length else (3 * len(stack) + 4) * length * 8.0
    return {"layers": gradients + len(stack) ** 2 * 50e3}


def main(cfg: Config, ctx: RunContext) -> dict:
    stack = [layer.spec() for layer in cfg.layers]
    analytic, jumps = receptive_field_analytic(stack)
    length = input_length_for(stack)
    if length > cfg.max_input_length:
        raise ConfigError("max_input_length", cfg.max_input_length,
                          f"at least {length}: measuring the receptive field of {max(analytic)} of stack "
                          f"{describe(stack)} needs an input that long (raise it, or use a smaller stack)")
    measured = receptive_field_measured(stack, length)
    if not measured.interior:
        raise RunFailed(f"the measured unit's support reached the edge of the {length}-long input")
    ctx.log.info("stack %s: analytic %s, measured %s", describe(stack), analytic, measured.fields)
    ctx.keep(analytic=analytic, measured=measured.fields, first=measured.first, gradients=measured.gradients,
             stack=describe(stack))
    return {
        "receptive_field": {
            "analytic": analytic,
            "measured": measured.fields,
            "nonzero_positions": measured.nonzero,
            "jump": jumps,
            "effective_kernel": [effective_kernel(s) for s in stack],
        },
        "match": analytic == measured.fields,
        "input_length": length,
        "stack": describe(stack),
    }


if __name__ == "__main__":
    launch("receptive_field")
