"""Issue 7: jit-compiled logistic-regression training (Problem 8) against the alternatives, measured.

Every implementation runs the same gradient descent on the same data for the same steps in the same dtype,
timed in one run, alternating, after separate compilation and a warm-up; the machine's limits (bandwidth,
exp/log throughput) are probed in the same run, and a float64 check proves all land on the same parameters.

    python experiments/bench_logreg.py                                  # defaults: configs/bench_logreg.yaml
    python experiments/bench_logreg.py timing_dtype=float32 sizes.large.n_per_class=2000000
    python experiments/bench_logreg.py -m sizes.large.steps=5,20
"""

from __future__ import annotations

import os

# Before torch or scikit-learn load OpenMP: idle OpenMP threads sleep instead of spinning on the two cores
# that the next implementation in the alternation is being timed on (spinning slowed JAX runs 2-10x here).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import dataclasses  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from gradlab.bench import impls as bench_impls
from gradlab.bench import limits as bench_limits
from gradlab.problems import logistic  # noqa: E402
from gradlab.runner.config import ConfigError, at_least, finite, increasing_pair, one_of, positive  # noqa: E402
from gradlab.runner.plotting import figure  # noqa: E402
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch  # noqa: E402
from gradlab.bench.timing import block, compile_timed, summarize  # noqa: E402
from gradlab.problems.training import make_train  # noqa: E402


@dataclass
class DataConfig:
    mean0: float = finite(-1.0)
    mean1: float = finite(1.0)
    std: float = positive(1.0)
    seed: int = at_least(0, 0)


@dataclass
class SizeConfig:
    n_per_class: int = at_least(1, 10)
    steps: int = at_least(1, 100)


@dataclass
class SizesConfig:
    small: SizeConfig = dataclasses.field(default_factory=lambda: SizeConfig(10, 100))
    large: SizeConfig = dataclasses.field(default_factory=lambda: SizeConfig(500_000, 10))


@dataclass
class TrainConfig:
    lr: float = positive(1.0)
    tolerance: float = positive(1e-6)
    max_steps_to_tolerance: int = at_least(1, 100_000)


@dataclass
class NewtonConfig:
    max_iter: int = at_least(1, 50)


@dataclass
class SklearnConfig:
    max_iter: int = at_least(1, 1000)


@dataclass
class OptionalConfig:
    torch: bool = True
    sklearn: bool = True


@dataclass
class TimingConfig:
    repeats: int = at_least(1, 7)
    probe_repeats: int = at_least(1, 7)


@dataclass
class SweepConfig:
    configs: int = at_least(1, 1024)
    steps: int = at_least(1, 200)
    lr_range: list[float] = increasing_pair([0.1, 3.0])


@dataclass
class ShardingConfig:
    devices: int = at_least(1, 2)


@dataclass
class CheckConfig:
    gd_rtol: float = positive(1e-9)
    optimum_newton_iterations: int = at_least(1, 30)
    optimum_slack: float = at_least(1.0, 2.0)


