"""Why deep nets use reverse mode (Problem 10): cost of the gradient by jvp vs vjp as P grows.

python experiments/autodiff_scaling.py                        # defaults: configs/autodiff_scaling.yaml
python experiments/autodiff_scaling.py scale=full             # the long version (configs/scale_preset/)
python experiments/autodiff_scaling.py 'families=[linear]' 'linear.P=[4,16,64,256]' timing.rounds=5
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from gradlab.bench import autodiff as measure
from gradlab.experiments import memory as estimates
from gradlab.problems import autodiff_cost as cost
from gradlab.runner.config import at_least, checked, each, in_range, positive, seed
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch
from gradlab.runner.tables import markdown_table

FAMILIES = ("linear", "mlp")
STRATEGIES = cost.CHECKPOINT_STRATEGIES


def _increasing_ints(values, low: int = 1) -> bool:
    ints = all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in values)
    return len(values) > 0 and ints and all(a < b for a, b in zip(values[:-1], values[1:], strict=True))


def _sizes(low: int = 1, *, may_be_empty: bool = False):
    if may_be_empty:  # an empty list skips that part of the experiment
        ok = lambda v: len(v) == 0 or _increasing_ints(v, low)  # noqa: E731
        return checked(ok, f"an increasing list of integers >= {low} (empty: skip this part)")
    return checked(lambda v: _increasing_ints(v, low), f"a non-empty increasing list of integers >= {low}")


@dataclass
class LinearConfig:
    P: list[int] = _sizes()  # weights of the logistic model


@dataclass
class MlpConfig:
    widths: list[int] = _sizes()  # hidden width sets P
    depth: int = at_least(1)  # hidden layers
    input_dim: int = at_least(1)
    n_samples: int = at_least(1)  # data points of the MLP's loss (jacfwd keeps P x n_samples x width tangents)
    flops_width: int = at_least(1)  # the net at which cost(grad)/cost(f) -> 3 is counted (traced, not run)
    flops_depth: int = at_least(2)


@dataclass
class TimingConfig:
    rounds: int = at_least(3)  # interleaved rounds: every time is the minimum of its round minima
    repeats: int = at_least(5)  # the most back-to-back calls per (function, round) ...
    min_window_s: float = positive()  # ... enough of them to span this long (a slow call runs once a round)
    floor_factor: float = at_least(1.0)  # fit only calls >= this x the empty call with the same arguments
    fit_min_sizes: int = at_least(3)  # a time slope needs at least this many sizes above the floor
    min_decades: float = positive()  # ... spanning at least this many decades of P (else a warning)
    confidence: float = in_range(0.5, 1.0)  # of each slope's t interval
    max_interval_width: float = positive()  # the slope-difference claims' bound on their interval's width
    load_sample_s: float = positive()  # how long the machine's load is sampled before and after


@dataclass
class GradTolerance:  # max relative difference for two gradients to count as equal, per precision
    float64: float = positive()
    float32: float = positive()


@dataclass
class MirrorConfig:
    sizes: list[int] = _sizes(may_be_empty=True)  # n_in and n_out of the grid of maps R^n_in -> R^n_out
    hidden: int = at_least(1)


@dataclass
class MemoryConfig:
    depths: list[int] = _sizes(may_be_empty=True)
    width: int = at_least(1)
    n_samples: int = at_least(1)


@dataclass
class Config(BaseConfig):
    seed: int = seed()
    families: list[str] = each(lambda f: f in FAMILIES, f"one of {', '.join(FAMILIES)}")
    n_samples: int = at_least(1)  # data points the loss averages over: cost(f) ~ 2 n_samples P
    linear: LinearConfig
    mlp: MlpConfig
    timing: TimingConfig
    grad_rtol: GradTolerance
    mirror: MirrorConfig
    memory: MemoryConfig


def memory_estimate(cfg: Config) -> dict[str, float]:
    """Bytes by the keys that size them: the data of every size (all are alive while the rounds interleave),
    jacfwd's P x N tangents at the largest P, the mirror grid's largest Jacobian, the deep nets' weights and
    activations, and the MLP's unrolled layers (~5 MB of compiled code each, measured at depth 100 and 300)."""
    word = estimates.word(cfg.precision)
    parts = []
    if "linear" in cfg.families:
        P = max(cfg.linear.P)
        # every size's data is alive while the rounds interleave; jacfwd adds an n_samples x P tangent block
        parts.append(estimates.split(cfg.n_samples * (sum(cfg.linear.P) * (8 + word) + 3 * P * word),
                                     {"linear.P": P, "n_samples": cfg.n_samples}))  # fmt: skip
    if "mlp" in cfg.families:
        m = cfg.mlp
        width = max(m.widths)
        P = cost.mlp_parameter_count(m.input_dim, width, m.depth)
        # jacfwd pushes P tangents through every activation: XLA's temporaries measured 1.04-1.06 x P n width
        # words at widths 16-48 (depth 1)
        parts.append(estimates.split(1.25 * m.depth * P * m.n_samples * width * word,
                                     {"mlp.widths": P * width, "mlp.n_samples": m.n_samples}))  # fmt: skip
        parts.append({"mlp.depth": m.depth * 5e6})
    if cfg.mirror.sizes:
        M = max(cfg.mirror.sizes)
        parts.append(estimates.split(4 * M * (M + cfg.mirror.hidden) * word, {"mirror.sizes": M**2,
                                                                               "mirror.hidden": cfg.mirror.hidden}))
    if cfg.memory.depths:
        mem = cfg.memory
        D = max(mem.depths)
        parts.append(estimates.split(4 * D * (mem.width + mem.n_samples) * mem.width * word,
                                     {"memory.depths": D, "memory.width": mem.width**2}))  # fmt: skip
    return estimates.combined(*parts) if parts else {}


