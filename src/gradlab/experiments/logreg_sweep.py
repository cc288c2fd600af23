"""Problem 8, vectorised: thousands of (seed, learning rate, momentum) trainings in one jit(vmap(train)) call.

    python experiments/logreg_sweep.py                          # 5,000 configurations x 1,000 steps
    python experiments/logreg_sweep.py scale=full               # 10,000
    python experiments/logreg_sweep.py steps=200 lr.num=20 optimizer=adam
    python experiments/logreg_sweep.py seeds.first=5 seeds.count=3      # data seeds 5, 6, 7
    XLA_FLAGS=--xla_force_host_platform_device_count=2 python experiments/logreg_sweep.py   # sharded on 2
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.bench import timing
from gradlab.experiments import memory
from gradlab.experiments.schemas import LogisticDataConfig, NewtonConfig
from gradlab.problems import logistic, vectorised_sweep
from gradlab.problems.training import OPTIMIZERS, numpy_train
from gradlab.runner.config import ConfigError, at_least, each, in_range, one_of, positive, seed
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch
from gradlab.runner.seeds import STATS, aggregate_over_seeds
from gradlab.runner.sweep_summary import SEEDS_CSV


@dataclass
class SeedsConfig:
    first: int = seed()
    count: int = at_least(1)

    def __post_init__(self) -> None:
        # the last seed, first + count - 1, must be a seed too; raised here so it is a config error (exit 2)
        if isinstance(self.first, int) and 0 <= self.first < 2**32 < self.first + self.count:
            raise ConfigError("seeds.count", self.count, f"at most 2**32 - seeds.first = {2**32 - self.first} "
                              "(the last data seed, seeds.first + seeds.count - 1, must be below 2**32)")


@dataclass
class LearningRateConfig:
    low: float = positive()
    high: float = positive()
    num: int = at_least(1)


@dataclass
class CheckRowConfig:
    """The configuration checked against a NumPy training: the last seed, lrs[lr_index], momenta[momentum_index]
    (negative indices count from the end)."""

    lr_index: int
    momentum_index: int


@dataclass
class Config(BaseConfig):
    seeds: SeedsConfig  # before data: data.seed follows seeds.first, so an error names the key the user typed
    data: LogisticDataConfig
    lr: LearningRateConfig
    momenta: list[float] = each(lambda m: 0 <= m < 1, "in [0, 1)")
    optimizer: str = one_of(*OPTIMIZERS)
    steps: int = at_least(1)
    timing_repeats: int = at_least(1)
    curves: int = in_range(0, 50, include_high=True)
    converged_gap: float = positive()
    newton: NewtonConfig
    check_row: CheckRowConfig


def check_seeds(cfg: Config) -> None:
    """The sweep draws data set s for each seed s in seeds.first, ..., seeds.first + count - 1 (data.seed follows
    seeds.first in the YAML); a data.seed that differs would be recorded as the run's seed but never used."""
    if cfg.data.seed != cfg.seeds.first:
        raise ConfigError("data.seed", cfg.data.seed, f"the sweep's first data seed, seeds.first={cfg.seeds.first} "
                          "(set seeds.first instead)")


def memory_estimate(cfg: Config) -> dict[str, float]:
    """Bytes by the keys that size them. B = seeds.count x lr.num x len(momenta) configurations each keep a loss per
    step (on the device, on the host and in the result: measured B x steps = 1e8: 2.3 GB, ~3 floats per entry) and
    each draw their 2 n_per_class points in the vmapped training; every seed's Newton keeps its path; the timer
    keeps every call's time."""
    w = memory.word(cfg.precision)
    grid = {"seeds.count": cfg.seeds.count, "lr.num": cfg.lr.num, "momenta": len(cfg.momenta)}
    configurations = cfg.seeds.count * cfg.lr.num * len(cfg.momenta)
    n = 2 * cfg.data.n_per_class
    return memory.combined(
        memory.split(configurations * cfg.steps * w * 3, {**grid, "steps": cfg.steps}),
        memory.split(configurations * n * w * 4, {**grid, "data.n_per_class": n}),
        memory.split(configurations * 30 * 8, grid),  # the grid, the results, sweep.csv's rows
        memory.split(cfg.seeds.count * (cfg.newton.max_iter + 1) * 2 * w * 3,
                     {"seeds.count": cfg.seeds.count, "newton.max_iter": cfg.newton.max_iter}),
        {"timing_repeats": cfg.timing_repeats * 128.0},
    )


