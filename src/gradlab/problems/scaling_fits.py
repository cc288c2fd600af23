"""Log-log fits of cost against size, with t intervals: the statistics of the scaling study (Problem 10).

A power law cost = c size^k is a line log(cost) = log(c) + k log(size); the slope k is fitted by least squares
with a Student-t interval from the residuals. The study compares routes by the *paired* slope of their per-size
ratio (forward / reverse at the same size), whose interval is narrower than that of two separate fits: curvature
common to both routes (cache sizes, the per-sample work of the loss) cancels in the ratio.
Pure numpy/scipy: nothing here runs JAX.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.special import stdtrit


@dataclasses.dataclass(frozen=True)
class LogLogFit:
    """log(cost) = intercept + slope log(size), fitted by least squares to `points` (size, cost) pairs.

    stderr = sqrt(sum(residual^2) / dof / sum((log size - mean)^2)) with dof = points - 2, and the interval is
    slope +- t_{(1 + confidence) / 2, dof} stderr (Student's t): both None for two points (no residual left).
    """

    slope: float
    intercept: float
    points: int
    dof: int
    stderr: float | None
    confidence: float | None
    interval: tuple[float, float] | None


def loglog_fit(sizes, costs, confidence: float | None = None) -> LogLogFit | None:
    """Least-squares fit of log(cost) against log(size), over the points with a positive size and cost; None
    with fewer than two distinct sizes. With `confidence` (e.g. 0.95) the slope's t interval is computed."""
    pairs = [(s, c) for s, c in zip(sizes, costs, strict=True) if c is not None and c > 0 and s > 0]
    if len({s for s, _ in pairs}) < 2:
        return None
    x, y = np.log(np.array(pairs, dtype=float)).T
    dx = x - x.mean()
    slope = float(dx @ (y - y.mean()) / (dx @ dx))
    intercept = float(y.mean() - slope * x.mean())
    dof = len(x) - 2
    stderr = interval = None
    if dof > 0:
        residual = y - intercept - slope * x
        stderr = float(np.sqrt(residual @ residual / dof / (dx @ dx)))
        if confidence is not None:
            interval = _t_interval(slope, stderr, dof, confidence)
    return LogLogFit(slope, intercept, len(x), dof, stderr, confidence if interval else None, interval)


def loglog_slope(sizes, costs) -> float | None:
    """Least-squares slope of log(cost) against log(size); None with fewer than two usable points."""
    fit = loglog_fit(sizes, costs)
    return None if fit is None else fit.slope


def slope_difference(a: LogLogFit, b: LogLogFit, confidence: float) -> dict | None:
    """a.slope - b.slope of two independent fits, its standard error sqrt(se_a^2 + se_b^2) and t interval with
    Welch-Satterthwaite degrees of freedom (se_a^2 + se_b^2)^2 / (se_a^4 / dof_a + se_b^4 / dof_b)."""
    if a.stderr is None or b.stderr is None:
        return None
    variance = a.stderr**2 + b.stderr**2
    tails = a.stderr**4 / a.dof + b.stderr**4 / b.dof
    dof = variance**2 / tails if tails > 0 else float(a.dof + b.dof)  # two exact fits: any dof, zero width
    value, stderr = a.slope - b.slope, math.sqrt(variance)
    return {"value": value, "stderr": stderr, "dof": dof, "confidence": confidence,
            "interval": _t_interval(value, stderr, dof, confidence)}


def t_quantile(p: float, dof: float) -> float:
    """t_{p, dof}, Student t's quantile, as scipy.stats.t.ppf(p, dof) computes it (scipy.special.stdtrit) without
    importing scipy.stats: 0.8 s in every process that imports this module (the main job's forkserver among them)."""
    return float(stdtrit(dof, p))


def _t_interval(value: float, stderr: float, dof: float, confidence: float) -> tuple[float, float]:
    half = t_quantile((1 + confidence) / 2, dof) * stderr
    return (value - half, value + half)


def fit_above_floor(sizes, times, floors, confidence: float, min_sizes: int) -> dict:
    """Fit log(time) on log(size) over the sizes whose time is >= their floor (10 x the empty call of the same
    arguments); {fit or None, sizes, decades spanned}."""
    kept = [(s, t) for s, t, floor in zip(sizes, times, floors, strict=True) if t is not None and t >= floor]
    decades = math.log10(kept[-1][0] / kept[0][0]) if len(kept) >= 2 else 0.0
    result = loglog_fit(*zip(*kept, strict=True), confidence) if len(kept) >= min_sizes else None
    return {"fit": result, "sizes": [s for s, _ in kept], "decades": decades}


def width(interval, expected=None) -> dict:
    """Width and half-width of an interval, and (with `expected`) how far the expected value lies outside it."""
    if interval is None:
        return {"width": None, "half_width": None}
    low, high = interval
    out = {"width": high - low, "half_width": (high - low) / 2}
    if expected is not None:
        out["distance_from_expected"] = max(low - expected, expected - high, 0.0)
    return out


def fit_dict(fit: LogLogFit | None) -> dict:
    """A fit as the JSON the metrics keep (slope None when there is no fit)."""
    if fit is None:
        return {"slope": None, "interval": None}
    return {"slope": fit.slope, "intercept": fit.intercept, "stderr": fit.stderr, "dof": fit.dof,
            "interval": fit.interval, **width(fit.interval)}  # fmt: skip


def paired_difference(fit: dict) -> dict | None:
    """forward - reverse time slope, paired by size: the slope of log(t_fwd / t_rev) on log P over the sizes
    where both are above the floor, with its t interval (a size's curvature common to both routes cancels)."""
    if fit["slope"] is None:
        return None
    return {"value": fit["slope"], "interval": fit["interval"], "width": fit.get("width"),
            "half_width": fit.get("half_width"), "sizes": fit["sizes"], "decades": fit["decades"],
            "method": "paired: slope of the per-size ratio t_fwd / t_rev"}  # fmt: skip