def _rng(cfg: Config, *stream: int) -> np.random.Generator:
    """An independent numpy stream per (part, size), all derived from the one seed."""
    return np.random.default_rng([cfg.seed, *stream])


def _problems(cfg: Config, family: str) -> list[cost.ScalarLoss]:
    if family == "linear":
        return [cost.linear_family(P, cfg.n_samples, _rng(cfg, 0, i)) for i, P in enumerate(cfg.linear.P)]
    m = cfg.mlp
    return [cost.mlp_family(w, m.depth, m.input_dim, m.n_samples, _rng(cfg, 1, i)) for i, w in enumerate(m.widths)]


def _bar(items, desc: str):
    items = list(items)
    return tqdm(items, desc=desc, total=len(items), file=sys.stderr, leave=False, dynamic_ncols=True)


# --------------------------------------------------------------------------------------------------------
# What is timed: every function compiled once, keyed by (part, ..., what)


def _scaling_items(cfg: Config, family: str, problems, rng) -> tuple[dict, list[dict]]:
    """Per size: the empty call, f, one jvp, one HVP and the three gradient routes, with their dot FLOPs."""
    items, rows = {}, []
    for i, problem in enumerate(_bar(problems, f"{family} sizes")):
        args = (problem.theta, *problem.data)
        v = jnp.asarray(rng.standard_normal(problem.P), dtype=problem.theta.dtype)
        fns = {"empty": (cost.empty_call, args), "jvp": (cost.one_jvp(problem.loss), (problem.theta, v, *problem.data)),
               **{route: (fn, args) for route, fn in cost.routes(problem.loss).items()}}  # fmt: skip
        if family == "linear":  # the HVP's closed form is the logistic model's
            fns["hvp"] = (cost.hessian_vector_product(problem.loss), (problem.theta, v, *problem.data))
        row = {"P": problem.P, **problem.describe, "flops": {}, "compile_s": {}, "temp_bytes": {}}
        for name, (fn, fn_args) in fns.items():
            executable, info = measure.compiled(fn, fn_args)
            items[(family, i, name)] = (executable, fn_args)
            row["compile_s"][name], row["temp_bytes"][name] = info["compile_s"], info["temp_bytes"]
            if name != "empty":  # matrix-product FLOPs counted on the jaxpr (scan bodies x their length)
                row["flops"][name] = cost.dot_flops(fn, *fn_args)
        rows.append(row)
    return items, rows


