"""The logistic-regression benchmark (Problem 8): every implementation timed on two data sizes, checked alike.

`gradlab.experiments.bench_logreg` runs it; `cfg` below is that experiment's validated config. Per size, every
implementation of `gradlab.bench.impls` runs the same GD problem, timed alternating after separate compilation
and a warm-up (`gradlab.bench.timing.alternate`), then a float64 run checks that all compute the same thing
(`gradlab.bench.agreement`). On the large set the machine's limits are probed in the same run, per dtype
(`gradlab.bench.limits`), and the scan is sharded across host devices in a child process. The sizes suit the
default device (`for_backend`: a GPU's preset reaches 4e8 points) and what fits its memory (`fit_to_device`);
a slow implementation predicted over its time budget at the large size is skipped with the reason
(`gradlab.bench.budget`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.bench import agreement, budget, impls, limits
from gradlab.bench.targets import ratios_by_round
from gradlab.bench.timing import alternate, compile_timed, summarize

JAX_GD = ("jax_scan", "jax_scan_autodiff", "jax_python_loop", "jax_no_jit", "jax_scan_sharded")
TABLE_KEYS = ("size", "n", "implementation", "step_kind", "steps_per_call", "time_per_step_median",
              "time_per_step_spread", "time_to_tolerance", "compile_time", "speedup_vs_numpy",
              "fraction_of_bandwidth_limit")


def sample(cfg, n_per_class: int) -> tuple[jax.Array, jax.Array]:
    """The homework's data (cfg.data: means, std, seed) with n_per_class points per class, in float64."""
    return dataclasses.replace(cfg.data, n_per_class=n_per_class).sample()


def _build_args(cfg, size) -> dict:
    return {"lr_mean": cfg.train.lr, "steps": size.steps, "slow_steps": size.slow_steps,
            "tolerance": cfg.train.tolerance, "newton_max_iter": cfg.solvers.newton_max_iter,
            "sklearn_max_iter": cfg.solvers.sklearn_max_iter}


def line_up(cfg, x, y, size, leave_out=frozenset()) -> dict[str, impls.Implementation]:
    return impls.prepare(x, y, **_build_args(cfg, size), leave_out=frozenset(leave_out),
                         optional={"torch_loop": cfg.optional.torch, "sklearn_lbfgs": cfg.optional.sklearn})


def over_budget(cfg, small: dict, x, y, log) -> dict[str, str]:
    """{slow implementation: why it is skipped} on the large set (x, y): its time there bounded from the small
    size's (scaled to the large size's steps per call), then, where that bound is over budget, from one step
    measured on `budget.estimate_points` of the large set's points (`gradlab.bench.budget`). JAX without jit is
    measured on all of them: a step is a pass per primitive, as cheap as a few library steps, and each shape
    it meets compiles its primitives anew (its real run then finds them compiled)."""
    large, n_large = cfg.sizes.large, int(x.shape[0])

    def steps_per_call(name: str) -> int:
        return large.slow_steps if name in impls.EAGER else large.steps

    def call_at_large_steps(name: str, row: dict) -> float:
        if row["step_kind"] != impls.GD:  # a solve to the tolerance: about the same iterations at any size
            return row["time_per_call_median"]
        return row["time_per_step_median"] * steps_per_call(name)

    def measure_at(name: str) -> tuple[float, int]:
        # one step, times the steps of a call: an upper bound too (c + k s <= k (c + s) for k >= 1 steps)
        points = n_large if name == "jax_no_jit" else min(cfg.budget.estimate_points, n_large)
        xs, ys = budget.subset(x, y, points)
        impl = impls.build(name, xs, ys, **_build_args(cfg, replace(large, steps=1, slow_steps=1)))
        seconds = budget.one_call(impl.call) * (steps_per_call(name) if impl.step_kind == impls.GD else 1)
        log.info("budget: %s at n=%d predicts %.3g s a call", name, int(xs.shape[0]), seconds)
        return seconds, int(xs.shape[0])

    small_calls = {name: call_at_large_steps(name, row) for name, row in small["implementations"].items()
                   if name in impls.SLOW}
    calls = budget.calls_per_size(cfg.timing.repeats, checked_again=x.dtype != jnp.float64)
    return budget.slow_over_budget(small_calls, small["n"], n_large, calls, cfg.budget.slow_impl_s, measure_at)


