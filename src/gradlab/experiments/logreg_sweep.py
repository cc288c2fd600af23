"""Problem 8, vectorised: thousands of (seed, learning rate, momentum) trainings in one jit(vmap(train)) call.

    python experiments/logreg_sweep.py                          # 10,000 configurations x 1,000 steps
    python experiments/logreg_sweep.py steps=200 lr.num=20 optimizer=adam
    python experiments/logreg_sweep.py seeds.first=5 seeds.count=3      # data seeds 5, 6, 7
    XLA_FLAGS=--xla_force_host_platform_device_count=2 python experiments/logreg_sweep.py   # sharded on 2
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass

import jax
import numpy as np

from gradlab.bench import timing
from gradlab.experiments.schemas import LogisticDataConfig, NewtonConfig
from gradlab.problems import vectorised_sweep
from gradlab.problems.training import OPTIMIZERS
from gradlab.runner.config import ConfigError, at_least, each, in_range, one_of, positive
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch


@dataclass
class SeedsConfig:
    first: int = at_least(0)
    count: int = at_least(1)


@dataclass
class LearningRateConfig:
    low: float = positive()
    high: float = positive()
    num: int = at_least(1)


@dataclass
class Config(BaseConfig):
    data: LogisticDataConfig
    seeds: SeedsConfig
    lr: LearningRateConfig
    momenta: list[float] = each(lambda m: 0 <= m < 1, "in [0, 1)")
    optimizer: str = one_of(*OPTIMIZERS)
    steps: int = at_least(1)
    timing_repeats: int = at_least(1)
    curves: int = in_range(0, 50, include_high=True)
    converged_gap: float = positive()
    newton: NewtonConfig


def check_seeds(cfg: Config) -> None:
    """The sweep draws data set s for each seed s in seeds.first, ..., seeds.first + count - 1 (data.seed follows
    seeds.first in the YAML); a data.seed that differs would be recorded as the run's seed but never used."""
    if cfg.data.seed != cfg.seeds.first:
        raise ConfigError("data.seed", cfg.data.seed, f"the sweep's first data seed, seeds.first={cfg.seeds.first} "
                          "(set seeds.first instead)")


def main(cfg: Config, ctx: RunContext) -> dict:
    check_seeds(cfg)
    seeds = np.arange(cfg.seeds.first, cfg.seeds.first + cfg.seeds.count)
    lrs = np.geomspace(cfg.lr.low, cfg.lr.high, cfg.lr.num)
    grid = vectorised_sweep.full_grid(seeds, lrs, np.asarray(cfg.momenta))
    devices = jax.devices()
    batch, rows = vectorised_sweep.shard_batch(grid, devices)

    data = dataclasses.asdict(cfg.data)
    sweep = vectorised_sweep.make_sweep(data, cfg.optimizer, cfg.steps)
    compiled, compile_s = timing.compile_timed(sweep, *batch)
    stats = timing.time_call(compiled, *batch, repeats=cfg.timing_repeats, warmup=1)
    result = jax.tree.map(lambda a: np.asarray(a)[:rows], compiled(*batch))
    if not np.all(np.isfinite(result.final_loss)):
        bad = int(np.argmax(~np.isfinite(result.final_loss)))
        raise RunFailed(f"configuration {bad} (seed {grid.seeds[bad]}, lr {grid.lrs[bad]:g}, momentum "
                        f"{grid.momenta[bad]:g}) ended with a non-finite loss")

    optimum = np.asarray(vectorised_sweep.optimum_losses(data, seeds, cfg.newton.tol, cfg.newton.max_iter))
    gap = result.final_loss - optimum[grid.seeds - cfg.seeds.first]
    write_table(ctx.path("sweep.csv"), grid, result, gap)

    shape = (len(seeds), len(lrs), len(cfg.momenta))
    gap_median = np.median(gap.reshape(shape), axis=0)  # (lr, momentum) over seeds
    best_lr, best_m = np.unravel_index(int(np.argmin(gap_median)), gap_median.shape)
    # convergence curves of the first seed at the first momentum, for `curves` learning rates spread over the range
    picks = np.unique(np.linspace(0, len(lrs) - 1, cfg.curves).round().astype(int))
    ctx.keep(lrs=lrs, momenta=np.asarray(cfg.momenta), gap=gap.reshape(shape), optimum=optimum,
             curve_lrs=lrs[picks], curve_losses=result.losses.reshape(*shape, -1)[0, picks, 0])
    config_steps = rows * cfg.steps
    return {
        "configurations": rows,
        "steps": cfg.steps,
        "devices": {"count": len(devices), "kinds": sorted({d.device_kind for d in devices})},
        "throughput": {
            "config_steps_per_s": config_steps / stats["median"],
            "sweep_time_median_s": stats["median"],
            "sweep_time_spread_s": stats["spread"],
            "compile_time_s": compile_s,
        },
        "best": {"lr": lrs[best_lr], "momentum": cfg.momenta[best_m], "final_gap_median": gap_median[best_lr, best_m]},
        "converged_fraction": float(np.mean(gap < cfg.converged_gap)),
    }


def write_table(path, grid, result, gap) -> None:
    """sweep.csv: one row per configuration, floats written with repr (exact round trip)."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seed", "lr", "momentum", "phi0", "phi1", "final_loss", "gap_to_optimum", "grad_norm"])
        for row in zip(grid.seeds, grid.lrs, grid.momenta, result.phi[:, 0], result.phi[:, 1], result.final_loss,
                       gap, result.grad_norm, strict=True):
            writer.writerow([int(row[0]), *(repr(float(v)) for v in row[1:])])


if __name__ == "__main__":
    launch("logreg_sweep")