def _mirror_items(cfg: Config) -> dict:
    items = {}
    for i, n_in in enumerate(cfg.mirror.sizes):
        for j, n_out in enumerate(cfg.mirror.sizes):
            args = cost.two_layer_problem(n_in, n_out, cfg.mirror.hidden, _rng(cfg, 2, i, j))
            for mode, transform in (("jacfwd", jax.jacfwd), ("jacrev", jax.jacrev), ("empty", None)):
                fn = cost.empty_call if transform is None else transform(cost.two_layer_map)
                items[("mirror", i, j, mode)] = (measure.compiled(fn, args)[0], args)
    return items


def _memory_items(cfg: Config) -> tuple[dict, list[dict]]:
    """Per depth and checkpoint strategy: XLA's temporary memory and the resident high-water mark of one call."""
    mem, items, rows = cfg.memory, {}, []
    for d in _bar(mem.depths, "depths"):
        args = cost.deep_problem(d, mem.width, mem.n_samples, _rng(cfg, 4, d))
        row = {"depth": d, "activation_bytes": args[1].size * args[1].dtype.itemsize}
        for strategy in STRATEGIES:
            exe, info = measure.compiled(jax.grad(cost.deep_loss(strategy)), args)
            exe(*args)  # warm: the first call's one-time allocations are not this function's peak
            row[f"temp_bytes_{strategy}"] = info["temp_bytes"]
            row[f"peak_resident_bytes_{strategy}"] = measure.peak_resident_bytes(exe, args)
            items[("depth", d, strategy)] = (exe, args)
        rows.append(row)
    return items, rows


# --------------------------------------------------------------------------------------------------------
# The study


def main(cfg: Config, ctx: RunContext) -> dict:
    t = cfg.timing
    rtol = getattr(cfg.grad_rtol, cfg.precision)
    load_before = measure.machine_load(t.load_sample_s)
    items, rows, problems = {}, {}, {}
    for family in cfg.families:
        problems[family] = _problems(cfg, family)
        family_items, rows[family] = _scaling_items(cfg, family, problems[family], _rng(cfg, 5, len(family)))
        items.update(family_items)
    items.update(_mirror_items(cfg))
    memory_items, depth_rows = _memory_items(cfg)
    items.update(memory_items)

    minima, outputs, during = measure.timed_rounds(items, t.rounds, t.min_window_s, t.repeats, cfg.seed)
    load_after = measure.machine_load(t.load_sample_s)
    load = {"before": load_before, "after": load_after, "while_timing": during,
            "statistic": "best: minimum over rounds of each round's minimum; interval [min, max] over rounds"}
    for when in ("before", "after"):
        if load[when]["overloaded"]:
            ctx.warn(f"load average {load[when]['loadavg'][0]:.2f} {when} timing exceeded the {load[when]['cores']} "
                     "cores: times are minima over rounds, but read the slopes with their intervals")

    sizes, slopes, ratios, checks = {}, {}, {}, []
    for family in cfg.families:
        sizes[family] = _size_rows(family, rows[family], problems[family], minima, outputs, t.floor_factor, rtol)
        slopes[family] = _slopes(sizes[family], t)
        ratios[family] = _ratios(family, sizes[family], minima, t)
        slopes[family]["time_slope_difference"] = _paired_difference(ratios[family]["seq_over_rev_fit"])
        slopes[family]["time_slope_difference_batched"] = _paired_difference(ratios[family]["batched_over_rev_fit"])
        checks += [r["grads_match"] for r in sizes[family]]
        for key in ("time_fit", "seq_over_rev"):
            spans = [s["decades"] for s in (slopes[family]["time_fit"].values() if key == "time_fit"
                                            else [ratios[family]["seq_over_rev_fit"]])]  # fmt: skip
            if min(spans) < t.min_decades:
                ctx.warn(f"{family}: a time fit spans {min(spans):.2f} decades of P above the floor "
                         f"(< timing.min_decades = {t.min_decades}): widen {family}'s sizes")
    mirror = _mirror(cfg, minima, outputs, rtol) if cfg.mirror.sizes else None
    memory = _memory(cfg, depth_rows, minima, outputs, rtol) if cfg.memory.depths else None
    checks += [] if mirror is None else [mirror["jacobians_match"]]
    checks += [] if memory is None else [r["grads_match"] for r in memory["rows"]]
    flop_ratio = _flop_ratio(cfg, sizes)
    hvp = _hvp_check(items, outputs, len(problems["linear"])) if "linear" in cfg.families else None
    all_match = all(checks)

    for family in cfg.families:
        ctx.keep(**scaling_arrays(family, sizes[family], slopes[family], ratios[family]))
        ctx.log.info("%s time slopes: %s", family, {r: f["slope"] for r, f in slopes[family]["time_fit"].items()})
    ctx.keep(routes=np.array(cost.ROUTES))
    if mirror:
        ctx.keep(**mirror_arrays(mirror))
    if memory:
        ctx.keep(**memory_arrays(memory))
    ctx.save_text("report_tables.md", report_tables(sizes, slopes, ratios, load))
    if not all_match:
        bad = [(f, r["P"], r["grad_max_rel_diff"]) for f, rs in sizes.items() for r in rs if not r["grads_match"]]
        raise RunFailed(f"gradient routes disagree beyond rtol={rtol}: {bad or 'see mirror/depth checks'}")
    return {
        "sizes": sizes,
        "slopes": slopes,
        "ratios": ratios,
        "flop_ratio": flop_ratio,
        "hvp": hvp,
        "mirror": mirror,
        "memory_vs_depth": memory,
        "load": load,
        "all_grads_match": all_match,
        "grad_rtol_used": rtol,
        "notes": {
            "statistic": load["statistic"] + f" ({t.rounds} rounds; each round minimum over <= {t.repeats} calls "
            f"spanning >= {t.min_window_s} s)",
            "floor": f"a time enters a fit only if >= {t.floor_factor} x the empty call (identity in theta, same "
            "arguments) at the same size and round statistic; sizes.*.floor_s",
            "flops": "multiply-add FLOPs of the matrix products on the jaxpr (cost.dot_flops), scan bodies x length",
            "slopes": f"least squares of log time on log P, {t.confidence:.0%} t interval; difference: Welch",
            "dtype": str(jnp.asarray(0.0).dtype),
        },
    }