def benchmark_size(cfg, size, label: str, dtype, log, sharding: dict | None, budget_from: dict | None = None) -> dict:
    """Time every implementation on one data size and check that they agree; `sharding` (the child's result
    for this size) adds the sharded scan's row; with `budget_from` (the small size's result) the slow
    implementations predicted over their budget here are left out, with the reason (`over_budget`)."""
    x64, y64 = sample(cfg, size.n_per_class)
    x, y = x64.astype(dtype), y64.astype(dtype)
    skipped = over_budget(cfg, budget_from, x, y, log) if budget_from is not None else {}
    n, tol = int(x.shape[0]), cfg.train.tolerance
    line = line_up(cfg, x, y, size, skipped)
    log.info("%s (n=%d): timing %s", label, n, ", ".join(line))
    for reason in skipped.values():
        log.info("%s (n=%d): skipped %s", label, n, reason)
    record = alternate({name: impl.call for name, impl in line.items()}, cfg.timing.repeats)
    # the machine's limits mean something only where a step is work, not dispatch: the large set
    probed = limits.probes(x, y, cfg.timing.probe_repeats) if label == "large" else None

    steps_to_tol, _ = agreement.gd_steps_to_tolerance(jnp.zeros(2), jnp.asarray(cfg.train.lr / n), x64, y64, tol,
                                                      max_steps=cfg.train.max_steps_to_tolerance)
    steps_to_tol = int(steps_to_tol)
    gd_reached = steps_to_tol < cfg.train.max_steps_to_tolerance

    table = {}
    for name, impl in line.items():
        stats, steps = summarize(record[name]["times"]), impl.steps(record[name]["result"])
        per_step = stats["median"] / steps
        is_gd = impl.step_kind == impls.GD
        table[name] = {
            "step_kind": impl.step_kind,
            "steps_per_call": steps,
            "time_per_step_median": per_step,
            "time_per_step_spread": stats["spread"] / steps,
            "time_per_call_median": stats["median"],
            # GD costs the same every step: steps to tolerance (counted in float64) x time per step;
            # Newton and L-BFGS are timed solving to the tolerance themselves
            "time_to_tolerance": (steps_to_tol * per_step if gd_reached else None) if is_gd else stats["median"],
            "compile_time": impl.compile_time if impl.compile_time else max(record[name]["warmup"]
                                                                             - stats["median"], 0.0),
            "compile_time_kind": "jit ahead-of-time compile" if impl.compile_time else "first call less median",
        }
    if sharding is not None:
        table["jax_scan_sharded"] = sharded_row(sharding, size.steps, steps_to_tol if gd_reached else None)

    # the like-with-like check runs in float64 (time in float32, check in float64: run the line-up once more)
    if dtype != jnp.float64:
        line = line_up(cfg, x64, y64, size, skipped)
        results = {name: impl.call() for name, impl in line.items()}
    else:
        results = {name: record[name]["result"] for name in line}
    checked = agreement.check(line, results, x64, y64, lr_mean=cfg.train.lr, tolerance=tol,
                              gd_rtol=cfg.check.gd_rtol, optimum_iterations=cfg.check.optimum_newton_iterations,
                              optimum_slack=cfg.check.optimum_slack)
    for name, row in table.items():
        row["phi_float64"] = checked["params"].get(name)
    newton_rounds = None
    if "sklearn_lbfgs" in record:  # the faster jit-compiled Newton, round by round against scikit-learn
        newton = min(("jax_newton", "jax_newton_analytic"), key=lambda k: table[k]["time_to_tolerance"])
        newton_rounds = {"newton": newton, **ratios_by_round(record["sklearn_lbfgs"]["times"],
                                                             record[newton]["times"])}
    empty = limits.empty_call_time(dtype, cfg.timing.probe_repeats) if probed is None else probed["empty_call_time"]
    return {**summarize_size(table, probed, checked, sharding, newton_rounds, n=n, steps=size.steps,
                             steps_to_tol=steps_to_tol),
            "skipped": skipped, "launch": {
                **limits.launch(table["jax_scan"]["time_per_step_median"], empty, cfg.timing.launch_bound_factor),
                "time_per_call": table["jax_scan"]["time_per_call_median"],
                "note": "a step of the library scan (one iteration inside its one call) against an empty call: "
                        "launch-bound when under timing.launch_bound_factor empty calls, i.e. a call per step "
                        "would cost mostly its launch"}}


