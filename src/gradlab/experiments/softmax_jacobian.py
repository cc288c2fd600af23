"""Problem 1: the derivative of softmax, J = diag(s) - s s^T, checked against JAX's two autodiff modes.

    python experiments/softmax_jacobian.py                      # seeded random logits + the saturated case
    python experiments/softmax_jacobian.py 'logits=[1,2,3]'
    python experiments/softmax_jacobian.py -m seed=0,1,2 precision=float64,float32
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.experiments import memory
from gradlab.problems.numerics import all_finite, planted_errors
from gradlab.problems.softmax import jacobian_report, sample_logits
from gradlab.runner.config import at_least, checked, positive, seed
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch


def _logits_or_null(value) -> bool:
    # at least two classes: with one, softmax is the constant 1
    return value is None or (len(value) >= 2 and all_finite(value))


LOGITS_OR_NULL = "null or a list of at least 2 finite numbers"


@dataclass
class Config(BaseConfig):
    logits: list[float] | None = checked(_logits_or_null, LOGITS_OR_NULL)
    num_logits: int = at_least(2)
    logit_scale: float = positive()
    seed: int = seed()
    saturated_logits: list[float] | None = checked(_logits_or_null, LOGITS_OR_NULL)


def memory_estimate(cfg: Config) -> dict[str, float]:
    """Bytes by the key that sizes them: the autodiff references (jacfwd / jacrev of the per-class softmax, an
    n x n map per logit) hold about two n x n x n arrays for n logits (measured: n = 500 peaks at 2.2 GB, n = 1000
    at 15.6 GB), beside a few n x n matrices and the Jacobian written to metrics.json."""

    def report(n: int) -> float:
        return 2 * n**3 * memory.word(cfg.precision) + n**2 * (8 * 8 + 2 * memory.JSON_FLOAT_BYTES)

    estimate = {"num_logits": report(cfg.num_logits)} if cfg.logits is None else {"logits": report(len(cfg.logits))}
    if cfg.saturated_logits is not None:
        estimate["saturated_logits"] = report(len(cfg.saturated_logits))
    return estimate


def save_entries(path, reports: dict) -> None:
    """jacobian_entries.csv: every entry of every case, analytic and both autodiff modes (the arrays behind the
    report's max-over-entries rows; the Jacobian is in metrics.json already, so this is no larger)."""
    rows = []
    for case, report in reports.items():
        analytic, jacfwd, jacrev = (np.asarray(report[k]) for k in ("jacobian", "jacfwd", "jacrev"))
        i, j = np.indices(analytic.shape)
        rows += [f"{case},{a},{b},{float(x)!r},{float(y)!r},{float(z)!r}" for a, b, x, y, z in
                 zip(i.ravel(), j.ravel(), analytic.ravel(), jacfwd.ravel(), jacrev.ravel(), strict=True)]
    path.write_text("case,i,j,analytic,jacfwd,jacrev\n" + "\n".join(rows) + "\n")


def main(cfg: Config, ctx: RunContext) -> dict:
    if cfg.logits is None:
        logits = sample_logits(jax.random.key(cfg.seed), cfg.num_logits, cfg.logit_scale)
    else:
        logits = jnp.asarray(cfg.logits, dtype=float)
    reports = {"logits": jacobian_report(logits)}
    if cfg.saturated_logits is not None:
        reports["saturated"] = jacobian_report(jnp.asarray(cfg.saturated_logits, dtype=float))
    for name, report in reports.items():
        if not all_finite(report["jacobian"]):
            raise RunFailed(f"the {name} Jacobian has non-finite entries")
        ctx.keep(**{f"{name}_jacobian": report["jacobian"],
                    f"{name}_max_rel_err": max(report["max_rel_err"].values())})
    ctx.keep(cases=list(reports))
    save_entries(ctx.path("jacobian_entries.csv"), reports)
    for report in reports.values():  # the autodiff Jacobians are in the CSV; metrics.json keeps the analytic one
        report.pop("jacfwd")
        report.pop("jacrev")
    results = reports["logits"]
    if "saturated" in reports:
        results["saturated"] = reports["saturated"]
    return {**results, "error_measures": planted_errors()}  # the measures the claims read, on known errors


if __name__ == "__main__":
    launch("softmax_jacobian")