def _time(minima, key) -> dict:
    return measure.summary(minima[key])


def _size_rows(family, rows, problems, minima, outputs, floor_factor, rtol) -> list[dict]:
    for i, (row, problem) in enumerate(zip(rows, problems, strict=True)):
        row["time"] = {name: _time(minima, (family, i, name)) for name in TIMED if (family, i, name) in minima}
        row["floor_s"] = floor_factor * row["time"]["empty"]["best"]
        reference = outputs[(family, i, "rev")]
        diffs = {f"{route}_vs_rev": cost.max_relative_difference(outputs[(family, i, route)], reference)
                 for route in ("fwd_batched", "fwd_sequential")}  # fmt: skip
        if problem.closed_form_grad is not None:
            diffs["rev_vs_closed_form"] = cost.max_relative_difference(
                reference, problem.closed_form_grad(problem.theta, *problem.data))
        row["grad_max_rel_diff"] = diffs
        row["grads_match"] = all(d <= rtol for d in diffs.values())
    return rows


def _slopes(rows: list[dict], t: TimingConfig) -> dict:
    """Time slopes of every route over the sizes above their floor, and forward - reverse of two separate fits
    with a Welch interval (`*_unpaired`: it treats the two fits' errors as independent, though both share every
    size's curvature; the paired difference, the slope of the per-size ratio, is in `_ratios`)."""
    P, floors = [r["P"] for r in rows], [r["floor_s"] for r in rows]
    out, fits = {"time_fit": {}}, {}
    for route in [name for name in TIMED if name != "empty" and name in rows[0]["time"]]:
        times = [r["time"][route]["best"] for r in rows]
        kept = measure.fit_above_floor(P, times, floors, t.confidence, t.fit_min_sizes, cost.loglog_fit)
        fits[route] = kept["fit"]
        out["time_fit"][route] = {**_fit_dict(kept["fit"]), "sizes": kept["sizes"], "decades": kept["decades"]}
    out["min_decades"] = min(f["decades"] for f in out["time_fit"].values())
    for key, forward in (("time_slope_difference_unpaired", "fwd_sequential"),
                         ("time_slope_difference_batched_unpaired", "fwd_batched")):
        both = fits[forward] is not None and fits["rev"] is not None
        d = cost.slope_difference(fits[forward], fits["rev"], t.confidence) if both else None
        out[key] = None if d is None else {**d, **_width(d["interval"], 1.0), "forward_route": forward}
    out["flops_fwd_minus_rev"] = cost.loglog_slope(P, [r["flops"]["fwd_batched"] for r in rows])
    out["flops_fwd_minus_rev"] -= cost.loglog_slope(P, [r["flops"]["rev"] for r in rows])
    return out