def sharded_row(sharding: dict, steps: int, steps_to_tol: int | None) -> dict:
    """The table row of the sharded scan (timed in the child) for one dtype's `sharding` result."""
    per_step = sharding["sharded_time_per_step"]
    return {
        "step_kind": impls.GD, "steps_per_call": steps, "time_per_step_median": per_step,
        "time_per_step_spread": sharding["sharded_spread_per_step"],
        "time_per_call_median": per_step * steps,
        "time_to_tolerance": steps_to_tol * per_step if steps_to_tol is not None else None,
        "compile_time": sharding["compile_time"], "compile_time_kind": "jit ahead-of-time compile",
        "measured_in": "child process on the CPU backend with forced host devices",
    }


def sharded(cfg, size) -> dict | None:
    """The library scan on 1 and on `sharding.devices` host devices, in a child process, per dtype (the timing
    dtype and `limits.dtypes`): {"devices", "dtypes": {dtype: times per step, speedup by round, phi}}."""
    if cfg.sharding.devices <= 1:
        return None
    d = cfg.data
    spec = {"dtypes": list(dict.fromkeys([cfg.timing_dtype, *cfg.limits.dtypes])), "seed": d.seed,
            "n_per_class": size.n_per_class, "mean0": d.mean0, "mean1": d.mean1, "std": d.std,
            "lr_mean": cfg.train.lr, "steps": size.steps, "repeats": cfg.timing.repeats,
            "devices": cfg.sharding.devices}
    child = limits.run_sharded(spec)
    by_dtype = {}
    for dtype, row in child["dtypes"].items():
        one, many, speedup = row["single_device"], row["sharded"], summarize(row["speedup_by_round"])
        by_dtype[dtype] = {
            "devices": child["devices"], "speedup": speedup["median"], "speedup_spread": speedup["spread"],
            "single_device_time_per_step": one["time_per_call_median"] / size.steps,
            "sharded_time_per_step": many["time_per_call_median"] / size.steps,
            "sharded_spread_per_step": many["time_per_call_spread"] / size.steps,
            "compile_time": many["compile_time"], "phi": many["phi"], "single_device_phi": one["phi"],
            "cores_busy": {"single_device": row["cores_busy"]["one"], "sharded": row["cores_busy"]["many"]},
            **_intra_op(row)}
    return {"devices": child["devices"], "dtypes": by_dtype}


def _intra_op(row: dict) -> dict:
    """How much faster the single-device scan runs free than pinned to one core (XLA's own threads), and so
    the most a sharded scan could gain on this machine: cores / that factor."""
    pinned = row["single_device_on_one_core"]
    if pinned is None:
        return {}
    speedup = pinned["time_per_call_median"] / row["single_device"]["time_per_call_median"]
    return {"single_device_intra_op_speedup": speedup, "sharded_speedup_ceiling": pinned["cores_available"] / speedup}


def summarize_size(table, probed, checked, sharding, newton_rounds, *, n, steps, steps_to_tol) -> dict:
    def ratio(a, b):
        return a / b if a is not None and b is not None and b > 0 else None

    def per_step(name):
        return table[name]["time_per_step_median"] if name in table else None

    def to_tol(name):
        return table[name]["time_to_tolerance"] if name in table else None

    gd = [name for name, row in table.items() if row["step_kind"] == impls.GD]
    best_jax = min((name for name in gd if name in JAX_GD), key=per_step)
    gd_to_tol = [to_tol(name) for name in gd if to_tol(name) is not None]
    newton_time = min(to_tol("jax_newton"), to_tol("jax_newton_analytic"))  # the faster jit-compiled Newton
    check = {k: v for k, v in checked.items() if k not in ("params", "failures")}
    return {
        "n": n, "steps_per_call": steps, "gd_steps_to_tolerance": steps_to_tol,
        "implementations": table,
        "speedup_vs_numpy": {name: ratio(per_step("numpy_loop"), per_step(name)) for name in gd},
        "speedup_vs_torch": ({name: ratio(per_step("torch_loop"), per_step(name)) for name in gd}
                             if "torch_loop" in table else None),
        "newton_vs_sklearn": newton_rounds and newton_rounds["median"],
        "newton_vs_sklearn_rounds": newton_rounds,
        "library_newton_vs_sklearn": ratio(to_tol("sklearn_lbfgs"), to_tol("jax_newton")),
        "newton_vs_best_gd": ratio(min(gd_to_tol, default=None), newton_time),
        "best_jax_gd": best_jax,
        "fraction_of_bandwidth_limit": probed and {
            name: probed["bandwidth_probe_time"] / row["time_per_step_median"] for name, row in table.items()},
        "fraction_of_irreducible_limit": probed and {
            name: probed["irreducible_probe_time"] / row["time_per_step_median"] for name, row in table.items()},
        "limits": probed,
        "sharding": sharding,
        "agreement": check,
        "failures": checked["failures"],
    }


