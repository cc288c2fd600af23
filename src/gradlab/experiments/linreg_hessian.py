"""Problem 7: the Hessian of the linear-regression least-squares loss, its eigenvalues, the degenerate case.

    python experiments/linreg_hessian.py                         # the homework's linear data + all x_i equal
    python experiments/linreg_hessian.py 'data.x=[0,1,2,3]' 'data.y=[1,3,2,5]' degenerate_x=-1
    python experiments/linreg_hessian.py -m data.seed=0,1,2 degenerate_x=0.1,1.5
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.experiments import memory
from gradlab.experiments.schemas import LinearDataConfig
from gradlab.problems import linreg
from gradlab.problems.numerics import all_finite
from gradlab.runner.config import ConfigError, at_least, finite, finite_list, positive
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch


@dataclass
class DataConfig(LinearDataConfig):
    """The homework's linear data (configs/data/linear.yaml), or given values: x alone gets y from the
    model y = intercept + slope x + noise; y alone gets x drawn beside it."""

    x: list[float] | None = finite_list(allow_none=True)
    y: list[float] | None = finite_list(allow_none=True)

    def __post_init__(self) -> None:
        # the one rule that spans two keys; raised here so it is a config error (exit 2) like the others
        if self.x is not None and self.y is not None and len(self.x) != len(self.y):
            raise ConfigError("data.y", list(self.y), f"a list as long as data.x ({len(self.x)} values)")

    def size(self) -> tuple[str, int]:
        """The key that sets the number of points, and that number."""
        if self.x is not None:
            return "data.x", len(self.x)
        return ("data.n_points", self.n_points) if self.y is None else ("data.y", len(self.y))

    def load(self) -> tuple[jax.Array, jax.Array]:
        if self.x is None:  # drawn as sample() does, as many as the given y if there are any
            x, y = dataclasses.replace(self, n_points=self.n_points if self.y is None else len(self.y)).sample()
        else:
            x = jnp.asarray(self.x, dtype=float)
            y = linreg.sample_targets(jax.random.key(self.seed), x, self.intercept, self.slope, self.noise_sigma)
        return x, (y if self.y is None else jnp.asarray(self.y, dtype=float))


@dataclass
class Config(BaseConfig):
    data: DataConfig
    degenerate_x: float = finite()
    hessian_point: list[float] = finite_list(length=2)
    convexity_rtol: float = positive()
    surface_half_width: float = positive()  # the loss-surface plot: a square around the minimum
    surface_grid_points: int = at_least(5)


def memory_estimate(cfg: Config) -> dict[str, float]:
    """Bytes by the key that sizes them: n points cost ~300 bytes each (the data on device and host, and as JSON
    in metrics.json: measured n = 1e6, 3e6 peak 0.5, 1.1 GB above the interpreter's own); the loss surfaces of
    both cases, G x G each, ~12 floats per grid point with their figures (G = 2000: 0.3 GB)."""
    key, n = cfg.data.size()
    return {key: n * (2 * memory.JSON_FLOAT_BYTES + 20 * memory.word(cfg.precision)),
            "surface_grid_points": cfg.surface_grid_points**2 * 12 * 8.0}


def main(cfg: Config, ctx: RunContext) -> dict:
    x, y = cfg.data.load()
    phi = jnp.asarray(cfg.hessian_point, dtype=float)
    inputs = {"data": x, "degenerate": jnp.full(x.shape, cfg.degenerate_x, dtype=x.dtype)}
    reports = {case: linreg.convexity_report(xs, y, phi, cfg.convexity_rtol) for case, xs in inputs.items()}
    offsets = np.linspace(-cfg.surface_half_width, cfg.surface_half_width, cfg.surface_grid_points)
    for case, report in reports.items():
        if not all_finite(report):
            raise RunFailed(f"the {case} case produced a non-finite value (data too large for {cfg.precision}?)")
        center = np.asarray(report["minimizer"])
        phi0, phi1 = center[0] + offsets, center[1] + offsets
        surface = linreg.loss_surface(inputs[case], y, jnp.asarray(phi0), jnp.asarray(phi1))
        excess = np.asarray(surface - report["loss_at_minimizer"])
        # with huge data the window (or the loss's rise across it) is below the round-off of phi (or of L): the
        # rise is read against a bound on L's round-off, so a flat surface is flat whichever way a backend rounds
        noise = float(linreg.loss_roundoff(jnp.asarray(center), inputs[case], y))
        resolved = linreg.surface_resolved(excess, noise, phi0, phi1)
        if not resolved:
            ctx.warn(f"the {case} loss surface is flat to round-off within surface_half_width = "
                     f"{cfg.surface_half_width:g} of its minimum {center.tolist()} (min L = "
                     f"{float(report['loss_at_minimizer']):.3g}): its panel of loss_surface.png has no contours")
        ctx.keep(**{f"{case}_{key}": value for key, value in {
            "phi0": phi0, "phi1": phi1, "excess_loss": excess, "minimizer": center, "surface_resolved": resolved,
            "eigenvalues": report["eigenvalues"], "eigenvectors": report["eigenvectors"], "det": report["det"],
            "strictly_convex": report["strictly_convex"],
        }.items()})
    return {"data": {"x": x, "y": y}, **reports["data"],
            "degenerate": {"x": cfg.degenerate_x, **reports["degenerate"]}}


if __name__ == "__main__":
    launch("linreg_hessian")
