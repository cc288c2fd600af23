"""The plots of a sweep summary, drawn from its rows (numbers and text only, no JAX).

- `plot_summary`: a metric against the first swept parameter, one line per value of the others;
- `plot_seed_summary`: the mean over seeds with its 95% interval as a band, every seed as a dot;
- `plot_search`: a search (`gradlab search`), each trial's objective with the best so far, and where the trials fell.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from gradlab.runner.plotting import figure, save
from gradlab.runner.seeds import finite_number


def plot_summary(target: Path, rows: list[dict], swept: list[str], metric: str) -> None:
    """The metric against the first swept parameter, one line per value of the others; the jobs
    not ok as red x at the foot of the axes, their statuses in the legend."""
    fig, ax = figure()
    x_key = swept[0] if swept else "job"
    groups: dict[str, list[dict]] = {}
    for row in rows:
        label = ", ".join(f"{k}={row[k]}" for k in swept[1:]) or metric
        groups.setdefault(label, []).append(row)
    numeric_x = all(finite_number(row.get(x_key)) is not None for row in rows)
    categories = list(dict.fromkeys(str(row.get(x_key)) for row in rows))
    for label, members in groups.items():
        ok = [(r[x_key], finite_number(r[metric])) for r in members if r["status"] == "ok"]
        ok = [(x, y) for x, y in ok if y is not None]
        xs = [float(x) if numeric_x else categories.index(str(x)) for x, _ in ok]
        order = sorted(range(len(xs)), key=xs.__getitem__)
        ax.plot([xs[i] for i in order], [ok[i][1] for i in order], "o-", label=label)
    not_ok = [r for r in rows if r["status"] != "ok"]
    if not_ok:  # at the foot of the axes (x in data, y in axes units): the metric's scale is the ok jobs' alone
        statuses = ", ".join(dict.fromkeys(r["status"] for r in not_ok))
        xs_not_ok = [float(r[x_key]) if numeric_x else categories.index(str(r[x_key])) for r in not_ok]
        for x in xs_not_ok:
            ax.axvline(x, color="red", ls=":", lw=1)
        ax.plot(xs_not_ok, [0.03] * len(xs_not_ok), "rx", ms=9, ls="none", transform=ax.get_xaxis_transform(),
                label=f"job not ok ({statuses})")
    values = [finite_number(r[metric]) for r in rows if finite_number(r[metric]) is not None]
    if numeric_x and len({float(r[x_key]) for r in rows}) > 2 and all(float(r[x_key]) > 0 for r in rows):
        spread = max(float(r[x_key]) for r in rows) / min(float(r[x_key]) for r in rows)
        if spread >= 100:
            ax.set_xscale("log")
    if values and all(v > 0 for v in values) and max(values) / min(values) >= 1e3:
        ax.set_yscale("log")
    if not numeric_x:
        ax.set_xticks(range(len(categories)), categories)
    ax.set(xlabel=x_key, ylabel=metric, title=f"Sweep: {metric} against {x_key}")
    if values or not_ok:
        ax.legend()
    save(fig, target)


def _log_if_wide(values: list[float], ratio: float) -> bool:
    """Whether positive values spanning at least `ratio` (max/min) read better on a log axis."""
    return bool(values) and min(values) > 0 and max(values) / min(values) >= ratio


def plot_seed_summary(target: Path, rows: list[dict], aggregate: list[dict], swept: list[str], metric: str) -> None:
    """The mean over seeds against the first swept parameter, its 95% interval as a band and every seed as a dot.

    One line per value of the other swept parameters; a group with failed seeds is marked with the count.
    """
    fig, ax = figure()
    stats = [a for a in aggregate if a["metric"] == metric]
    x_key = swept[0] if swept else None
    numeric_x = x_key is not None and all(finite_number(a.get(x_key)) is not None for a in stats)
    categories = list(dict.fromkeys(str(a.get(x_key)) if x_key else "all seeds" for a in stats))

    def position(item: dict) -> float:
        if x_key is None:
            return 0.0
        return float(item[x_key]) if numeric_x else float(categories.index(str(item[x_key])))

    def label_of(item: dict) -> str:
        return ", ".join(f"{k}={item.get(k)}" for k in swept[1:]) or metric

    seed_values = [(label_of(r), position(r), finite_number(r.get(metric))) for r in rows if r["status"] == "ok"]
    seed_values = [(label, x, y) for label, x, y in seed_values if y is not None]
    log_y = _log_if_wide([y for _, _, y in seed_values], 1e3)
    floor = min((y for _, _, y in seed_values), default=1.0) / 2
    lines: dict[str, list[dict]] = {}
    for item in stats:
        lines.setdefault(label_of(item), []).append(item)
    for label, members in lines.items():
        members = sorted(members, key=position)
        xs = [position(a) for a in members]
        mean = [a["mean"] for a in members]
        low = [max(a["ci95_low"], floor) if log_y else a["ci95_low"] for a in members]
        high = [a["ci95_high"] for a in members]
        (line,) = ax.plot(xs, mean, "o-", label=f"{label}: mean" if len(lines) > 1 else "mean over seeds")
        alone = len(lines) == 1  # one line: its band and dots get a legend entry too
        if len(xs) > 1:
            ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2, lw=0,
                            label="95% interval of the mean" if alone else None)
        else:
            ax.errorbar(xs, mean, yerr=[[mean[0] - low[0]], [high[0] - mean[0]]], color=line.get_color(), capsize=4,
                        label="95% interval of the mean" if alone else None)
        dots = [(x, y) for name, x, y in seed_values if name == label]
        ax.plot([x for x, _ in dots], [y for _, y in dots], ".", color=line.get_color(), alpha=0.5, ms=5,
                label="one seed" if alone else None)
        for a in members:
            if a["failed"]:
                ax.annotate(f"{a['failed']} failed", (position(a), 0.02), xycoords=ax.get_xaxis_transform(),
                            color="red", ha="center", fontsize=8)
    if numeric_x and _log_if_wide([position(a) for a in stats], 100):
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    if not numeric_x:
        ax.set_xticks(range(len(categories)), categories)
    counts = sorted({a["n"] for a in stats})
    n_text = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    ax.set(xlabel=x_key or "", ylabel=metric,
           title=f"{metric}: mean over n={n_text} seeds (dots); band: 95% interval of the mean")
    ax.legend()
    save(fig, target)


def _value_norm(values: list[float]) -> Any:
    """A colour/axis scale for objective values: log when positive over 3+ decades, symlog when they also reach
    zero or below (a loss gap at round-off, +-1e-15, beside gaps of 1e2), else linear."""
    from matplotlib.colors import LogNorm, Normalize, SymLogNorm

    if _log_if_wide(values, 1e3):
        return LogNorm(min(values), max(values))
    nonzero = [abs(v) for v in values if v != 0]
    if nonzero and max(nonzero) / min(nonzero) >= 1e3:
        negative = [-v for v in values if v < 0]  # linear up to the decade above the most negative value
        linthresh = 10 ** math.ceil(math.log10(max(negative))) if negative else min(nonzero)
        return SymLogNorm(linthresh=linthresh, linscale=0.5, vmin=min(values), vmax=max(values), base=10)
    return Normalize(min(values, default=0.0), max(values, default=1.0))


def _set_value_scale(axis_setter: Any, norm: Any) -> None:
    """ax.set_yscale (or set_xscale) to match _value_norm's scale."""
    from matplotlib.colors import LogNorm, SymLogNorm

    if isinstance(norm, LogNorm):
        axis_setter("log")
    elif isinstance(norm, SymLogNorm):
        axis_setter("symlog", linthresh=norm.linthresh, linscale=0.5)