def limits_by_dtype(cfg) -> dict:
    """On the large set, per dtype: the library step (scan and Python loop) timed in turn with the probes."""
    x64, y64 = sample(cfg, cfg.sizes.large.n_per_class)
    return {dtype: limits.step_against_limits(x64.astype(dtype), y64.astype(dtype), lr_mean=cfg.train.lr,
                                              steps=cfg.sizes.large.steps, repeats=cfg.timing.probe_repeats,
                                              launch_factor=cfg.timing.launch_bound_factor)
            for dtype in cfg.limits.dtypes}


def sweep_throughput(cfg, dtype) -> dict:
    """configs x steps per second of jax.jit(jax.vmap(train)) over step sizes, against one run at a time."""
    x, y = sample(cfg, cfg.sizes.small.n_per_class)
    x, y = x.astype(dtype), y.astype(dtype)
    n = x.shape[0]
    lrs = jnp.geomspace(*cfg.sweep.lr_range, cfg.sweep.configs).astype(dtype) / n
    phi_init, momentum = jnp.zeros(2, dtype), jnp.zeros((), dtype)
    train = impls.library_train(cfg.sweep.steps)
    vectorised, vec_compile = compile_timed(jax.vmap(train, in_axes=(None, 0, None, None, None)),
                                            phi_init, lrs, momentum, x, y)
    single, single_compile = compile_timed(train, phi_init, lrs[0], momentum, x, y)
    record = alternate({"vectorised": lambda: vectorised(phi_init, lrs, momentum, x, y),
                        "single": lambda: single(phi_init, lrs[0], momentum, x, y)}, cfg.timing.repeats)
    vec, one = summarize(record["vectorised"]["times"]), summarize(record["single"]["times"])
    middle = cfg.sweep.configs // 2
    swept = record["vectorised"]["result"].phi[middle]
    alone = single(phi_init, lrs[middle], momentum, x, y).phi
    throughput = cfg.sweep.configs * cfg.sweep.steps / vec["median"]
    single_throughput = cfg.sweep.steps / one["median"]
    return {
        "configs": cfg.sweep.configs, "steps": cfg.sweep.steps, "n": int(n),
        "finite": bool(jnp.all(jnp.isfinite(swept))),
        "throughput_config_steps_per_s": throughput, "time_median": vec["median"], "time_spread": vec["spread"],
        "compile_time": vec_compile,
        "single_run_steps_per_s": single_throughput, "single_run_compile_time": single_compile,
        "gain_over_one_run_at_a_time": throughput / single_throughput,
        "max_abs_diff_vs_single_run": float(jnp.max(jnp.abs(swept - alone))),
    }


def table_rows(sizes: dict) -> list[dict]:
    """One row per (size, implementation): the columns of table.md."""
    rows = []
    for label, size in sizes.items():
        for name, row in size["implementations"].items():
            values = {"size": label, "n": size["n"], "implementation": name, **row,
                      "speedup_vs_numpy": size["speedup_vs_numpy"].get(name),
                      "fraction_of_bandwidth_limit": (size["fraction_of_bandwidth_limit"] or {}).get(name)}
            rows.append({key: values.get(key) for key in TABLE_KEYS})
    return rows


def plot_arrays(sizes: dict, targets: dict) -> dict[str, np.ndarray]:
    """The flat arrays the figures draw (gradlab.figures.bench_logreg)."""
    names = list(dict.fromkeys(name for size in sizes.values() for name in size["implementations"]))

    def grid(key):
        return np.array([[size["implementations"].get(name, {}).get(key) for name in names]
                         for size in sizes.values()], dtype=float)  # None -> nan

    return {
        "implementations": np.array(names), "size_labels": np.array(list(sizes)),
        "size_n": np.array([size["n"] for size in sizes.values()]),
        "time_per_step": grid("time_per_step_median"), "time_to_tolerance": grid("time_to_tolerance"),
        "target_names": np.array(list(targets)),
        "target_values": np.array([t["value"] for t in targets.values()], dtype=float),
        "target_goals": np.array([t["target"] for t in targets.values()], dtype=float),
        "target_met": np.array([t["met"] for t in targets.values()], dtype=float),  # 1, 0, nan (not measured)
    }
