"""jit-compiled logistic-regression training (Problem 8) against the alternatives, measured.

Every implementation runs the same gradient descent on the same data for the same steps in the same dtype,
timed in one run, alternating, after separate compilation and a warm-up; the machine's limits (bandwidth, and
the irreducible exp + log1p + division per point) are probed in the same run, and a float64 check proves all
land on the same parameters.
The library lives in `gradlab.bench` (timing, implementations, limits, agreement, targets).

    python experiments/bench_logreg.py                                  # defaults: configs/bench_logreg.yaml
    python experiments/bench_logreg.py timing_dtype=float32 sizes.large.n_per_class=2000000
    python experiments/bench_logreg.py -m sizes.large.steps=5,20
    python experiments/bench_logreg.py backend=cpu                      # the CPU's sizes on any device

On a GPU (backend=auto) `presets.gpu` replaces the keys it sets: the large set at 4e8 points, or what fits the
device's memory; slow implementations over their time budget are skipped with the reason.
"""

from __future__ import annotations

import os

# Before torch or scikit-learn load OpenMP: idle OpenMP threads sleep instead of spinning on the two cores
# that the next implementation in the alternation is being timed on (spinning slowed JAX runs 2-10x here).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from dataclasses import dataclass, replace  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from gradlab.bench import budget, impls  # noqa: E402
from gradlab.bench import logreg as bench  # noqa: E402
from gradlab.bench.targets import logreg_targets  # noqa: E402
from gradlab.experiments.schemas import LogisticDataConfig  # noqa: E402
from gradlab.runner import quiet  # noqa: E402
from gradlab.runner.config import (  # noqa: E402
    ConfigError,
    at_least,
    check_presets,
    each,
    for_backend,
    fraction,
    increasing_pair,
    one_of,
    positive,
)
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch, memory_budget_bytes  # noqa: E402
from gradlab.runner.tables import markdown_table  # noqa: E402

DTYPES = ("float64", "float32")


@dataclass
class SizeConfig:
    n_per_class: int = at_least(1)
    steps: int = at_least(1)  # GD steps per timed call, every GD implementation but the eager ones
    slow_steps: int = at_least(1)  # GD steps per timed call of JAX without jit and PyTorch eager


@dataclass
class SizesConfig:
    small: SizeConfig
    large: SizeConfig


@dataclass
class TrainConfig:
    lr: float = positive()
    tolerance: float = positive()
    max_steps_to_tolerance: int = at_least(1)


@dataclass
class SolversConfig:
    newton_max_iter: int = at_least(1)
    sklearn_max_iter: int = at_least(1)


@dataclass
class OptionalConfig:
    torch: bool
    sklearn: bool


@dataclass
class TimingConfig:
    repeats: int = at_least(1)
    probe_repeats: int = at_least(1)
    launch_bound_factor: float = positive()


@dataclass
class BudgetConfig:
    slow_impl_s: float = positive()
    estimate_points: int = at_least(2)


@dataclass
class LimitsConfig:
    dtypes: list[str] = each(lambda d: d in DTYPES, "one of " + ", ".join(map(repr, DTYPES)))


@dataclass
class SweepConfig:
    configs: int = at_least(1)
    steps: int = at_least(1)
    lr_range: list[float] = increasing_pair()


@dataclass
class ShardingConfig:
    devices: int = at_least(1)


@dataclass
class CheckConfig:
    gd_rtol: float = positive()
    optimum_newton_iterations: int = at_least(1)
    optimum_slack: float = at_least(1.0)


@dataclass
class LimitGoal:
    limit: str = one_of("irreducible", "bandwidth")
    fraction: float = positive()


@dataclass
class LimitGoals:
    float64: LimitGoal
    float32: LimitGoal


@dataclass
class TargetsConfig:
    limit_fraction: LimitGoals
    scan_vs_loop: float = positive()
    sharded_speedup: float = positive()
    small_vs_numpy: float = positive()
    newton_vs_sklearn: float = positive()


@dataclass
class Config(BaseConfig):
    backend: str
    presets: dict[str, Any]
    device_memory_fraction: float = fraction()
    budget: BudgetConfig
    timing_dtype: str = one_of(*DTYPES)
    data: LogisticDataConfig
    sizes: SizesConfig
    train: TrainConfig
    solvers: SolversConfig
    optional: OptionalConfig
    timing: TimingConfig
    limits: LimitsConfig
    sweep: SweepConfig
    sharding: ShardingConfig
    check: CheckConfig
    targets: TargetsConfig