@dataclass
class Config(BaseConfig):
    timing_dtype: str = one_of("float64", "float32", default="float64")
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    sizes: SizesConfig = dataclasses.field(default_factory=SizesConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    newton: NewtonConfig = dataclasses.field(default_factory=NewtonConfig)
    sklearn: SklearnConfig = dataclasses.field(default_factory=SklearnConfig)
    optional: OptionalConfig = dataclasses.field(default_factory=OptionalConfig)
    timing: TimingConfig = dataclasses.field(default_factory=TimingConfig)
    sweep: SweepConfig = dataclasses.field(default_factory=SweepConfig)
    sharding: ShardingConfig = dataclasses.field(default_factory=ShardingConfig)
    check: CheckConfig = dataclasses.field(default_factory=CheckConfig)


JAX_GD = ("jax_scan", "jax_scan_analytic", "jax_python_loop", "jax_no_jit", "jax_scan_sharded")


def line_up(cfg: Config, x, y, steps: int) -> dict[str, bench_impls.Implementation]:
    impls = bench_impls.prepare(x, y, lr_mean=cfg.train.lr, steps=steps, tolerance=cfg.train.tolerance,
                                newton_max_iter=cfg.newton.max_iter, sklearn_max_iter=cfg.sklearn.max_iter)
    dropped = {"torch_loop": not cfg.optional.torch, "sklearn_lbfgs": not cfg.optional.sklearn}
    return {name: impl for name, impl in impls.items() if not dropped.get(name, False)}


def benchmark_size(cfg: Config, size: SizeConfig, dtype, label: str, log) -> dict:
    """Time every implementation on one data size, probe the limits, and check the parameters agree."""
    d = cfg.data
    x64, y64 = logistic.sample_data(jax.random.key(d.seed), size.n_per_class, d.mean0, d.mean1, d.std)
    x, y = x64.astype(dtype), y64.astype(dtype)
    n, tol = int(x.shape[0]), cfg.train.tolerance
    impls = line_up(cfg, x, y, size.steps)
    log.info("%s (n=%d): timing %s", label, n, ", ".join(impls))
    record = bench_impls.measure_alternating(impls, cfg.timing.repeats)
    # the machine's limits mean something only where a step is work, not dispatch: the large set
    limits = bench_limits.probes(x, y, cfg.timing.probe_repeats) if label == "large" else None

    steps_to_tol, _ = bench_impls.gd_steps_to_tolerance(jnp.zeros(2), jnp.asarray(cfg.train.lr / n), x64, y64,
                                                        tol, max_steps=cfg.train.max_steps_to_tolerance)
    steps_to_tol = int(steps_to_tol)
    gd_reached = steps_to_tol < cfg.train.max_steps_to_tolerance

    table = {}
    for name, impl in impls.items():
        stats, steps = summarize(record[name]["times"]), impl.steps(record[name]["result"])
        per_step = stats["median"] / steps
        is_gd = impl.step_kind == bench_impls.GD
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

    if cfg.sharding.devices > 1 and label == "large":
        table["jax_scan_sharded"], sharding = sharded(cfg, size, steps_to_tol if gd_reached else None)
    else:
        sharding = None

    agreement = check_agreement(cfg, impls, record, x64, y64, size, dtype, table)
    return summarize_size(table, limits, agreement, sharding, n=n, steps=size.steps, steps_to_tol=steps_to_tol)


def sharded(cfg: Config, size: SizeConfig, steps_to_tol: int | None) -> tuple[dict, dict]:
    d = cfg.data
    spec = {"dtype": cfg.timing_dtype, "seed": d.seed, "n_per_class": size.n_per_class, "mean0": d.mean0,
            "mean1": d.mean1, "std": d.std, "lr_mean": cfg.train.lr, "steps": size.steps,
            "repeats": cfg.timing.repeats, "devices": cfg.sharding.devices}
    child = bench_limits.run_sharded(spec)
    one, many = child["single_device"], child["sharded"]
    per_step = many["time_per_call_median"] / size.steps
    row = {
        "step_kind": bench_impls.GD, "steps_per_call": size.steps, "time_per_step_median": per_step,
        "time_per_step_spread": many["time_per_call_spread"] / size.steps,
        "time_per_call_median": many["time_per_call_median"],
        "time_to_tolerance": steps_to_tol * per_step if steps_to_tol is not None else None,
        "compile_time": many["compile_time"], "compile_time_kind": "jit ahead-of-time compile",
        "measured_in": "child process with forced host devices",
    }
    info = {"devices": child["devices"], "single_device_time_per_step": one["time_per_call_median"] / size.steps,
            "sharded_time_per_step": per_step,
            "speedup": one["time_per_call_median"] / many["time_per_call_median"],
            "phi": many["phi"], "single_device_phi": one["phi"]}
    return row, info


def check_agreement(cfg, impls, record, x64, y64, size, dtype, table) -> dict:
    """Float64: every GD implementation on the same parameters as jax_scan; solvers near the optimum."""
    if dtype != jnp.float64:  # time in float32, check in float64: run the line-up once more in float64
        impls = line_up(cfg, x64, y64, size.steps)
        record = {name: {"result": impl.call()} for name, impl in impls.items()}
    params = {name: impl.params(record[name]["result"]) for name, impl in impls.items()}
    reference = params["jax_scan"]
    gd_diff = {name: float(np.max(np.abs(phi - reference)) / max(np.max(np.abs(reference)), 1.0))
               for name, phi in params.items() if impls[name].step_kind == bench_impls.GD}
    phi_star, mu = bench_impls.optimum(x64, y64, cfg.check.optimum_newton_iterations)
    bound = cfg.check.optimum_slack * cfg.train.tolerance / mu
    solvers = {name: {"phi": phi, "distance_to_optimum": float(np.linalg.norm(phi - phi_star)),
                      "grad_norm": bench_impls.mean_gradient_norm(phi, x64, y64)}
               for name, phi in params.items() if impls[name].step_kind != bench_impls.GD}
    for name, row in table.items():
        row["phi_float64"] = params.get(name)
    failures = [f"{name} ends {diff:.2e} (relative) from jax_scan" for name, diff in gd_diff.items()
                if not diff <= cfg.check.gd_rtol]
    failures += [f"{name} ends {s['distance_to_optimum']:.2e} from the optimum (bound {bound:.2e})"
                 for name, s in solvers.items() if not s["distance_to_optimum"] <= bound]
    failures += [f"{name} stops at ||mean gradient|| = {s['grad_norm']:.2e} > tolerance {cfg.train.tolerance:g}"
                 for name, s in solvers.items() if not s["grad_norm"] < cfg.train.tolerance]
    if failures:
        raise RunFailed(f"implementations disagree at n={x64.shape[0]}, so the timings compare unlike "
                        f"things: {'; '.join(failures)}")
    return {"gd_max_rel_diff": max(gd_diff.values()), "gd_rel_diff": gd_diff, "gd_params": reference,
            "optimum": phi_star, "mu": mu, "optimum_bound": bound, "solvers": solvers}


def summarize_size(table, limits, agreement, sharding, *, n, steps, steps_to_tol) -> dict:
    def ratio(a, b):
        return a / b if a is not None and b is not None and b > 0 else None

    def per_step(name):
        return table[name]["time_per_step_median"] if name in table else None

    def to_tol(name):
        return table[name]["time_to_tolerance"] if name in table else None

    gd = [name for name, row in table.items() if row["step_kind"] == bench_impls.GD]
    best_jax = min((name for name in gd if name in JAX_GD), key=per_step)
    gd_to_tol = [to_tol(name) for name in gd if to_tol(name) is not None]
    newton_time = min(to_tol("jax_newton"), to_tol("jax_newton_analytic"))  # the faster jit-compiled Newton
    return {
        "n": n, "steps_per_call": steps, "gd_steps_to_tolerance": steps_to_tol,
        "implementations": table,
        "speedup_vs_numpy": {name: ratio(per_step("numpy_loop"), per_step(name)) for name in gd},
        "speedup_vs_torch": ({name: ratio(per_step("torch_loop"), per_step(name)) for name in gd}
                             if "torch_loop" in table else None),
        "newton_vs_sklearn": ratio(to_tol("sklearn_lbfgs"), newton_time),
        "library_newton_vs_sklearn": ratio(to_tol("sklearn_lbfgs"), to_tol("jax_newton")),
        "newton_vs_best_gd": ratio(min(gd_to_tol, default=None), newton_time),
        "best_jax_gd": best_jax,
        "fraction_of_bandwidth_limit": limits and {
            name: limits["bandwidth_probe_time"] / row["time_per_step_median"] for name, row in table.items()},
        "fraction_of_exp_log_limit": limits and {
            name: limits["exp_log_probe_time"] / row["time_per_step_median"] for name, row in table.items()},
        "limits": limits,
        "sharding": sharding,
        "agreement": agreement,
    }


def sweep_throughput(cfg: Config, dtype) -> dict:
    """configs x steps per second of jax.jit(jax.vmap(train)) over step sizes, against one run at a time."""
    d, small = cfg.data, cfg.sizes.small
    x, y = logistic.sample_data(jax.random.key(d.seed), small.n_per_class, d.mean0, d.mean1, d.std)
    x, y = x.astype(dtype), y.astype(dtype)
    n = x.shape[0]
    lrs = jnp.geomspace(*cfg.sweep.lr_range, cfg.sweep.configs).astype(dtype) / n
    phi_init, momentum = jnp.zeros(2, dtype), jnp.zeros((), dtype)
    train = make_train(logistic.bce_loss, "sgd", cfg.sweep.steps)
    vectorised, vec_compile = compile_timed(jax.vmap(train, in_axes=(None, 0, None, None, None)),
                                            phi_init, lrs, momentum, x, y)
    single, single_compile = compile_timed(train, phi_init, lrs[0], momentum, x, y)
    vec_times, single_times = [], []
    for _ in range(cfg.timing.repeats):
        for fn, args, times in ((vectorised, lrs, vec_times), (single, lrs[0], single_times)):
            start = time.perf_counter()
            block(fn(phi_init, args, momentum, x, y))
            times.append(time.perf_counter() - start)
    vec, one = summarize(vec_times), summarize(single_times)
    middle = cfg.sweep.configs // 2
    swept = vectorised(phi_init, lrs, momentum, x, y).phi[middle]
    alone = single(phi_init, lrs[middle], momentum, x, y).phi
    if not bool(jnp.all(jnp.isfinite(swept))):
        raise RunFailed("the vectorised sweep diverged; lower sweep.lr_range")
    throughput = cfg.sweep.configs * cfg.sweep.steps / vec["median"]
    single_throughput = cfg.sweep.steps / one["median"]
    return {
        "configs": cfg.sweep.configs, "steps": cfg.sweep.steps, "n": int(n),
        "throughput_config_steps_per_s": throughput, "time_median": vec["median"], "time_spread": vec["spread"],
        "compile_time": vec_compile,
        "single_run_steps_per_s": single_throughput, "single_run_compile_time": single_compile,
        "gain_over_one_run_at_a_time": throughput / single_throughput,
        "max_abs_diff_vs_single_run": float(jnp.max(jnp.abs(swept - alone))),
    }


def main(cfg: Config, ctx: RunContext) -> dict:
    if cfg.precision != "float64":
        raise ConfigError("precision", cfg.precision, "'float64': the like-with-like check runs in float64 "
                          "(time in float32 with timing_dtype=float32)")
    if (2 * cfg.sizes.large.n_per_class) % cfg.sharding.devices:
        raise ConfigError("sharding.devices", cfg.sharding.devices,
                          f"a divisor of the large set's size {2 * cfg.sizes.large.n_per_class}")
    dtype = jnp.dtype(cfg.timing_dtype)
    sizes = {label: benchmark_size(cfg, size, dtype, label, ctx.log)
             for label, size in (("small", cfg.sizes.small), ("large", cfg.sizes.large))}
    sweep = sweep_throughput(cfg, dtype)
    targets = check_targets(sizes)
    rows = table_rows(sizes)
    ctx.save_text("table.md", markdown_table(rows))
    plot_times(ctx, sizes, targets)
    return {"timing_dtype": cfg.timing_dtype, "cpu_count": os.cpu_count(),
            "optional_installed": {"torch": bench_impls.available("torch"),
                                   "sklearn": bench_impls.available("sklearn")},
            "sizes": sizes, "sweep": sweep, "targets": targets, "table": rows}


def check_targets(sizes: dict) -> dict:
    small, large = sizes["small"], sizes["large"]
    scan_vs_numpy = small["speedup_vs_numpy"].get("jax_scan")
    best_scan_vs_numpy = max(small["speedup_vs_numpy"]["jax_scan"], small["speedup_vs_numpy"]["jax_scan_analytic"])
    best = large["implementations"][large["best_jax_gd"]]["time_per_step_median"]
    numpy_large = large["implementations"]["numpy_loop"]["time_per_step_median"]
    torch_large = large["implementations"].get("torch_loop", {}).get("time_per_step_median")

    def target(value, goal, met):
        return {"value": value, "target": goal, "met": None if value is None else bool(met)}

    return {
        "small_scan_vs_numpy_per_step": target(scan_vs_numpy, ">= 30", scan_vs_numpy >= 30),
        "small_best_scan_vs_numpy_per_step": target(best_scan_vs_numpy, ">= 30", best_scan_vs_numpy >= 30),
        **{f"{label}_newton_vs_sklearn": target(sizes[label]["newton_vs_sklearn"], ">= 20",
                                                (sizes[label]["newton_vs_sklearn"] or 0) >= 20)
           for label in sizes},
        "large_best_jax_vs_numpy": target(numpy_large / best, "> 1", numpy_large > best),
        "large_best_jax_vs_torch": target(torch_large / best if torch_large else None, "> 1",
                                          torch_large is not None and torch_large > best),
        "large_best_jax": large["best_jax_gd"],
    }


def table_rows(sizes: dict) -> list[dict]:
    rows = []
    for label, size in sizes.items():
        for name, row in size["implementations"].items():
            rows.append({"size": label, "n": size["n"], "implementation": name, "step_kind": row["step_kind"],
                         "time_per_step_median": row["time_per_step_median"],
                         "time_per_step_spread": row["time_per_step_spread"],
                         "time_to_tolerance": row["time_to_tolerance"], "compile_time": row["compile_time"],
                         "speedup_vs_numpy": size["speedup_vs_numpy"].get(name),
                         "fraction_of_bandwidth_limit": (size["fraction_of_bandwidth_limit"] or {}).get(name)})
    return rows


def markdown_table(rows: list[dict]) -> str:
    def cell(value):
        return "-" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)

    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(cell(row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def plot_times(ctx: RunContext, sizes: dict, targets: dict) -> None:
    fig, axes = figure(2, width=13, height=5)
    names = list(dict.fromkeys(name for size in sizes.values() for name in size["implementations"]))
    width = 0.8 / len(sizes)
    for ax, key, label in ((axes[0], "time_per_step_median", "time per step (s)"),
                           (axes[1], "time_to_tolerance", "time to tolerance (s)")):
        for i, (size_label, size) in enumerate(sizes.items()):
            values = [size["implementations"].get(name, {}).get(key) for name in names]
            heights = [v if v is not None else np.nan for v in values]
            ax.bar(np.arange(len(names)) + i * width, heights, width, label=f"{size_label} (n={size['n']:,})")
        ax.set_yscale("log")
        ax.set_xticks(np.arange(len(names)) + width * (len(sizes) - 1) / 2, names, rotation=40, ha="right")
        ax.set(ylabel=label)
        ax.legend()
    library, best = (targets[f"small_{k}scan_vs_numpy_per_step"]["value"] for k in ("", "best_"))
    axes[0].set_title(f"jit-compiled scans are {library:.0f}x (library) and {best:.0f}x (best) faster per step "
                      f"than NumPy on {sizes['small']['n']} points")
    ratio = sizes["small"]["newton_vs_sklearn"]
    axes[1].set_title("Newton (jit) reaches the tolerance first" + (f", {ratio:.0f}x before scikit-learn on "
                                                                   f"{sizes['small']['n']} points" if ratio else ""))
    ctx.save_figure(fig, "time_per_step_and_to_tolerance.png",
                    "Time per step (GD step, Newton or L-BFGS iteration) and time to the gradient tolerance of "
                    "every implementation at both data sizes, log scale; all measured in one run, alternating.")


if __name__ == "__main__":
    launch("bench_logreg")
