"""What the scaling study's timings say (Problem 10): per-size rows, time slopes, per-size ratios, the FLOP ratio,
the HVP check, the jacfwd/jacrev grid and memory against depth, each from the round minima of
`gradlab.bench.autodiff.timed_rounds` ({key: [round minimum, ...]}) and the outputs of the first calls.

Pure: dicts and numpy in, JSON-ready dicts out; nothing here compiles or times. A (size, function) that did not
run (skipped for memory or time, or failed) is absent from `minima` and from every summary that needs it.
"""

from __future__ import annotations

import math

import numpy as np

from gradlab.bench import resident
from gradlab.bench.autodiff import ratio_summary, summary
from gradlab.problems import autodiff_cost as cost
from gradlab.problems import scaling_fits as fits

TIMED = (*cost.ROUTES, "jvp", "hvp", "empty")
RATIOS = {"rev_over_f": ("rev", "f"), "jvp_over_f": ("jvp", "f"), "hvp_over_f": ("hvp", "f"),
          "seq_over_rev": ("fwd_sequential", "rev"), "batched_over_rev": ("fwd_batched", "rev"),
          "seq_over_P_jvp": ("fwd_sequential", "jvp")}  # fmt: skip


def size_rows(family, rows, problems, minima, calls, outputs, floor_factor, rtol) -> list[dict]:
    """Adds to each size's row its times (the one statistic) and calls a round, its floor (floor_factor x the empty
    call) and the gradient routes that ran against reverse mode (and reverse against the closed form where there
    is one)."""
    for i, (row, problem) in enumerate(zip(rows, problems, strict=True)):
        row["time"] = {name: summary(minima[(family, i, name)]) for name in TIMED if (family, i, name) in minima}
        row["calls_per_round"] = {name: calls[(family, i, name)] for name in row["time"]}
        row["floor_s"] = floor_factor * row["time"]["empty"]["best"] if "empty" in row["time"] else None
        reference = outputs.get((family, i, "rev"))
        diffs = {}
        if reference is not None:
            diffs = {f"{route}_vs_rev": cost.max_relative_difference(outputs[(family, i, route)], reference)
                     for route in ("fwd_batched", "fwd_sequential") if (family, i, route) in outputs}  # fmt: skip
            if problem.closed_form_grad is not None:
                diffs["rev_vs_closed_form"] = cost.max_relative_difference(
                    reference, problem.closed_form_grad(problem.theta, *problem.data))
        row["compared"] = sorted(diffs)  # the comparisons made: only routes that ran at this size
        row["grad_max_rel_diff"] = diffs
        row["grads_match"] = all(d <= rtol for d in diffs.values())
    return rows


def slopes(rows: list[dict], t) -> dict:
    """Time slopes of every route over the sizes above their floor, and forward - reverse of two separate fits
    with a Welch interval (`*_unpaired`: it treats the two fits' errors as independent, though both share every
    size's curvature; the paired difference, the slope of the per-size ratio, is in `ratios`)."""
    out, fitted = {"time_fit": {}}, {}
    for route in [name for name in TIMED if name != "empty" and any(name in r["time"] for r in rows)]:
        ran = [r for r in rows if route in r["time"] and r["floor_s"] is not None]
        kept = fits.fit_above_floor([r["P"] for r in ran], [r["time"][route]["best"] for r in ran],
                                    [r["floor_s"] for r in ran], t.confidence, t.fit_min_sizes)  # fmt: skip
        fitted[route] = kept["fit"]
        out["time_fit"][route] = {**fits.fit_dict(kept["fit"]), "sizes": kept["sizes"], "decades": kept["decades"]}
    out["min_decades"] = min((f["decades"] for f in out["time_fit"].values()), default=0.0)
    for key, forward in (("time_slope_difference_unpaired", "fwd_sequential"),
                         ("time_slope_difference_batched_unpaired", "fwd_batched")):
        both = fitted.get(forward) is not None and fitted.get("rev") is not None
        d = fits.slope_difference(fitted[forward], fitted["rev"], t.confidence) if both else None
        out[key] = None if d is None else {**d, **fits.width(d["interval"], 1.0), "forward_route": forward}
    with_flops = [r for r in rows if "fwd_batched" in r["flops"] and "rev" in r["flops"]]
    fwd = fits.loglog_slope([r["P"] for r in with_flops], [r["flops"]["fwd_batched"] for r in with_flops])
    rev = fits.loglog_slope([r["P"] for r in with_flops], [r["flops"]["rev"] for r in with_flops])
    out["flops_fwd_minus_rev"] = None if fwd is None or rev is None else fwd - rev
    return out