def _fit_dict(fit) -> dict:
    if fit is None:
        return {"slope": None, "interval": None}
    return {"slope": fit.slope, "intercept": fit.intercept, "stderr": fit.stderr, "dof": fit.dof,
            "interval": fit.interval, **_width(fit.interval, None)}  # fmt: skip


def _width(interval, expected) -> dict:
    """Width and half-width of an interval, and (with `expected`) how far the expected value lies outside it."""
    if interval is None:
        return {"width": None, "half_width": None}
    low, high = interval
    out = {"width": high - low, "half_width": (high - low) / 2}
    if expected is not None:
        out["distance_from_expected"] = max(low - expected, expected - high, 0.0)
    return out


def _ratios(family, rows, minima, t: TimingConfig) -> dict:
    """Per size, round by round: t_rev / t_f, t_jvp / t_f, t_hvp / t_f, t_seq / t_rev, t_seq / (P t_jvp); the
    log-log slope of t_seq / t_rev against P (1: forward mode pays P where reverse pays a constant)."""
    names = {"rev_over_f": ("rev", "f"), "jvp_over_f": ("jvp", "f"), "hvp_over_f": ("hvp", "f"),
             "seq_over_rev": ("fwd_sequential", "rev"), "batched_over_rev": ("fwd_batched", "rev"),
             "seq_over_P_jvp": ("fwd_sequential", "jvp")}  # fmt: skip
    names = {name: pair for name, pair in names.items() if all(p in rows[0]["time"] for p in pair)}
    per_size = []
    for i, row in enumerate(rows):
        entry = {"P": row["P"]}
        for name, (a, b) in names.items():
            scale = row["P"] if name == "seq_over_P_jvp" else 1.0
            entry[name] = measure.ratio_summary(minima[(family, i, a)], minima[(family, i, b)], scale)
        # a ratio counts where both of its times are above the floor
        entry["above_floor"] = {name: min(row["time"][a]["best"], row["time"][b]["best"]) >= row["floor_s"]
                                for name, (a, b) in names.items()}  # fmt: skip
        per_size.append(entry)
    out = {"per_size": per_size}
    for name in names:
        kept = [e for e in per_size if e["above_floor"][name]]
        out[f"{name}_max"] = max((e[name]["best"] for e in kept), default=None)
        out[f"{name}_max_at_P"] = max(kept, key=lambda e: e[name]["best"])["P"] if kept else None
        out[f"{name}_min"] = min((e[name]["best"] for e in kept), default=None)
        out[f"{name}_median"] = float(np.median([e[name]["best"] for e in kept])) if kept else None
    out["rev_over_f_above_5"] = [e["P"] for e in per_size if e["above_floor"]["rev_over_f"]
                                 and e["rev_over_f"]["best"] > 5.0]  # fmt: skip
    for name in ("seq_over_rev", "batched_over_rev"):  # the paired slope difference forward - reverse
        ok = [e for e in per_size if e["above_floor"][name]]
        fit = cost.loglog_fit([e["P"] for e in ok], [e[name]["best"] for e in ok], t.confidence)
        fit = fit if len(ok) >= t.fit_min_sizes else None
        decades = math.log10(ok[-1]["P"] / ok[0]["P"]) if len(ok) >= 2 else 0.0
        out[f"{name}_fit"] = {**_fit_dict(fit), "sizes": [e["P"] for e in ok], "decades": decades,
                              **(_width(fit.interval, 1.0) if fit and fit.interval else {})}  # fmt: skip
    # the loop against P separate calls: its lowest round at every size (1 or below: never dearer, within noise)
    kept = [e for e in per_size if e["above_floor"]["seq_over_P_jvp"]]
    out["seq_over_P_jvp_max_low"] = max((e["seq_over_P_jvp"]["interval"][0] for e in kept), default=None)
    return out