def main(cfg: Config, ctx: RunContext) -> dict:
    check_seeds(cfg)
    seeds = np.arange(cfg.seeds.first, cfg.seeds.first + cfg.seeds.count)
    lrs = np.geomspace(cfg.lr.low, cfg.lr.high, cfg.lr.num)
    grid = vectorised_sweep.full_grid(seeds, lrs, np.asarray(cfg.momenta))
    devices = jax.devices()
    batch, rows = vectorised_sweep.shard_batch(grid, devices)

    data = dataclasses.asdict(cfg.data)
    xs, ys = vectorised_sweep.sample_all(data, seeds)
    sweep = vectorised_sweep.make_sweep(cfg.optimizer, cfg.steps, cfg.seeds.first)
    compiled, compile_s = timing.compile_timed(sweep, *batch, xs, ys)
    timed = timing.alternate({"sweep": lambda: compiled(*batch, xs, ys)}, cfg.timing_repeats, rewarm=False)["sweep"]
    stats = timing.summarize(timed["times"])
    result = jax.tree.map(lambda a: np.asarray(a)[:rows], timed["result"])  # the timed calls' own result
    if not np.all(np.isfinite(result.final_loss)):
        bad = int(np.argmax(~np.isfinite(result.final_loss)))
        raise RunFailed(f"configuration {bad} (seed {grid.seeds[bad]}, lr {grid.lrs[bad]:g}, momentum "
                        f"{grid.momenta[bad]:g}) ended with a non-finite loss")

    reference = reference_optima(cfg, ctx, xs, ys, seeds)
    optimum = reference.pop("loss")
    gap = result.final_loss - optimum[grid.seeds - cfg.seeds.first]
    write_table(ctx.path("sweep.csv"), grid, result, gap)
    write_seed_summary(ctx.path(SEEDS_CSV), grid, result, gap)

    shape = (len(seeds), len(lrs), len(cfg.momenta))
    gap_median = np.median(gap.reshape(shape), axis=0)  # (lr, momentum) over seeds
    best_lr, best_m = np.unravel_index(int(np.argmin(gap_median)), gap_median.shape)
    # convergence curves of the first seed at the first momentum, for `curves` learning rates spread over the range
    picks = np.unique(np.linspace(0, len(lrs) - 1, cfg.curves).round().astype(int))
    ctx.keep(lrs=lrs, momenta=np.asarray(cfg.momenta), gap=gap.reshape(shape), optimum=optimum,
             curve_lrs=lrs[picks], curve_losses=result.losses.reshape(*shape, -1)[0, picks, 0])
    config_steps = rows * cfg.steps
    reference_row = check_row(cfg, grid, result, xs, ys, seeds, lrs)
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
        "reference": reference,
        "check_row": reference_row,
    }


