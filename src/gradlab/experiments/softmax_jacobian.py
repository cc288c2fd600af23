"""Problem 1: the derivative of softmax, J = diag(s) - s s^T, checked against JAX's two autodiff modes.

python experiments/softmax_jacobian.py                      # seeded random logits + the saturated case
python experiments/softmax_jacobian.py 'logits=[1,2,3]' num_logits=3
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import jax
import numpy as np

from gradlab.runner.config import at_least, checked, positive
from gradlab.runner.plotting import figure
from gradlab.runner.run import BaseConfig, RunFailed, launch
from gradlab.problems.softmax import jacobian_report, sample_logits


def _logit_list(value) -> bool:
    # at least two classes: with one, softmax is the constant 1
    return len(value) >= 2 and all(isinstance(v, int | float) and math.isfinite(v) for v in value)


@dataclasses.dataclass
class Config(BaseConfig):
    logits: Optional[list[float]] = checked(  # noqa: UP045 - OmegaConf needs typing.Optional
        None, lambda v: v is None or _logit_list(v), "null or a list of at least 2 finite numbers"
    )
    num_logits: int = at_least(2, 6)
    logit_scale: float = positive(2.0)
    seed: int = 0
    saturated_logits: Optional[list[float]] = checked(  # noqa: UP045
        [-3.0, 1.0, 100.0, 5.0, -1.0],
        lambda v: v is None or _logit_list(v),
        "null or a list of at least 2 finite numbers",
    )


def _plot_jacobians(ctx, reports: dict) -> None:
    fig, axes = figure(
        len(reports), width=5.6 * len(reports), height=4.8, squeeze=False, layout="constrained"
    )
    for ax, (name, report) in zip(axes[0], reports.items(), strict=True):
        jacobian = np.asarray(report["jacobian"])
        if name == "saturated":
            # entries span ~90 orders of magnitude: show log10|J| so the tiny ones are visible
            with np.errstate(divide="ignore"):
                shown = np.log10(np.abs(jacobian))
            image = ax.imshow(shown, cmap="magma")
            label = "log10 |J_ij|"
        else:
            bound = np.abs(jacobian).max()
            image = ax.imshow(jacobian, cmap="RdBu_r", vmin=-bound, vmax=bound)
            label = "J_ij"
        fig.colorbar(image, ax=ax, label=label)
        ax.grid(False)
        ax.set_xlabel("logit j")
        ax.set_ylabel("softmax output i")
        rel = max(float(report["max_rel_err"]["jacfwd"]), float(report["max_rel_err"]["jacrev"]))
        ax.set_title(f"{name}: J = diag(s) - s s^T\nmatches jacfwd/jacrev to rel err {rel:.1e}")
    ctx.save_figure(
        fig,
        "softmax_jacobian.png",
        caption="Heatmaps of the softmax Jacobian: symmetric, rows sum to 0, negative off the diagonal; "
        "in the saturated case every entry is tiny yet nonzero and matches autodiff in relative error.",
    )


def main(cfg: Config, ctx) -> dict:
    import jax.numpy as jnp

    if cfg.logits is None:
        logits = sample_logits(jax.random.key(cfg.seed), cfg.num_logits, cfg.logit_scale)
    else:
        logits = jnp.asarray(cfg.logits, dtype=float)
    reports = {"logits": jacobian_report(logits)}
    if cfg.saturated_logits is not None:
        reports["saturated"] = jacobian_report(jnp.asarray(cfg.saturated_logits, dtype=float))
    for name, report in reports.items():
        if not np.all(np.isfinite(np.asarray(report["jacobian"]))):
            raise RunFailed(f"the {name} Jacobian has non-finite entries")
    _plot_jacobians(ctx, reports)
    results = reports["logits"]
    if "saturated" in reports:
        results["saturated"] = reports["saturated"]
    return results


if __name__ == "__main__":
    launch("softmax_jacobian")