def _paired_difference(fit: dict) -> dict | None:
    """forward - reverse time slope, paired by size: the slope of log(t_fwd / t_rev) on log P over the sizes
    where both are above the floor, with its t interval (a size's curvature common to both routes cancels)."""
    if fit["slope"] is None:
        return None
    return {"value": fit["slope"], "interval": fit["interval"], "width": fit.get("width"),
            "half_width": fit.get("half_width"), "sizes": fit["sizes"], "decades": fit["decades"],
            "method": "paired: slope of the per-size ratio t_fwd / t_rev"}  # fmt: skip


def _flop_ratio(cfg: Config, sizes: dict) -> dict:
    """cost(grad) / cost(f) in matrix-product FLOPs counted on the jaxpr: 2 for the logistic model at every
    P; for the MLP 3 - a_1 b_1 / F (cost.mlp_grad_flop_ratio) at every width, -> 3 at mlp.flops_width."""
    out = {}
    if "linear" in sizes:
        ratios = [r["flops"]["rev"] / r["flops"]["f"] for r in sizes["linear"]]
        out["linear"] = {"ratios": ratios, "expected": 2.0, "max_rel_err": max(abs(x / 2.0 - 1) for x in ratios)}
    m = cfg.mlp
    if "mlp" in sizes:
        counted = [r["flops"]["rev"] / r["flops"]["f"] for r in sizes["mlp"]]
        formula = [cost.mlp_grad_flop_ratio(cost.mlp_shapes(m.input_dim, w, m.depth)) for w in m.widths]
        # the wide net's count needs only shapes: traced, never compiled or run
        P = cost.mlp_parameter_count(m.input_dim, m.flops_width, m.flops_depth)
        loss = cost.make_mlp_loss(m.input_dim, m.flops_width, m.flops_depth)
        shapes = (jax.ShapeDtypeStruct((P,), jnp.float32), jax.ShapeDtypeStruct((m.n_samples, m.input_dim),
                  jnp.float32), jax.ShapeDtypeStruct((m.n_samples,), jnp.float32))  # fmt: skip
        wide = cost.dot_flops(jax.grad(loss), *shapes) / cost.dot_flops(loss, *shapes)
        out["mlp"] = {"ratios": counted, "formula": formula,
                      "max_rel_err_vs_formula": max(abs(c / f - 1) for c, f in zip(counted, formula, strict=True)),
                      "flops_width": m.flops_width, "flops_depth": m.flops_depth, "ratio_at_flops_width": wide,
                      "formula_at_flops_width": cost.mlp_grad_flop_ratio(
                          cost.mlp_shapes(m.input_dim, m.flops_width, m.flops_depth)), "expected": 3.0,
                      "rel_err_vs_3": abs(wide / 3.0 - 1)}  # fmt: skip
    return out


def _hvp_check(items, outputs, count: int) -> dict:
    """Forward-over-reverse H v against the closed form X^T diag(p(1-p)) X v / N in numpy, per size, as a ratio
    to the round-off bound (P + N + 8) eps sum_k |X_ki| p_k(1-p_k) sum_j |X_kj v_j| / N (sums of P and N terms)."""
    ratios = []
    for i in range(count):
        theta, v, X, t = (np.asarray(a, dtype=np.float64) for a in items[("linear", i, "hvp")][1])
        eps = float(np.finfo(np.asarray(items[("linear", i, "hvp")][1][0]).dtype).eps)
        p = 1.0 / (1.0 + np.exp(-(X @ theta)))
        N, P = X.shape
        bound = (P + N + 8) * eps * (np.abs(X).T @ (p * (1 - p) * (np.abs(X) @ np.abs(v)))) / N
        error = np.abs(np.asarray(outputs[("linear", i, "hvp")], dtype=np.float64) - cost.logistic_hvp(theta, v, X, t))
        ratios.append(float(np.max(error / bound)))
    return {"max_ratio_to_bound": max(ratios), "per_size": ratios}