def check_row(cfg: Config, grid, result, xs, ys, seeds, lrs) -> dict:
    """One configuration of the vectorised sweep against the same training written by hand in NumPy
    (training.numpy_train with logistic.bce_gradient_numpy): the last seed, at the learning rate and momentum the
    config's check_row picks. Tolerance: steps (n + 8) eps (max|phi| + lr S) / (1 - momentum), S the largest
    sum of |gradient terms|: each step's round-off, amplified at most 1 / (1 - momentum) by the heavy ball.
    Also the sweep's final loss against the textbook loss at its final phi, relative, (n + 8) eps."""
    momentum_values = np.asarray(cfg.momenta)
    seed, lr = seeds[-1], lrs[cfg.check_row.lr_index % len(lrs)]
    momentum = momentum_values[cfg.check_row.momentum_index % len(momentum_values)]
    row = int(np.flatnonzero((grid.seeds == seed) & (grid.lrs == lr) & (grid.momenta == momentum))[0])
    x, y = np.asarray(xs[-1]), np.asarray(ys[-1])  # the last seed's data
    phi, scale = numpy_train(lambda p: logistic.bce_gradient_numpy(p, x, y), np.zeros(2), cfg.optimizer, float(lr),
                             float(momentum), cfg.steps)
    eps, n = float(np.finfo(result.phi.dtype).eps), x.size  # the sweep's precision
    amplification = 1 / (1 - momentum) if cfg.optimizer == "momentum" else 1.0
    textbook = float(logistic.bce_loss_textbook(jnp.asarray(result.phi[row]), jnp.asarray(x), jnp.asarray(y)))
    return {"seed": int(seed), "lr": float(lr), "momentum": float(momentum), "sweep_phi": result.phi[row],
            "numpy_phi": phi, "max_abs_err": float(np.max(np.abs(result.phi[row] - phi))),
            "tolerance": cfg.steps * (n + 8) * eps * (float(np.max(np.abs(phi))) + float(lr) * scale) * amplification,
            # a loss that underflows to 0 in both routes (separable data, far out) is an error of 0, not 0 / 0
            "final_loss_rel_err": abs(float(result.final_loss[row]) - textbook) / max(textbook, np.finfo(float).tiny),
            "final_loss_rel_tolerance": (n + 8) * eps}


def reference_optima(cfg: Config, ctx: RunContext, xs, ys, seeds: np.ndarray) -> dict:
    """Each seed's optimum loss by Newton's method, the reference of every gap, and whether it is one: a seed whose
    Newton stopped short of newton.tol, or whose classes are separable (no minimum: the loss only keeps falling,
    and the gradient can fall below tol on the way), is warned about and leaves `converged` false."""
    tol = cfg.newton.tol
    fits = jax.device_get(vectorised_sweep.optima(xs, ys, tol, cfg.newton.max_iter))
    separable = seeds[fits.separable].tolist()
    stopped = seeds[~(fits.grad_norm < tol)].tolist()
    if stopped:
        ctx.warn(f"Newton's method did not reach newton.tol = {tol:g} for {_some(stopped, seeds)} (|grad| up to "
                 f"{float(np.max(fits.grad_norm)):.3g} after {int(np.max(fits.iterations))} iterations, "
                 f"{cfg.precision}): their gaps are measured from where it stopped, not from an optimum")
    if separable:
        ctx.warn(f"{_some(separable, seeds)}: the classes are separable, so the loss has no minimum (the "
                 "maximum-likelihood estimate does not exist); their gaps are measured from where Newton stopped")
    return {"loss": np.asarray(fits.loss), "converged": not stopped and not separable,
            "unconverged_seeds": stopped, "separable_seeds": separable,
            "max_grad_norm": float(np.max(fits.grad_norm)), "max_iterations": int(np.max(fits.iterations))}


def _some(chosen: list[int], seeds: np.ndarray) -> str:
    shown = ", ".join(map(str, chosen[:10])) + (", ..." if len(chosen) > 10 else "")
    return f"data seeds [{shown}] ({len(chosen)} of {len(seeds)})"


def write_seed_summary(path, grid, result, gap) -> None:
    """summary_seeds.csv: per (lr, momentum) and metric, mean and spread over the data seeds: the same columns
    and numbers a Hydra sweep over data.seed reports (gradlab.runner.seeds)."""
    rows = [{"data.seed": int(seed), "optimizer.lr": float(lr), "optimizer.momentum": float(momentum),
             "gap_to_optimum": float(g), "final_loss": float(loss), "grad_norm": float(norm)}
            for seed, lr, momentum, g, loss, norm in zip(grid.seeds, grid.lrs, grid.momenta, gap, result.final_loss,
                                                         result.grad_norm, strict=True)]
    metrics = ["gap_to_optimum", "final_loss", "grad_norm"]
    aggregate = aggregate_over_seeds(rows, metrics, params=["data.seed", "optimizer.lr", "optimizer.momentum"])
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["optimizer.lr", "optimizer.momentum", "metric", "failed",
                                                    "missing", *STATS])
        writer.writeheader()
        writer.writerows(aggregate)


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
