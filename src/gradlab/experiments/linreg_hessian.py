"""Problem 7: the Hessian of the linear-regression least-squares loss, its eigenvalues, the degenerate case.

python experiments/linreg_hessian.py                         # seeded data + all x_i equal
python experiments/linreg_hessian.py 'x=[0,1,2,3]' 'y=[1,3,2,5]' degenerate_x=-1
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.runner.config import ConfigError, at_least, checked, finite, finite_list, increasing_pair, positive
from gradlab.problems.linreg import convexity_report, loss_surface, sample_inputs, sample_targets
from gradlab.runner.plotting import figure
from gradlab.runner.run import BaseConfig, RunFailed, launch


@dataclasses.dataclass
class Config(BaseConfig):
    x: Optional[list[float]] = finite_list(None, allow_none=True)  # noqa: UP045
    y: Optional[list[float]] = finite_list(None, allow_none=True)  # noqa: UP045
    num_points: int = at_least(1, 20)
    seed: int = 0
    x_range: list[float] = increasing_pair([-2.0, 2.0])
    true_intercept: float = finite(1.0)
    true_slope: float = finite(-0.5)
    noise_std: float = at_least(0.0, 0.3)
    degenerate_x: float = finite(1.5)
    hessian_point: list[float] = checked(
        [0.3, -0.7], lambda v: len(v) == 2 and all(map(math.isfinite, v)), "two finite numbers [phi0, phi1]"
    )
    convexity_rtol: float = positive(1.0e-12)
    surface_half_width: float = positive(2.0)
    surface_grid_points: int = at_least(5, 121)

    def __post_init__(self) -> None:
        # the one rule that spans two keys; raised here so it is a config error (exit 2) like the others
        if self.x is not None and self.y is not None and len(self.x) != len(self.y):
            raise ConfigError("y", list(self.y), f"a list as long as x ({len(self.x)} values)")


def _data(cfg: Config) -> tuple[jax.Array, jax.Array]:
    x_key, noise_key = jax.random.split(jax.random.key(cfg.seed))
    if cfg.x is not None:
        x = jnp.asarray(cfg.x, dtype=float)
    else:
        count = cfg.num_points if cfg.y is None else len(cfg.y)
        x = sample_inputs(x_key, count, *cfg.x_range)
    if cfg.y is not None:
        return x, jnp.asarray(cfg.y, dtype=float)
    return x, sample_targets(noise_key, x, cfg.true_intercept, cfg.true_slope, cfg.noise_std)


def _plot_surfaces(ctx, cfg, cases: dict) -> None:
    fig, axes = figure(len(cases), width=5.8 * len(cases), height=5.0, squeeze=False, layout="constrained")
    for ax, (name, (x, y, report)) in zip(axes[0], cases.items(), strict=True):
        center = np.asarray(report["minimizer"])
        offsets = np.linspace(-cfg.surface_half_width, cfg.surface_half_width, cfg.surface_grid_points)
        phi0, phi1 = center[0] + offsets, center[1] + offsets
        surface = np.asarray(loss_surface(x, y, phi0, phi1))
        excess = surface - float(report["loss_at_minimizer"])
        # square-root levels: evenly spaced in distance from the minimum for a quadratic bowl
        levels = np.linspace(0.0, np.sqrt(excess.max()), 16)[1:] ** 2
        contours = ax.contour(np.asarray(phi0), np.asarray(phi1), excess, levels=levels, cmap="viridis")
        fig.colorbar(contours, ax=ax, label="L[phi] - min L")
        eigenvalues, eigenvectors = np.asarray(report["eigenvalues"]), np.asarray(report["eigenvectors"])
        for k, color in enumerate(("C3", "C1")):
            arrow = 0.8 * cfg.surface_half_width * eigenvectors[:, k]
            ax.annotate("", center + arrow, center, arrowprops={"arrowstyle": "->", "color": color, "lw": 2})
            ax.plot([], [], color=color, lw=2, label=f"eigenvector, lambda = {eigenvalues[k]:.3g}")
        if not bool(report["strictly_convex"]):
            line = center[:, None] + np.outer(eigenvectors[:, 0], 1.5 * offsets)
            ax.plot(line[0], line[1], "k--", lw=1, label="minima: phi0 + phi1 x = mean y")
        ax.plot(*center, "k*", markersize=10, label="least-squares minimum")
        ax.set_xlim(phi0[0], phi0[-1])
        ax.set_ylim(phi1[0], phi1[-1])
        ax.set_xlabel("phi0 (intercept)")
        ax.set_ylabel("phi1 (slope)")
        ax.set_aspect("equal")
        ax.legend(loc="lower left", frameon=True, framealpha=0.9)
        verdict = (
            "strictly convex, one minimum"
            if bool(report["strictly_convex"])
            else "singular H: a line of minima"
        )
        ax.set_title(f"{name}: det H = {float(report['det']):.3g}\n{verdict}")
    ctx.save_figure(
        fig,
        "loss_surface.png",
        caption="Least-squares loss around its minimum with the Hessian's eigenvectors: with varied x "
        "both eigenvalues are positive (one minimum); with all x_i equal one eigenvalue is 0 and the "
        "minima form a line.",
    )


def main(cfg: Config, ctx) -> dict:
    x, y = _data(cfg)
    phi = jnp.asarray(cfg.hessian_point, dtype=float)
    degenerate_x = jnp.asarray(np.full(x.shape, cfg.degenerate_x))
    cases = {
        "data": (x, y, convexity_report(x, y, phi, cfg.convexity_rtol)),
        "degenerate (all x_i equal)": (
            degenerate_x,
            y,
            convexity_report(degenerate_x, y, phi, cfg.convexity_rtol),
        ),
    }
    for name, (_, _, report) in cases.items():
        if not all(np.all(np.isfinite(np.asarray(v))) for v in jax.tree_util.tree_leaves(report)):
            raise RunFailed(
                f"the {name} case produced a non-finite value (data too large for {cfg.precision}?)"
            )
    _plot_surfaces(ctx, cfg, cases)
    results = {"data": {"x": x, "y": y}, **cases["data"][2]}
    results["degenerate"] = {"x": cfg.degenerate_x, **cases["degenerate (all x_i equal)"][2]}
    return results


if __name__ == "__main__":
    launch("linreg_hessian")