def _mirror(cfg: Config, minima, outputs, rtol) -> dict:
    n = cfg.mirror.sizes
    k = len(n)
    fwd = [[_time(minima, ("mirror", i, j, "jacfwd")) for j in range(k)] for i in range(k)]
    rev = [[_time(minima, ("mirror", i, j, "jacrev")) for j in range(k)] for i in range(k)]
    ratio = [[measure.ratio_summary(minima[("mirror", i, j, "jacfwd")], minima[("mirror", i, j, "jacrev")])
              for j in range(k)] for i in range(k)]  # fmt: skip
    floor = np.array([[cfg.timing.floor_factor * _time(minima, ("mirror", i, j, "empty"))["best"]
                       for j in range(k)] for i in range(k)])  # fmt: skip
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


def _memory(cfg: Config, rows, minima, outputs, rtol) -> dict:
    D = cfg.memory.depths
    for row in rows:
        d = row["depth"]
        row["time"] = {s: _time(minima, ("depth", d, s)) for s in STRATEGIES}
        ref = outputs[("depth", d, "none")]
        row["grads_match"] = all(cost.max_relative_difference(outputs[("depth", d, s)], ref) <= rtol
                                 for s in STRATEGIES)  # fmt: skip
    slopes = {}
    for s in STRATEGIES:
        for kind in ("temp_bytes", "peak_resident_bytes"):
            values = [r[f"{kind}_{s}"] for r in rows]
            fit = cost.loglog_fit(D, values, cfg.timing.confidence) if all(v and v > 0 for v in values) else None
            slopes.setdefault(s, {})[kind] = _fit_dict(fit)
            if fit is not None and fit.interval is not None:  # the depth-independent terms bend a short fit
                slopes[s][kind]["tolerance"] = slopes[s][kind]["half_width"] + 0.1
    top = D[-1]
    return {"rows": rows, "slopes": slopes,
            "sqrt_time_over_none": measure.ratio_summary(minima[("depth", top, "sqrt_segments")],
                                                         minima[("depth", top, "none")]),
            "per_layer_time_over_none": measure.ratio_summary(minima[("depth", top, "per_layer")],
                                                              minima[("depth", top, "none")])}  # fmt: skip


def report_tables(sizes: dict, slopes: dict, ratios: dict, load: dict) -> str:
    """Markdown for the verification report: per family and size the best times and the ratios, then the slopes."""
    ms = lambda t: f"{1e3 * t['best']:.3g}"  # noqa: E731
    ratio = lambda r: f"{r['best']:.3g} [{r['interval'][0]:.3g}, {r['interval'][1]:.3g}]"  # noqa: E731
    interval = lambda d: "n/a" if not d or d.get("interval") is None else (  # noqa: E731
        f"{d.get('value', d.get('slope')):.3f} [{d['interval'][0]:.3f}, {d['interval'][1]:.3f}]")
    before, after = load["before"], load["after"]
    parts = [f"Times: {load['statistic']}. Load average {before['loadavg'][0]:.2f} before, {after['loadavg'][0]:.2f} "
             f"after on {before['cores']} cores; this process had {load['while_timing']['process_share'] or 0:.0%} "
             "of the cores while timing.\n"]  # fmt: skip
    for family, rows in sizes.items():
        header = ["P", "empty ms", "f ms", "rev ms", "jvp ms", "P jvps ms", "jacfwd ms", "t_rev/t_f", "t_seq/t_rev",
                  "t_seq/(P t_jvp)"]  # fmt: skip
        body = [[r["P"], ms(r["time"]["empty"]), ms(r["time"]["f"]), ms(r["time"]["rev"]), ms(r["time"]["jvp"]),
                 ms(r["time"]["fwd_sequential"]), ms(r["time"]["fwd_batched"]), ratio(e["rev_over_f"]),
                 ratio(e["seq_over_rev"]), ratio(e["seq_over_P_jvp"])]
                for r, e in zip(rows, ratios[family]["per_size"], strict=True)]  # fmt: skip
        s = slopes[family]
        fits = ", ".join(f"{route} {interval(fit)}" for route, fit in s["time_fit"].items())
        parts += [f"**{family}**: time slopes {fits}. Forward - reverse (paired): P jvps "
                  f"{interval(s['time_slope_difference'])}, jacfwd {interval(s['time_slope_difference_batched'])}.\n",
                  markdown_table(header, body)]  # fmt: skip
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------------------
# The arrays behind the figures (gradlab.figures.autodiff_scaling)