def affine_share(P, times) -> dict | None:
    """Least-squares t = a + b P (relative residuals), and the P-independent share a / t at the smallest and the
    largest P: why a time slope falls below 1 where part of a call does not grow with P (the loss's per-sample
    work, the call itself). The textbook's t_fwd / t_rev ~ P assumes both routes' shares alike."""
    P, t = np.asarray(P, dtype=float), np.asarray(times, dtype=float)
    if len(P) < 3:
        return None
    design = np.stack([np.ones_like(P), P], axis=1) / t[:, None]
    (a, b), *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
    share = lambda p: float(a / (a + b * p)) if a + b * p > 0 else None  # noqa: E731
    return {"fixed_s": float(a), "per_parameter_s": float(b), "fixed_share_at_min_P": share(P[0]),
            "fixed_share_at_max_P": share(P[-1])}  # fmt: skip


def ratios(family, rows, minima, t) -> dict:
    """Per size, round by round: t_rev / t_f, t_jvp / t_f, t_hvp / t_f, t_seq / t_rev, t_seq / (P t_jvp); the
    log-log slope of t_seq / t_rev against P (1: forward mode pays P where reverse pays a constant)."""
    present = {name: pair for name, pair in RATIOS.items() if any(all(p in r["time"] for p in pair) for r in rows)}
    per_size = []
    for i, row in enumerate(rows):
        entry, above = {"P": row["P"]}, {}
        for name, (a, b) in present.items():
            if a not in row["time"] or b not in row["time"]:
                continue
            scale = row["P"] if name == "seq_over_P_jvp" else 1.0
            entry[name] = ratio_summary(minima[(family, i, a)], minima[(family, i, b)], scale)
            # a ratio counts where both of its times are above the floor
            above[name] = row["floor_s"] is not None and min(row["time"][a]["best"], row["time"][b]["best"]) >= \
                row["floor_s"]  # fmt: skip
        entry["above_floor"] = above
        per_size.append(entry)
    out = {"per_size": per_size}
    for name in present:
        kept = [e for e in per_size if e["above_floor"].get(name)]
        out[f"{name}_max"] = max((e[name]["best"] for e in kept), default=None)
        out[f"{name}_max_at_P"] = max(kept, key=lambda e: e[name]["best"])["P"] if kept else None
        out[f"{name}_min"] = min((e[name]["best"] for e in kept), default=None)
        out[f"{name}_median"] = float(np.median([e[name]["best"] for e in kept])) if kept else None
        # the bound claims' statistic: each size's lowest ratio (a round's, both times from that round, or the
        # best's); a size breaks a bound only if every round does, so a competing process cannot fail it alone
        out[f"{name}_max_low"] = max((e[name]["interval"][0] for e in kept), default=None)
    out["rev_over_f_above_5"] = [e["P"] for e in per_size if e["above_floor"].get("rev_over_f")
                                 and e["rev_over_f"]["interval"][0] > 5.0]  # fmt: skip
    for name in ("seq_over_rev", "batched_over_rev"):  # the paired slope difference forward - reverse
        ok = [e for e in per_size if e["above_floor"].get(name)]
        fit = fits.loglog_fit([e["P"] for e in ok], [e[name]["best"] for e in ok], t.confidence)
        fit = fit if len(ok) >= t.fit_min_sizes else None
        decades = math.log10(ok[-1]["P"] / ok[0]["P"]) if len(ok) >= 2 else 0.0
        out[f"{name}_fit"] = {**fits.fit_dict(fit), "sizes": [e["P"] for e in ok], "decades": decades,
                              **(fits.width(fit.interval, 1.0) if fit and fit.interval else {})}  # fmt: skip
    out["fixed_share"] = _fixed_shares(rows, out["seq_over_rev_fit"]["sizes"])
    return out


def _fixed_shares(rows, sizes) -> dict:
    """affine_share of f, reverse mode and one tangent pass of the loop (t_seq / P) over the paired fit's sizes."""
    kept = [r for r in rows if r["P"] in sizes]
    P = [r["P"] for r in kept]
    series = {"f": [r["time"].get("f", {}).get("best") for r in kept],
              "rev": [r["time"].get("rev", {}).get("best") for r in kept],
              "seq_per_parameter": [r["time"]["fwd_sequential"]["best"] / r["P"] if "fwd_sequential" in r["time"]
                                    else None for r in kept]}  # fmt: skip
    return {name: affine_share(P, times) if None not in times else None for name, times in series.items()}


