"""The scaling study's tables for the verification report and the arrays its figures are drawn from
(`gradlab.figures.autodiff_scaling`). Pure: the summaries of `gradlab.bench.autodiff_summary` in, text and numpy
arrays out. A function that did not run at a size is NaN there (and "-" in a table)."""

from __future__ import annotations

import numpy as np

from gradlab.bench.autodiff_summary import TIMED
from gradlab.problems.autodiff_cost import CHECKPOINT_STRATEGIES
from gradlab.runner.tables import markdown_table


def _nan(value) -> float:
    return np.nan if value is None else value


def report_tables(sizes: dict, slopes: dict, ratios: dict, load: dict, skipped: list[dict]) -> str:
    """Markdown for the verification report: per family and size the best times and the ratios, then the slopes."""
    ms = lambda t: "-" if t is None else f"{1e3 * t['best']:.3g}"  # noqa: E731
    ratio = lambda r: "-" if r is None else f"{r['best']:.3g} [{r['interval'][0]:.3g}, {r['interval'][1]:.3g}]"  # noqa: E731
    interval = lambda d: "n/a" if not d or d.get("interval") is None else (  # noqa: E731
        f"{d.get('value', d.get('slope')):.3f} [{d['interval'][0]:.3f}, {d['interval'][1]:.3f}]")
    before, after = load["before"], load["after"]
    parts = [f"Times: {load['statistic']}. Load average {before['loadavg'][0]:.2f} before, {after['loadavg'][0]:.2f} "
             f"after on {before['cores']} cores; this process ran on {before['process_cores']} of them and had "
             f"{load['while_timing']['process_share'] or 0:.0%} of those while timing.\n"]  # fmt: skip
    for family, rows in sizes.items():
        header = ["P", "empty ms", "f ms", "rev ms", "jvp ms", "P jvps ms", "jacfwd ms", "t_rev/t_f", "t_seq/t_rev",
                  "t_seq/(P t_jvp)"]  # fmt: skip
        body = [[r["P"], *(ms(r["time"].get(n)) for n in ("empty", "f", "rev", "jvp", "fwd_sequential", "fwd_batched")),
                 *(ratio(e.get(n)) for n in ("rev_over_f", "seq_over_rev", "seq_over_P_jvp"))]
                for r, e in zip(rows, ratios[family]["per_size"], strict=True)]  # fmt: skip
        s = slopes[family]
        fits = ", ".join(f"{route} {interval(fit)}" for route, fit in s["time_fit"].items())
        shares = ratios[family].get("fixed_share") or {}
        share_text = "; ".join(
            f"{name} {100 * v['fixed_share_at_min_P']:.0f}% -> {100 * v['fixed_share_at_max_P']:.0f}%"
            for name, v in shares.items()
            if v and v["fixed_share_at_min_P"] is not None and v["fixed_share_at_max_P"] is not None)
        parts += [f"**{family}**: time slopes {fits}. Forward - reverse (paired): P jvps "
                  f"{interval(s['time_slope_difference'])}, jacfwd {interval(s['time_slope_difference_batched'])}. "
                  f"P-independent share of a call (t = a + b P), smallest -> largest P of the paired fit: "
                  f"{share_text or 'n/a'}.\n", markdown_table(header, body)]  # fmt: skip
    if skipped:
        parts += ["\n**Not run** (the run went on without them):\n",
                  markdown_table(["part", "size", "function", "reason"],
                                 [[s["part"], s["size"], s["function"], s["reason"]] for s in skipped])]  # fmt: skip
    return "\n".join(parts)


def scaling_arrays(family: str, rows: list[dict], slopes: dict, ratios: dict) -> dict[str, np.ndarray]:
    """Per family over (size, timed function in TIMED order): best time and its round interval, the floor,
    each fit's slope and intercept; per size the ratios t_seq / t_rev and t_seq / (P t_jvp) with intervals."""
    fit_of = [slopes["time_fit"].get(name, {}) for name in TIMED]

    def time(row, name, part):
        t = row["time"].get(name)
        return np.nan if t is None else (t["best"] if part is None else t["interval"][part])

    def ratio(name, part):
        return [np.nan if name not in e else (e[name]["best"] if part is None else e[name]["interval"][part])
                for e in ratios["per_size"]]  # fmt: skip

    seq = ratios["seq_over_rev_fit"]
    return {
        f"{family}_P": np.array([r["P"] for r in rows]),
        f"{family}_timed": np.array(TIMED),
        **{f"{family}_time{suffix}": np.array([[time(r, n, part) for n in TIMED] for r in rows], dtype=float)
           for suffix, part in (("", None), ("_low", 0), ("_high", 1))},  # fmt: skip
        f"{family}_floor": np.array([_nan(r["floor_s"]) for r in rows], dtype=float),
        f"{family}_time_slope": np.array([_nan(f.get("slope")) for f in fit_of], dtype=float),
        f"{family}_time_intercept": np.array([_nan(f.get("intercept")) for f in fit_of], dtype=float),
        f"{family}_time_interval": np.array([f.get("interval") or (np.nan, np.nan) for f in fit_of], dtype=float),
        f"{family}_time_fitted": np.array([[r["P"] in f.get("sizes", []) for f in fit_of] for r in rows]),
        **{f"{family}_{name}{suffix}": np.array(ratio(name, part), dtype=float)
           for name in ("seq_over_rev", "seq_over_P_jvp") for suffix, part in (("", None), ("_low", 0), ("_high", 1))},
        f"{family}_seq_over_rev_slope": np.array([_nan(seq.get("slope")), *(seq.get("interval") or (np.nan,) * 2)],
                                                 dtype=float),  # fmt: skip
        f"{family}_seq_over_rev_intercept": np.array(_nan(seq.get("intercept")), dtype=float),
        f"{family}_ratio_fitted": np.array([r["P"] in seq["sizes"] for r in rows]),
    }


def mirror_arrays(mirror: dict) -> dict[str, np.ndarray]:
    return {"mirror_n": np.array(mirror["n"]),
            "mirror_ratio": np.array([[r["best"] for r in row] for row in mirror["ratio"]]),
            "mirror_crossover": np.array([_nan(c) for c in mirror["crossover_n_in"]], dtype=float)}  # fmt: skip


def memory_arrays(memory: dict) -> dict[str, np.ndarray]:
    rows = memory["rows"]
    return {
        "memory_depths": np.array([r["depth"] for r in rows]),
        "memory_strategies": np.array(CHECKPOINT_STRATEGIES),
        "memory_temp_bytes": np.array([[_nan(r[f"temp_bytes_{s}"]) for s in CHECKPOINT_STRATEGIES] for r in rows],
                                      dtype=float),
        "memory_temp_bytes_slope": np.array([_nan(memory["slopes"][s]["temp_bytes"]["slope"])
                                             for s in CHECKPOINT_STRATEGIES], dtype=float),
        "memory_resident_depth": np.array(memory["resident"]["depth"]),
        "memory_resident_minus_output": np.array(
            [_nan(memory["resident"]["per_strategy"][s].get("rise_minus_output_bytes")) for s in CHECKPOINT_STRATEGIES],
            dtype=float),
        "memory_time": np.array([[r["time"][s]["best"] for s in CHECKPOINT_STRATEGIES] for r in rows]),
    }
