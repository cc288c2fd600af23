"""Receptive fields of stacks of 1D convolutions (Problems 4, 5 and 6).

Analytic: a layer with kernel k, stride s and dilation d has the effective kernel k_eff = d (k - 1) + 1.
With the input as layer 0 (r_0 = j_0 = 1), layer l has the jump (input positions between neighbouring
units) and receptive field

    j_l = j_{l-1} s_l,        r_l = r_{l-1} + (k_eff,l - 1) j_{l-1}.

Measured: build the stack with `jax.lax.conv_general_dilated` (zero "SAME" padding, as the problems say),
all weights 1 and no nonlinearity, so d unit / d input counts paths and no contribution can cancel;
pull back a one-hot cotangent at one interior unit of each layer and take the span (first to last nonzero
input position) of the gradient. The span is the receptive field; a dilated kernel can leave holes inside
it ("gridding"), so the number of nonzero positions is reported as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class ConvSpec(NamedTuple):
    kernel: int
    stride: int
    dilation: int


def effective_kernel(spec: ConvSpec) -> int:
    """k_eff = d (k - 1) + 1: the span of a dilated kernel."""
    return spec.dilation * (spec.kernel - 1) + 1


def receptive_field_analytic(stack: Sequence[ConvSpec]) -> tuple[list[int], list[int]]:
    """(r_l, j_l), l = 1..L: r_l = r_{l-1} + (k_eff,l - 1) j_{l-1}, j_l = j_{l-1} s_l, r_0 = j_0 = 1."""
    fields, jumps = [], []
    field, jump = 1, 1
    for spec in stack:
        field += (effective_kernel(spec) - 1) * jump
        jump *= spec.stride
        fields.append(field)
        jumps.append(jump)
    return fields, jumps


def input_length_for(stack: Sequence[ConvSpec]) -> int:
    """An input long enough that the middle unit of every layer sees no padding.

    The middle unit's field is centred within a few jumps of the middle of the input, so a margin of half
    the deepest field plus a few jumps on each side keeps it clear of the zero padding; the measurement
    still checks that its support touches neither end.
    """
    fields, jumps = receptive_field_analytic(stack)
    return 2 * max(fields) + 4 * max(jumps) + 1


def conv_stack_outputs(signal: jax.Array, stack: Sequence[ConvSpec]) -> list[jax.Array]:
    """Every layer's output of the stack, all weights 1, zero SAME padding, one channel."""
    hidden = signal[None, None, :]  # (batch, channel, width)
    outputs = []
    for spec in stack:
        weights = jnp.ones((1, 1, spec.kernel), dtype=signal.dtype)
        hidden = jax.lax.conv_general_dilated(
            hidden,
            weights,
            window_strides=(spec.stride,),
            padding="SAME",
            rhs_dilation=(spec.dilation,),
            dimension_numbers=("NCH", "OIH", "NCH"),
        )
        outputs.append(hidden[0, 0])
    return outputs


def input_gradients(stack: Sequence[ConvSpec], length: int, dtype=None) -> np.ndarray:
    """Row l: d (middle unit of layer l) / d input, an array of shape (L, length).

    One forward pass with `jax.vjp`, then one pullback per layer of a one-hot cotangent.
    """
    stack = tuple(ConvSpec(*spec) for spec in stack)
    signal = np.zeros((length,), dtype=dtype or jnp.result_type(float))  # NumPy: no operation compiled per length

    @jax.jit
    def gradients(signal):
        outputs, pullback = jax.vjp(lambda x: conv_stack_outputs(x, stack), signal)
        rows = []
        for layer, output in enumerate(outputs):
            cotangents = [jnp.zeros_like(o) for o in outputs]
            cotangents[layer] = cotangents[layer].at[output.shape[0] // 2].set(1.0)
            rows.append(pullback(cotangents)[0])
        return jnp.stack(rows)

    return np.asarray(gradients(signal))


class Measured(NamedTuple):
    fields: list[int]  # span of the nonzero support, per layer
    nonzero: list[int]  # nonzero input positions inside it, per layer
    first: list[int]  # first input position of the support, per layer
    gradients: np.ndarray  # (L, length) input gradients of the measured units
    interior: bool  # no support touches the first or last input position (so padding played no part)


def receptive_field_measured(stack: Sequence[ConvSpec], length: int | None = None, dtype=None) -> Measured:
    """Measure each layer's receptive field as the span of d unit / d input (see the module docstring)."""
    length = length or input_length_for(stack)
    grads = input_gradients(stack, length, dtype)
    fields, nonzero, first, interior = [], [], [], True
    for row in grads:
        support = np.flatnonzero(row > 0)
        if support.size == 0:
            fields.append(0)
            nonzero.append(0)
            first.append(-1)
            interior = False
            continue
        fields.append(int(support[-1] - support[0] + 1))
        nonzero.append(int(support.size))
        first.append(int(support[0]))
        interior = interior and support[0] > 0 and support[-1] < length - 1
    return Measured(fields, nonzero, first, grads, interior)