def flop_ratio(cfg, sizes: dict) -> dict:
    """cost(grad) / cost(f) in matrix-product FLOPs counted on the jaxpr: 2 for the logistic model at every
    P; for the MLP 3 - a_1 b_1 / F (cost.mlp_grad_flop_ratio) at every width, -> 3 at mlp.flops_width."""
    import jax
    import jax.numpy as jnp

    out = {}
    if "linear" in sizes:
        ratios_ = [r["flops"]["rev"] / r["flops"]["f"] for r in sizes["linear"]]
        out["linear"] = {"ratios": ratios_, "expected": 2.0, "max_rel_err": max(abs(x / 2.0 - 1) for x in ratios_)}
    m = cfg.mlp
    if "mlp" in sizes:
        counted = [r["flops"]["rev"] / r["flops"]["f"] for r in sizes["mlp"]]
        formula = [cost.mlp_grad_flop_ratio(cost.mlp_shapes(m.input_dim, r["width"], m.depth)) for r in sizes["mlp"]]
        # the wide net's count needs only shapes: traced, never compiled or run
        P = cost.mlp_parameter_count(m.input_dim, m.flops_width, m.flops_depth)
        loss = cost.make_mlp_loss(m.input_dim, m.flops_width, m.flops_depth)
        shapes = (jax.ShapeDtypeStruct((P,), jnp.float32), jax.ShapeDtypeStruct((m.input_dim, m.n_samples),
                  jnp.float32), jax.ShapeDtypeStruct((m.n_samples,), jnp.float32))  # fmt: skip
        wide = cost.dot_flops(jax.grad(loss), *shapes) / cost.dot_flops(loss, *shapes)
        out["mlp"] = {"ratios": counted, "formula": formula,
                      "max_rel_err_vs_formula": max(abs(c / f - 1) for c, f in zip(counted, formula, strict=True)),
                      "flops_width": m.flops_width, "flops_depth": m.flops_depth, "ratio_at_flops_width": wide,
                      "formula_at_flops_width": cost.mlp_grad_flop_ratio(
                          cost.mlp_shapes(m.input_dim, m.flops_width, m.flops_depth)), "expected": 3.0,
                      "rel_err_vs_3": abs(wide / 3.0 - 1)}  # fmt: skip
    return out


def hvp_check(hvp_args: list[tuple], hvp_outputs: list) -> dict:
    """Forward-over-reverse H v against the closed form X^T diag(p(1-p)) X v / N in numpy, per size, as a ratio
    to the round-off bound (P + N + 8) eps sum_k |X_ki| p_k(1-p_k) sum_j |X_kj v_j| / N (sums of P and N terms).
    The bound is in the arguments' own precision, so it holds whether the device keeps or flushes subnormals."""
    ratios_ = []
    for args, output in zip(hvp_args, hvp_outputs, strict=True):
        eps = float(np.finfo(np.asarray(args[0]).dtype).eps)
        theta, v, X, t = (np.asarray(a, dtype=np.float64) for a in args)
        p = 1.0 / (1.0 + np.exp(-(X @ theta)))
        N, P = X.shape
        bound = (P + N + 8) * eps * (np.abs(X).T @ (p * (1 - p) * (np.abs(X) @ np.abs(v)))) / N
        # + one smallest normal per operation: a subnormal flushed to zero (or kept) moves a result by less
        bound = bound + (P + N + 8) * float(np.finfo(np.asarray(args[0]).dtype).smallest_normal)
        error = np.abs(np.asarray(output, dtype=np.float64) - cost.logistic_hvp(theta, v, X, t))
        ratios_.append(float(np.max(error / bound)))
    return {"max_ratio_to_bound": max(ratios_) if ratios_ else None, "per_size": ratios_}