def plot_search(target: Path, rows: list[dict], swept: list[str], metric: str, *, maximize: bool = False) -> None:
    """A search's trials (minimising `metric`, or maximising): each one's objective, the best so far, the space.

    Left: each trial's objective in trial order, the running best as a step line, failed trials as red x.
    Right: the trials in the plane of the first two searched parameters, coloured by objective, the best starred.
    """
    fig, (ax, space) = figure(2, width=11.5, height=4.4)
    done = [(r, finite_number(r.get(metric))) for r in rows if r["status"] == "ok"]
    done = [(r, v) for r, v in done if v is not None]
    scored = {id(r) for r, _ in done}
    failed = [r for r in rows if id(r) not in scored]  # failed, or no finite objective: told to Optuna as failed
    values = [v for _, v in done]
    ax.plot([r["job"] for r, _ in done], values, "o", label="trial")
    if values:
        running = np.maximum.accumulate(values) if maximize else np.minimum.accumulate(values)
        ax.step([r["job"] for r, _ in done], running, where="post", color="black", lw=1,
                label="best so far")
    for r in failed:
        ax.plot([r["job"]], [0.02], "rx", ms=8, transform=ax.get_xaxis_transform(),
                label="failed trial" if r is failed[0] else None)
    _set_value_scale(ax.set_yscale, _value_norm(values))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set(xlabel="trial", ylabel=metric, title=f"{len(rows)} trials, {len(failed)} failed")
    ax.legend()
    best = (max if maximize else min)(done, key=lambda d: d[1]) if done else None
    if best is not None:
        where = ", ".join(f"{k}={_short(best[0].get(k))}" for k in swept)
        fig.suptitle(f"Search: best {metric} = {best[1]:.3g} (trial {best[0]['job']}) at {where}", fontsize=10)
    _draw_space(space, done, failed, swept, metric, best, maximize)
    save(fig, target)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _draw_space(ax: Any, done: list, failed: list[dict], swept: list[str], metric: str, best: Any,
                maximize: bool = False) -> None:
    """The searched parameters: a plane for two (colour: objective), the objective against one."""
    numeric = [k for k in swept if all(finite_number(r.get(k)) is not None for r, _ in done)]
    if not numeric or not done:
        ax.set_axis_off()
        return
    x_key = numeric[0]
    xs = [float(r[x_key]) for r, _ in done]
    values = [v for _, v in done]
    if len(numeric) >= 2:
        y_key = numeric[1]
        points = ax.scatter(xs, [float(r[y_key]) for r, _ in done], c=values, norm=_value_norm(values),
                            cmap="viridis" if maximize else "viridis_r", s=30)
        ax.figure.colorbar(points, ax=ax, label=metric)
        ax.plot([float(best[0][x_key])], [float(best[0][y_key])], "*", color="red", ms=14, label="best")
        ax.plot([float(r[x_key]) for r in failed if finite_number(r.get(x_key)) is not None],
                [float(r[y_key]) for r in failed if finite_number(r.get(x_key)) is not None], "rx", ms=8,
                label="failed trial" if failed else None)
        ax.set(ylabel=y_key, title="Where the trials fell (colour: objective, "
                                   f"{'higher' if maximize else 'lower'} is better)")
    else:
        ax.plot(xs, values, "o")
        ax.plot([float(best[0][x_key])], [best[1]], "*", color="red", ms=14, label="best")
        _set_value_scale(ax.set_yscale, _value_norm(values))
        ax.set(ylabel=metric, title=f"{metric} against {x_key}")
    if _log_if_wide(xs, 100):
        ax.set_xscale("log")
    ax.set_xlabel(x_key)
    ax.legend()
