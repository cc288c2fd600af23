"""Memory estimates shared by the experiments' `memory_estimate(cfg)`: {config key: bytes of the arrays it sizes}.

The run layer sums an experiment's estimate and refuses a config over `memory_budget_gb` before any array exists,
naming the keys that account for most of it. Each estimate counts the arrays a run really holds at its peak
(device buffers, their host copies, what is kept for the figures and written to metrics.json), calibrated
against the peak resident memory of real runs; the interpreter's own few hundred MB are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

# A float that reaches metrics.json (a list of Python floats, then JSON text) costs about this many bytes at
# its peak: the 24-byte float object, its list slot, and ~20 characters of text.
JSON_FLOAT_BYTES = 64


def word(precision: str) -> int:
    """Bytes of one float in the run's precision."""
    return 8 if precision == "float64" else 4


def split(nbytes: float, factors: Mapping[str, float]) -> dict[str, float]:
    """The bytes of an array whose size is the product of several config values, shared among their keys in
    proportion to log(value): the keys that made it large carry most of it (a value of 1 carries none)."""
    logs = {key: math.log(max(float(value), 1.0)) for key, value in factors.items()}
    total = sum(logs.values())
    if total == 0:
        return {key: nbytes / len(logs) for key in logs}
    return {key: nbytes * share / total for key, share in logs.items()}


def combined(*parts: Mapping[str, float]) -> dict[str, float]:
    """Several {key: bytes} estimates added key by key."""
    total: dict[str, float] = {}
    for part in parts:
        for key, nbytes in part.items():
            total[key] = total.get(key, 0.0) + float(nbytes)
    return total
