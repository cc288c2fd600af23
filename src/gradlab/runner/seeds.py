"""Mean and spread over seeds: runs that differ only in a seed, aggregated per metric.

A seed key is an override named `seed` or ending in `.seed` or `_seed` (`data.seed`, `init_seed`). Runs whose
other parameters are equal form one group; per metric the group reports, over its `ok` runs,

    n, mean, std (ddof=1), min, max and the 95% interval of the mean,  mean +- t_{0.975, n-1} * std / sqrt(n),

and how many of its runs were not `ok` (`failed`: failed, crashed, interrupted or missing) or had no finite
value for the metric (`missing`). NumPy and scipy's t quantile: the sweep summary (one process per job) and the
vectorised `logreg_sweep` (thousands of runs in one call) report alike by calling `aggregate_over_seeds`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

# columns of a summary row that are neither parameters nor metrics
BOOKKEEPING = ("job", "status", "warnings", "error")
STATS = ("n", "mean", "std", "min", "max", "ci95_low", "ci95_high")

def is_seed_key(key: str) -> bool:
    """Whether an override key names a seed: `seed`, `*.seed` or `*_seed`."""
    key = key.lstrip("+~")
    return key == "seed" or key.endswith(".seed") or key.endswith("_seed")


def t_quantile_975(df: int) -> float:
    """t_{0.975, df}: the two-sided 95% quantile of Student's t (the slope intervals' `t_quantile`)."""
    # here, not at import: every run loads this module (the sweep-summary callback), and scipy.special with it
    from gradlab.problems.scaling_fits import t_quantile

    if df < 1:
        raise ValueError(f"a t quantile needs df >= 1, got {df}")
    return t_quantile(0.975, df)


def describe(values: Sequence[float]) -> dict[str, float | int]:
    """n, mean, std (ddof=1), min, max and the 95% t interval of the mean (NaN where n is too small)."""
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    nan = math.nan
    if n == 0:
        return {"n": 0, "mean": nan, "std": nan, "min": nan, "max": nan, "ci95_low": nan, "ci95_high": nan}
    mean = float(np.mean(x))
    std = float(np.std(x, ddof=1)) if n > 1 else nan
    half = t_quantile_975(n - 1) * std / math.sqrt(n) if n > 1 else nan
    return {"n": n, "mean": mean, "std": std, "min": float(np.min(x)), "max": float(np.max(x)),
            "ci95_low": mean - half, "ci95_high": mean + half}


def finite_number(value: Any) -> float | None:
    """A finite float, or None (absent, text, bool, NaN or infinite)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def parameters_of(rows: Iterable[dict], metrics: Sequence[str]) -> list[str]:
    """The parameter keys of summary rows: every key that is neither a metric nor bookkeeping, in order."""
    keys = dict.fromkeys(k for row in rows for k in row)
    return [k for k in keys if k not in metrics and k not in BOOKKEEPING]


def aggregate_over_seeds(rows: Sequence[dict], metrics: Sequence[str],
                         params: Sequence[str] | None = None) -> list[dict]:
    """One row per (group of runs that differ only in seed keys, metric): the group's parameters, `metric`,
    `failed`, `missing` and STATS.

    `rows` holds one dict per run: its parameter values, `status` (a run without one counts as `ok`) and its
    metric values (dotted names as keys). `params` are the parameter keys (default: every key that is not a
    metric or bookkeeping); the seed keys among them are aggregated over, the others define the groups. Only
    `ok` runs with a finite value enter a statistic; groups keep the order of their first run.
    """
    params = list(params) if params is not None else parameters_of(rows, metrics)
    group_keys = [k for k in params if not is_seed_key(k)]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        key = tuple(json.dumps(row.get(k), sort_keys=True, default=str) for k in group_keys)
        groups.setdefault(key, []).append(row)
    aggregate = []
    for members in groups.values():
        ok = [row for row in members if row.get("status", "ok") == "ok"]
        for metric in metrics:
            values = [v for v in (finite_number(row.get(metric)) for row in ok) if v is not None]
            aggregate.append({**{k: members[0].get(k) for k in group_keys}, "metric": metric,
                              "failed": len(members) - len(ok), "missing": len(ok) - len(values),
                              **describe(values)})
    return aggregate