def _nan(value) -> float:
    return np.nan if value is None else value


TIMED = (*cost.ROUTES, "jvp", "hvp", "empty")


def scaling_arrays(family: str, rows: list[dict], slopes: dict, ratios: dict) -> dict[str, np.ndarray]:
    """Per family over (size, timed function in TIMED order): best time and its round interval, the floor,
    each fit's slope and intercept; per size the ratios t_seq / t_rev and t_seq / (P t_jvp) with intervals."""
    fits = [slopes["time_fit"].get(name, {}) for name in TIMED]
    ratio = lambda name, part: [(e[name]["best"] if part is None else e[name]["interval"][part])  # noqa: E731
                                for e in ratios["per_size"]]  # fmt: skip
    seq = ratios["seq_over_rev_fit"]
    return {
        f"{family}_P": np.array([r["P"] for r in rows]),
        f"{family}_timed": np.array(TIMED),
        **{f"{family}_time{suffix}": np.array([[_nan(r["time"][n][key] if n in r["time"] else None) if part is None
                                                else _nan(r["time"][n]["interval"][part] if n in r["time"] else None)
                                                for n in TIMED] for r in rows], dtype=float)
           for suffix, key, part in (("", "best", None), ("_low", None, 0), ("_high", None, 1))},  # fmt: skip
        f"{family}_floor": np.array([r["floor_s"] for r in rows]),
        f"{family}_time_slope": np.array([_nan(f.get("slope")) for f in fits]),
        f"{family}_time_intercept": np.array([_nan(f.get("intercept")) for f in fits]),
        f"{family}_time_interval": np.array([f.get("interval") or (np.nan, np.nan) for f in fits]),
        f"{family}_time_fitted": np.array([[r["P"] in f.get("sizes", []) for f in fits] for r in rows]),
        **{f"{family}_{name}{suffix}": np.array(ratio(name, part)) for name in ("seq_over_rev", "seq_over_P_jvp")
           for suffix, part in (("", None), ("_low", 0), ("_high", 1))},  # fmt: skip
        f"{family}_seq_over_rev_slope": np.array([_nan(seq.get("slope")), *(seq.get("interval") or (np.nan,) * 2)]),
        f"{family}_seq_over_rev_intercept": np.array(_nan(seq.get("intercept"))),
        f"{family}_ratio_fitted": np.array([r["P"] in seq["sizes"] for r in rows]),
    }


def mirror_arrays(mirror: dict) -> dict[str, np.ndarray]:
    return {"mirror_n": np.array(mirror["n"]),
            "mirror_ratio": np.array([[r["best"] for r in row] for row in mirror["ratio"]]),
            "mirror_crossover": np.array([_nan(c) for c in mirror["crossover_n_in"]])}  # fmt: skip


def memory_arrays(memory: dict) -> dict[str, np.ndarray]:
    rows = memory["rows"]
    return {
        "memory_depths": np.array([r["depth"] for r in rows]),
        "memory_strategies": np.array(STRATEGIES),
        **{f"memory_{kind}": np.array([[_nan(r[f"{kind}_{s}"]) for s in STRATEGIES] for r in rows], dtype=float)
           for kind in ("temp_bytes", "peak_resident_bytes")},  # fmt: skip
        **{f"memory_{kind}_slope": np.array([_nan(memory["slopes"][s][kind]["slope"]) for s in STRATEGIES])
           for kind in ("temp_bytes", "peak_resident_bytes")},  # fmt: skip
        "memory_time": np.array([[r["time"][s]["best"] for s in STRATEGIES] for r in rows]),
    }


if __name__ == "__main__":
    launch("autodiff_scaling")
