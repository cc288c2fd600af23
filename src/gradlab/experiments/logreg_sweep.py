"""Problem 8, vectorised: thousands of (seed, learning rate, momentum) trainings in one jit(vmap(train)) call.

    python experiments/logreg_sweep.py                          # 10,000 configurations x 1,000 steps
    python experiments/logreg_sweep.py steps=200 lr.num=20 optimizer=adam
    XLA_FLAGS=--xla_force_host_platform_device_count=2 python experiments/logreg_sweep.py   # sharded on 2
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass

import jax
import numpy as np

from gradlab.bench import timing
from gradlab.problems import vectorised_sweep
from gradlab.runner.config import at_least, each, finite, in_range, one_of, positive
from gradlab.runner.plotting import figure
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch
from gradlab.problems.training import OPTIMIZERS


@dataclass
class SweepDataConfig:
    n_per_class: int = at_least(1, 10)
    mean0: float = finite(-1.0)
    mean1: float = finite(1.0)
    std: float = positive(1.0)


@dataclass
class SeedsConfig:
    first: int = at_least(0, 0)
    count: int = at_least(1, 10)


@dataclass
class LearningRateConfig:
    low: float = positive(0.001)
    high: float = positive(1.0)
    num: int = at_least(1, 100)


@dataclass
class Config(BaseConfig):
    data: SweepDataConfig = dataclasses.field(default_factory=SweepDataConfig)
    seeds: SeedsConfig = dataclasses.field(default_factory=SeedsConfig)
    lr: LearningRateConfig = dataclasses.field(default_factory=LearningRateConfig)
    momenta: list[float] = each(lambda m: 0 <= m < 1, "in [0, 1)", [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    optimizer: str = one_of(*OPTIMIZERS, default="momentum")
    steps: int = at_least(1, 1000)
    timing_repeats: int = at_least(1, 3)
    curves: int = in_range(0, 50, 5, include_high=True)


def main(cfg: Config, ctx: RunContext) -> dict:
    seeds = np.arange(cfg.seeds.first, cfg.seeds.first + cfg.seeds.count)
    lrs = np.geomspace(cfg.lr.low, cfg.lr.high, cfg.lr.num)
    grid = vectorised_sweep.full_grid(seeds, lrs, np.asarray(cfg.momenta))
    devices = jax.devices()
    batch, rows = vectorised_sweep.shard_batch(grid, devices)

    sweep = vectorised_sweep.make_sweep(dataclasses.asdict(cfg.data), cfg.optimizer, cfg.steps)
    compiled, compile_s = timing.compile_timed(sweep, *batch)
    stats = timing.time_call(compiled, *batch, repeats=cfg.timing_repeats, warmup=1)
    result = jax.tree.map(lambda a: np.asarray(a)[:rows], compiled(*batch))
    if not np.all(np.isfinite(result.final_loss)):
        bad = int(np.argmax(~np.isfinite(result.final_loss)))
        raise RunFailed(f"configuration {bad} (seed {grid.seeds[bad]}, lr {grid.lrs[bad]:g}, momentum "
                        f"{grid.momenta[bad]:g}) ended with a non-finite loss")

    optimum = np.asarray(vectorised_sweep.optimum_losses(dataclasses.asdict(cfg.data), seeds))
    gap = result.final_loss - optimum[grid.seeds - cfg.seeds.first]
    write_table(ctx, grid, result, gap)
    shape = (len(seeds), len(lrs), len(cfg.momenta))
    plot_gap_against_lr(ctx, lrs, cfg.momenta, gap.reshape(shape), cfg.optimizer)
    plot_convergence(ctx, lrs, result.losses.reshape(*shape, -1), optimum, cfg.curves)

    gap_median = np.median(gap.reshape(shape), axis=0)  # (lr, momentum) over seeds
    best_lr, best_m = np.unravel_index(int(np.argmin(gap_median)), gap_median.shape)
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
        "converged_fraction": float(np.mean(gap < 1e-6)),
    }


def write_table(ctx: RunContext, grid, result, gap) -> None:
    with open(ctx.path("sweep.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seed", "lr", "momentum", "phi0", "phi1", "final_loss", "gap_to_optimum", "grad_norm"])
        for row in zip(grid.seeds, grid.lrs, grid.momenta, result.phi[:, 0], result.phi[:, 1], result.final_loss,
                       gap, result.grad_norm, strict=True):
            writer.writerow([int(row[0]), *(repr(float(v)) for v in row[1:])])


def plot_gap_against_lr(ctx: RunContext, lrs, momenta, gap, optimizer: str) -> None:
    fig, ax = figure()
    floor = 1e-16
    for index, momentum in enumerate(momenta):
        per_seed = np.maximum(gap[:, :, index], floor)
        label = f"momentum {momentum:g}" if optimizer == "momentum" else optimizer
        (line,) = ax.loglog(lrs, np.median(per_seed, axis=0), label=label)
        ax.fill_between(lrs, per_seed.min(axis=0), per_seed.max(axis=0), color=line.get_color(), alpha=0.15)
        if optimizer != "momentum":
            break
    ax.set(xlabel="learning rate", ylabel="final loss - optimum (median, band = min..max over seeds)",
           title="Final loss gap against learning rate, across seeds")
    ax.legend(ncols=2)
    ctx.save_figure(fig, "final_gap_vs_lr.png", "Vectorised sweep: the final loss minus each seed's Newton optimum "
                    "against the learning rate (median over seeds, band min..max), one line per momentum.")


def plot_convergence(ctx: RunContext, lrs, losses, optimum, curves: int) -> None:
    if curves == 0:
        return
    fig, ax = figure()
    picks = np.unique(np.linspace(0, len(lrs) - 1, curves).round().astype(int))
    for index in picks:
        ax.semilogy(np.maximum(losses[0, index, 0] - optimum[0], 1e-16), label=f"lr {lrs[index]:.3g}")
    ax.set(xlabel="step", ylabel="loss - optimum", title="Convergence curves (first seed, first momentum)")
    ax.legend()
    ctx.save_figure(fig, "convergence_curves.png", "Vectorised sweep: loss minus optimum against step for several "
                    "learning rates (first seed, first momentum).")


if __name__ == "__main__":
    launch("logreg_sweep")