def check_config(cfg: Config) -> None:
    check_presets(cfg, Config)
    if cfg.precision != "float64":
        raise ConfigError("precision", cfg.precision, "'float64': the like-with-like check runs in float64 "
                          "(time in float32 with timing_dtype=float32)")
    if (2 * cfg.sizes.large.n_per_class) % cfg.sharding.devices:
        raise ConfigError("sharding.devices", cfg.sharding.devices,
                          f"a divisor of the large set's size {2 * cfg.sizes.large.n_per_class}")


def fit_to_device(cfg: Config) -> tuple[Config, str | None]:
    """The config with the large set reduced to what fits the device's memory (`gradlab.bench.budget`), and
    why it was reduced (None when it fits as configured)."""
    itemsize = max(jnp.dtype(d).itemsize for d in (cfg.timing_dtype, *cfg.limits.dtypes))
    free, source = budget.free_device_bytes(memory_budget_bytes(cfg.memory_budget_gb))
    n_per_class, reason = budget.points_that_fit(cfg.sizes.large.n_per_class, itemsize, free, source,
                                                 cfg.device_memory_fraction, cfg.sharding.devices)
    if n_per_class < 1:
        raise RunFailed(f"no large set fits the device: {reason}")
    return replace(cfg, sizes=replace(cfg.sizes, large=replace(cfg.sizes.large, n_per_class=n_per_class))), reason


def main(cfg: Config, ctx: RunContext) -> dict:
    cfg, preset = for_backend(cfg, Config, jax.default_backend())
    check_config(cfg)  # the run layer checked the top-level keys; the device's must meet the same rules
    cfg, reduced = fit_to_device(cfg)
    backend = {"platform": jax.default_backend(), "device": str(jax.devices()[0]), "preset": preset,
               "large_n_per_class": cfg.sizes.large.n_per_class, "large_reduced": reduced}
    ctx.log.info("device %s, sizes: %s%s", backend["device"], preset, f"; {reduced}" if reduced else "")
    dtype = jnp.dtype(cfg.timing_dtype)
    with quiet.alone() as machine:  # in the main job: once no other run computes (compiling and timing interleave)
        sharding = bench.sharded(cfg, cfg.sizes.large)
        small = bench.benchmark_size(cfg, cfg.sizes.small, "small", dtype, ctx.log, None)
        large = bench.benchmark_size(cfg, cfg.sizes.large, "large", dtype, ctx.log,
                                     sharding["dtypes"][cfg.timing_dtype] if sharding else None,
                                     budget_from=small)
        sizes = {"small": small, "large": large}
        failures = [f"n={size['n']}: {line}" for size in sizes.values() for line in size.pop("failures")]
        if failures:
            raise RunFailed("implementations disagree, so the timings compare unlike things: " + "; ".join(failures))
        by_dtype = bench.limits_by_dtype(cfg)
        sweep = bench.sweep_throughput(cfg, dtype)
    if not sweep["finite"]:
        raise RunFailed("the vectorised sweep diverged; lower sweep.lr_range")
    skipped = impls.skipped_optional({"torch_loop": cfg.optional.torch, "sklearn_lbfgs": cfg.optional.sklearn})
    targets = logreg_targets(sizes, by_dtype, sharding, cfg.targets, skipped)
    rows = bench.table_rows(sizes)
    ctx.save_text("table.md", markdown_table(bench.TABLE_KEYS, [list(row.values()) for row in rows]))
    ctx.keep(**bench.plot_arrays(sizes, targets))
    for name, reason in skipped.items():
        ctx.log.info("%s skipped: %s", name, reason)
    return {"timing_dtype": cfg.timing_dtype, "cpu_count": os.cpu_count(), "backend": backend,
            "optional_installed": {"torch": impls.available("torch"), "sklearn": impls.available("sklearn")},
            "skipped": skipped, "sizes": sizes, "limits_by_dtype": by_dtype, "sharding": sharding,
            "sweep": sweep, "targets": targets, "table": rows, "waited_for_the_machine_s": machine["waited_s"]}


if __name__ == "__main__":
    launch("bench_logreg")
