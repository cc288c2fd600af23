"""The like-with-like check of the logistic-regression benchmark (Problem 8), and its reference numbers.

Timings compare implementations only if they compute the same thing. In float64:

- every GD implementation ends within `gd_rtol` (relative) of the library's scan after as many steps;
- every tolerance solver (Newton, L-BFGS) stops with ||mean gradient|| < tolerance and within
  slack * tolerance / mu of the optimum phi* (mu: the smallest eigenvalue of the mean-loss Hessian at phi*,
  so ||phi - phi*|| <~ ||mean gradient(phi)|| / mu near phi*).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gradlab.bench.impls import GD, Implementation, library_train
from gradlab.problems import logistic


def mean_gradient_norm(phi: np.ndarray, x: jax.Array, y: jax.Array) -> float:
    """||(1/n) grad L(phi)||_2 with the library's analytic gradient, in x's dtype."""
    return float(jnp.linalg.norm(logistic.bce_gradient(jnp.asarray(phi, x.dtype), x, y)) / x.shape[0])


@partial(jax.jit, static_argnames="max_steps")
def gd_steps_to_tolerance(phi_init, lr, x, y, tolerance, max_steps: int) -> tuple[jax.Array, jax.Array]:
    """GD steps until ||mean gradient|| < tolerance (one lax.while_loop); returns (steps, final phi)."""

    def keep_going(state):
        _, steps, norm = state
        return (norm >= tolerance) & (steps < max_steps)

    def step(state):
        phi, steps, _ = state
        phi = phi - lr * logistic.bce_gradient(phi, x, y)
        return phi, steps + 1, jnp.linalg.norm(logistic.bce_gradient(phi, x, y)) / x.shape[0]

    start_norm = jnp.linalg.norm(logistic.bce_gradient(phi_init, x, y)) / x.shape[0]
    phi, steps, _ = lax.while_loop(keep_going, step, (phi_init, 0, start_norm))
    return steps, phi


_newton = jax.jit(logistic.newton, static_argnames="max_iter")


def optimum(x: jax.Array, y: jax.Array, iterations: int) -> tuple[np.ndarray, float]:
    """The optimum phi* by `iterations` full Newton steps (tol 0), and mu, the smallest eigenvalue of the
    mean-loss Hessian there."""
    result = _newton(jnp.zeros(2, x.dtype), x, y, 0.0, max_iter=iterations)
    mu = float(logistic.min_eigenvalue(logistic.bce_hessian(result.phi, x, y))) / x.shape[0]
    return np.asarray(result.phi, np.float64), mu


def library_params(x: jax.Array, y: jax.Array, lr_mean: float, steps: int) -> np.ndarray:
    """The library scan's parameters after `steps` GD steps at lr = lr_mean / n from phi = [0, 0]."""
    momentum, phi_init = jnp.zeros((), x.dtype), jnp.zeros(2, x.dtype)
    lr = jnp.asarray(lr_mean / x.shape[0], x.dtype)
    return np.asarray(jax.jit(library_train(steps))(phi_init, lr, momentum, x, y).phi, np.float64)


def check(impls: dict[str, Implementation], results: dict, x64: jax.Array, y64: jax.Array, *, lr_mean: float,
          tolerance: float, gd_rtol: float, optimum_iterations: int, optimum_slack: float) -> dict:
    """Compare every implementation's float64 result (`results[name]`, the value of its `call`) as above.

    Returns the numbers and `failures`, one line per implementation that computes something else.
    """
    params = {name: impl.params(results[name]) for name, impl in impls.items()}
    references: dict[int, np.ndarray] = {}
    gd_diff = {}
    for name, impl in impls.items():
        if impl.step_kind != GD:
            continue
        steps = impl.steps(results[name])
        if steps not in references:
            references[steps] = library_params(x64, y64, lr_mean, steps)
        reference = references[steps]
        gd_diff[name] = float(np.max(np.abs(params[name] - reference)) / max(np.max(np.abs(reference)), 1.0))
    phi_star, mu = optimum(x64, y64, optimum_iterations)
    bound = optimum_slack * tolerance / mu
    solvers = {name: {"phi": phi, "distance_to_optimum": float(np.linalg.norm(phi - phi_star)),
                      "grad_norm": mean_gradient_norm(phi, x64, y64)}
               for name, phi in params.items() if impls[name].step_kind != GD}
    failures = [f"{name} ends {diff:.2e} (relative) from the library scan" for name, diff in gd_diff.items()
                if not diff <= gd_rtol]
    failures += [f"{name} ends {s['distance_to_optimum']:.2e} from the optimum (bound {bound:.2e})"
                 for name, s in solvers.items() if not s["distance_to_optimum"] <= bound]
    failures += [f"{name} stops at ||mean gradient|| = {s['grad_norm']:.2e} > tolerance {tolerance:g}"
                 for name, s in solvers.items() if not s["grad_norm"] < tolerance]
    steps_main = impls["jax_scan"].steps(results["jax_scan"]) if "jax_scan" in impls else None
    return {"gd_max_rel_diff": max(gd_diff.values(), default=0.0), "gd_rel_diff": gd_diff,
            "gd_params": references.get(steps_main), "gd_params_by_steps": {str(k): v for k, v in references.items()},
            "optimum": phi_star, "mu": mu, "optimum_bound": bound, "solvers": solvers, "params": params,
            "failures": failures}