def mirror(cfg, minima, outputs, rtol) -> dict:
    """The n_in x n_out grid of t_jacfwd / t_jacrev, its crossing of 1 per n_out and how far it lies from
    n_in = n_out (in decades), with the rounds' spread of the crossing."""
    n = cfg.mirror.sizes
    k = len(n)
    fwd = [[summary(minima[("mirror", i, j, "jacfwd")]) for j in range(k)] for i in range(k)]
    rev = [[summary(minima[("mirror", i, j, "jacrev")]) for j in range(k)] for i in range(k)]
    ratio = [[ratio_summary(minima[("mirror", i, j, "jacfwd")], minima[("mirror", i, j, "jacrev")])
              for j in range(k)] for i in range(k)]  # fmt: skip
    floor = np.full((k, k), cfg.timing.floor_factor * summary(minima[("mirror", "empty")])["best"])
    # a cell where both Jacobians cost less than the floor is overhead against overhead: no crossing there
    slower = np.array([[max(fwd[i][j]["best"], rev[i][j]["best"]) for j in range(k)] for i in range(k)])
    mask = np.where(slower >= floor, 1.0, np.nan)
    best = mask * np.array([[r["best"] for r in row] for row in ratio])
    low = mask * np.array([[r["interval"][0] for r in row] for row in ratio])
    high = mask * np.array([[r["interval"][1] for r in row] for row in ratio])
    cross = cost.crossovers(n, n, best)
    # the crossing moves with the round-to-round spread: crossings of the rounds' lowest and highest ratios
    bounds = [cost.crossovers(n, n, high), cost.crossovers(n, n, low)]
    logs = [math.log10(c / m) for c, m in zip(cross, n, strict=True) if c is not None]
    step = math.log10(n[-1] / n[0]) / (k - 1) if k > 1 else 0.0
    diffs = [cost.max_relative_difference(outputs[("mirror", i, j, "jacfwd")], outputs[("mirror", i, j, "jacrev")])
             for i in range(k) for j in range(k)]  # fmt: skip
    spread = [math.log10(b / a) for a, b in zip(*bounds, strict=True) if a is not None and b is not None]
    return {
        "n": n, "hidden": cfg.mirror.hidden, "time_jacfwd": fwd, "time_jacrev": rev, "ratio": ratio,
        "floor_s": floor.tolist(), "above_floor": (slower >= floor).tolist(),
        "crossover_n_in": cross, "crossover_n_in_bounds": bounds,
        "crossover_log10_n_in_over_n_out": logs,
        "crossover_abs_log10_median": float(np.median(np.abs(logs))) if logs else None,
        "crossover_columns": len(logs),  # the n_out whose crossing lies inside the grid, above the floor
        # one grid step in log10, widened by the largest round-to-round shift of a crossing
        "crossover_tolerance_log10": step + (max(spread) if spread else 0.0),
        "jacobian_max_rel_diff": max(diffs), "jacobians_match": max(diffs) <= rtol,
    }  # fmt: skip


def memory(cfg, rows, minima, outputs, rtol, resident_results: dict) -> dict:
    """Reverse mode's memory against depth per checkpoint strategy: log-log slopes of XLA's temporary bytes, that
    plan against the resident memory of one call in a fresh process at the deepest net (`resident_results`, from
    `gradlab.bench.resident.in_fresh_processes`), and the time of sqrt(D) segments and per-layer checkpoints
    against none."""
    D = cfg.memory.depths
    for row in rows:
        d = row["depth"]
        row["time"] = {s: summary(minima[("depth", d, s)]) for s in cost.CHECKPOINT_STRATEGIES}
        ref = outputs[("depth", d, "none")]
        row["grads_match"] = all(cost.max_relative_difference(outputs[("depth", d, s)], ref) <= rtol
                                 for s in cost.CHECKPOINT_STRATEGIES)  # fmt: skip
    slopes_ = {}
    for s in cost.CHECKPOINT_STRATEGIES:
        values = [r[f"temp_bytes_{s}"] for r in rows]
        fit = fits.loglog_fit(D, values, cfg.timing.confidence) if all(v and v > 0 for v in values) else None
        slopes_[s] = {"temp_bytes": fits.fit_dict(fit)}
        if fit is not None and fit.interval is not None:  # the depth-independent terms bend a short fit
            slopes_[s]["temp_bytes"]["tolerance"] = slopes_[s]["temp_bytes"]["half_width"] + 0.1
    top = D[-1]
    over_none = lambda s: ratio_summary(minima[("depth", top, s)], minima[("depth", top, "none")])  # noqa: E731
    return {"rows": rows, "slopes": slopes_, "resident": resident.summary(resident_results, top),
            "sqrt_time_over_none": over_none("sqrt_segments"),
            "per_layer_time_over_none": over_none("per_layer")}  # fmt: skip
