"""Planted bugs in src/gradlab/problems/, one text replacement each, and the experiments whose claims must see them.

Each row: (id, file under src/gradlab/problems/, old text (must occur exactly once), new text, run ids to run).
A mutant is killed when some judged claim of one of its runs is not "pass" (FAIL, or not measured because the run
failed). A survivor is a missing claim: add the claim, do not drop the mutant.

A run (`RUNS`) is judged by the claims of its own id, or of the run it stands beside (`Run.claims`: the graph
runs are judged as autodiff_modes), all of them or those reading the metrics under `Run.judged`. autodiff_scaling
is judged on the claims that come out the same on any machine (FLOPs counted on the jaxpr, the Hessian-vector
product against its closed form, XLA's memory plan against depth, the three gradient routes' agreement): its
times, and the resident memory of a fresh process, depend on the machine and its load, and are judged by the main
job on its own sizes. A graph run leaves out the homework graph's own point (and `primitives`, which has no
closed form, the closed-form claims).
"""

from __future__ import annotations

from typing import NamedTuple


class Mutant(NamedTuple):
    id: str
    file: str
    old: str
    new: str
    runs: tuple[str, ...]


class Run(NamedTuple):
    experiment: str
    overrides: list[str]
    claims: str | None = None  # the run id whose claims judge this run (default: its own)
    judged: tuple[str, ...] | None = None  # only the claims that read a metric under one of these paths


LOGREG, WD, ML2, LIN, SM, RF6, SWEEP, SCALING = ("logreg",), ("weight_decay",), ("map_l2",), ("linreg_hessian",), \
    ("softmax_jacobian",), ("receptive_field_problem6",), ("logreg_sweep",), ("autodiff_scaling",)
NEURON, TWO_INPUTS, PRIMITIVES = ("autodiff_modes_neuron",), ("autodiff_modes_two_inputs",), \
    ("autodiff_modes_primitives",)

MUTANTS = [
    # logistic.py (Problem 8)
    Mutant("logits-sign", "logistic.py", "return phi[0] + phi[1] * x", "return phi[0] - phi[1] * x", LOGREG),
    Mutant("bce-terms-sign", "logistic.py", "return jnp.maximum(z, 0) - y * z", "return jnp.maximum(z, 0) + y * z",
           LOGREG),
    Mutant("jvp-rule-sign", "logistic.py", "(sigmoid(z) - y) * dz", "(sigmoid(z) + y) * dz", LOGREG),
    Mutant("recorded-loss-1e-6", "logistic.py", "loss = jnp.sum(jnp.log1p(e)", "loss = 1.000001 * jnp.sum(jnp.log1p(e)",
           LOGREG),
    Mutant("fused-grad-dropped-x", "logistic.py", "return loss, jnp.stack([jnp.sum(residual), jnp.sum(residual * x)])",
           "return loss, jnp.stack([jnp.sum(residual), jnp.sum(residual)])", LOGREG),
    Mutant("grad-swapped-index", "logistic.py", "grad = jnp.stack([jnp.sum(residual), jnp.sum(residual * x)])",
           "grad = jnp.stack([jnp.sum(residual * x), jnp.sum(residual)])", LOGREG),
    Mutant("hessian-weight-x2", "logistic.py", "e / (1 + e) ** 2\n", "2 * e / (1 + e) ** 2\n", LOGREG),
    Mutant("hessian-dropped-x", "logistic.py", "jnp.sum(weight * x * x)", "jnp.sum(weight * x)", LOGREG),
    Mutant("min-eigenvalue-is-the-largest", "logistic.py", "return jnp.linalg.eigvalsh(matrix)[0]",
           "return jnp.linalg.eigvalsh(matrix)[-1]", LOGREG),
    Mutant("newton-step-sign", "logistic.py", "phi = phi - jnp.linalg.solve(hess, grad)",
           "phi = phi + jnp.linalg.solve(hess, grad)", LOGREG),
    # training.py (the training loop of Problem 8)
    Mutant("recorded-path-off-by-one", "training.py", "(loss, phi if keep_path else None)",
           "(loss, new_phi if keep_path else None)", LOGREG),
    Mutant("grad-norm-at-the-start", "training.py", "jnp.linalg.norm(value_and_grad(phi, *data)[1])",
           "jnp.linalg.norm(value_and_grad(phi_init, *data)[1])", LOGREG),
    # vectorised_sweep.py (Problem 8 at scale)
    Mutant("sweep-momentum-scaled", "vectorised_sweep.py", "train(jnp.zeros(2, x.dtype), lr, momentum, x, y)",
           "train(jnp.zeros(2, x.dtype), lr, 0.9 * momentum, x, y)", SWEEP),
    Mutant("sweep-final-loss-labels", "vectorised_sweep.py",
           "result.losses, logistic.bce_loss(result.phi, x, y), result.grad_norm",
           "result.losses, logistic.bce_loss(result.phi, x, 1 - y), result.grad_norm", SWEEP),
    Mutant("sweep-seed-off-by-one", "vectorised_sweep.py", "x, y = xs[seed - first_seed], ys[seed - first_seed]",
           "x, y = xs[seed - first_seed - 1], ys[seed - first_seed - 1]", SWEEP),
    # linreg.py (Problem 7)
    Mutant("hessian-constant-1e-6", "linreg.py", "return 2.0 * jnp.array([[count, total]",
           "return 2.000002 * jnp.array([[count, total]", LIN),
    Mutant("det-count-off-by-one", "linreg.py", "return 4.0 * x.shape[0] * jnp.sum",
           "return 4.0 * (x.shape[0] - 1) * jnp.sum", LIN),
    Mutant("min-eig-discriminant", "linreg.py", "trace**2 - 4.0 * det", "trace**2 - 2.0 * det", LIN),
    Mutant("minimizer-of-shifted-targets", "linreg.py", "return jnp.linalg.lstsq(design, y)[0]",
           "return jnp.linalg.lstsq(design, y + 1.0)[0]", LIN),
    Mutant("flattest-is-steepest", "linreg.py", "flattest = eigenvectors[:, 0]", "flattest = eigenvectors[:, 1]", LIN),
    Mutant("loss-scale-1e-6", "linreg.py", "return jnp.sum((phi[0] + phi[1] * x - y) ** 2)",
           "return 1.000001 * jnp.sum((phi[0] + phi[1] * x - y) ** 2)", LIN),
    # softmax.py (Problem 1)
    Mutant("outer-sign", "softmax.py", "-jnp.outer(s, s)", "jnp.outer(s, s)", SM),
    Mutant("complement-axis", "softmax.py", "s[None, :], 0.0), axis=1)", "s[None, :], 0.0), axis=0)", SM),
    Mutant("per-class-lse-1e-6", "softmax.py", "margin = logits - jax.nn.logsumexp(",
           "margin = logits - 1.000001 * jax.nn.logsumexp(", SM),
    Mutant("softmax-temperature-1e-6", "softmax.py", "jnp.exp(jax.nn.log_softmax(logits))",
           "jnp.exp(jax.nn.log_softmax(1.000001 * logits))", SM),
    # regularization.py (Problem 3)
    Mutant("l2-coefficient-factor-2", "regularization.py", "return lam / (2.0 * alpha)", "return lam / alpha", WD),
    Mutant("optax-decay-inverted", "regularization.py", "    return lam / alpha\n", "    return lam * alpha\n", WD),
    Mutant("manual-update-sign", "regularization.py", "phi = (1.0 - lam) * phi - alpha * grad(phi)",
           "phi = (1.0 - lam) * phi + alpha * grad(phi)", WD),
    Mutant("penalty-gradient-1e-6", "regularization.py", "return (lam / alpha) * phi",
           "return 1.000001 * (lam / alpha) * phi", WD),
    Mutant("adamw-decay-x2", "regularization.py", "eps=eps, weight_decay=decay)", "eps=eps, weight_decay=2 * decay)",
           WD),
    Mutant("adam-l2-lr-1e-6", "regularization.py", "optax.adam(alpha, b1=b1", "optax.adam(1.000001 * alpha, b1=b1",
           WD),
    Mutant("decoupled-momentum-is-coupled", "regularization.py",
           '"momentum_decoupled": optax_trajectory(loss, decoupled_momentum(alpha, momentum, decay), phi_init, steps)',
           '"momentum_decoupled": optax_trajectory(loss, with_decay_momentum, phi_init, steps)', WD),
    Mutant("coupled-momentum-dropped", "regularization.py", "optax.sgd(alpha, momentum=momentum))\n",
           "optax.sgd(alpha, momentum=0.5 * momentum))\n", WD),
    # map_l2.py (Problem 2)
    Mutant("l2-coefficients-factor-2", "map_l2.py", "return 1.0 / (2.0 * prior_sigma**2)",
           "return 1.0 / (prior_sigma**2)", ML2),
    Mutant("ridge-noise-not-squared", "map_l2.py", "jnp.diag(noise_sigma**2 / prior_sigma**2)",
           "jnp.diag(noise_sigma / prior_sigma**2)", ML2),
    Mutant("offset-constant-1e-6", "map_l2.py", "jnp.log(2.0 * jnp.pi * prior_sigma**2)",
           "jnp.log(2.000002 * jnp.pi * prior_sigma**2)", ML2),
    Mutant("prior-scale-x2", "map_l2.py", "norm.logpdf(phi, loc=0.0, scale=prior_sigma)",
           "norm.logpdf(phi, loc=0.0, scale=2 * prior_sigma)", ML2),
    # receptive_field.py (Problems 4-6)
    Mutant("effective-kernel", "receptive_field.py", "return spec.dilation * (spec.kernel - 1) + 1",
           "return spec.dilation * spec.kernel - 1", RF6),
    Mutant("jump-uses-dilation", "receptive_field.py", "jump *= spec.stride", "jump *= spec.dilation", RF6),
    Mutant("conv-ignores-dilation", "receptive_field.py", "rhs_dilation=(spec.dilation,)", "rhs_dilation=(1,)", RF6),
    # autodiff_graph.py, derivative.py, autodiff_checks.py (Problems 9 and 10)
    Mutant("reverse-overwrites", "autodiff_graph.py", "adjoint[edge.parent] + contribution if seen else contribution",
           "contribution", ("autodiff_modes",)),
    Mutant("forward-first-parent-only", "autodiff_graph.py", "sum(terms[1:], terms[0]) if terms", "terms[0] if terms",
           ("autodiff_modes",)),
    Mutant("count-forward-off-by-one", "autodiff_graph.py",
           "forward_pass_ops, reverse_pass_ops = 2 * n_edges - with_parents",
           "forward_pass_ops, reverse_pass_ops = 2 * n_edges - with_parents + 1", ("autodiff_modes",)),
    Mutant("sin-rule-sign", "derivative.py", '"sin": lambda: call("cos", u),', '"sin": lambda: neg(call("cos", u)),',
           ("autodiff_modes",)),
    # 1e-13 relative in sin's rule: under the bound from y's conditioning (2.8e-13 at the homework's points: it
    # survived that), over each entry's own round-off bound (~1e-14)
    Mutant("sin-rule-1e-13", "derivative.py", '"sin": lambda: call("cos", u),',
           '"sin": lambda: mul(Num(1.0000000000001), call("cos", u)),', ("autodiff_modes",)),
    Mutant("power-rule-exponent", "derivative.py", "exponent = sub(b, ONE)", "exponent = b", ("autodiff_modes",)),
    Mutant("exp-rule", "derivative.py", '"exp": lambda: e,', '"exp": lambda: u,', ("autodiff_modes",)),
    Mutant("fd-scale-1e-6", "autodiff_checks.py", "return (y_up - y_down) / (up - down)",
           "return (y_up - y_down) / (up - down) * 1.000001", ("autodiff_modes",)),
    # derivative.py's rules the homework graph does not use, on the graph of every primitive (graph=primitives)
    Mutant("cos-rule-sign", "derivative.py", '"cos": lambda: neg(call("sin", u)),', '"cos": lambda: call("sin", u),',
           PRIMITIVES),
    Mutant("tan-rule-cos-not-squared", "derivative.py", 'div(ONE, power(call("cos", u), Num(2.0))),',
           'div(ONE, call("cos", u)),', PRIMITIVES),
    Mutant("tanh-rule-sign", "derivative.py", '"tanh": lambda: sub(ONE, power(e, Num(2.0))),',
           '"tanh": lambda: add(ONE, power(e, Num(2.0))),', PRIMITIVES),
    Mutant("sqrt-rule-factor", "derivative.py", '"sqrt": lambda: div(ONE, mul(Num(2.0), e)),',
           '"sqrt": lambda: div(ONE, e),', PRIMITIVES),
    Mutant("log1p-rule-as-log", "derivative.py", '"log1p": lambda: div(ONE, add(ONE, u)),',
           '"log1p": lambda: div(ONE, u),', PRIMITIVES),
    Mutant("abs-rule-unsigned", "derivative.py", '"abs": lambda: call("sign", u),', '"abs": lambda: ONE,', PRIMITIVES),
    Mutant("max-min-branches-swapped", "derivative.py", 'first, second = (a, b) if e.fn == "max" else (b, a)',
           'first, second = (b, a) if e.fn == "max" else (a, b)', PRIMITIVES),
    Mutant("exponential-rule-without-log", "derivative.py", 'return mul(mul(e, call("log", a)), db)',
           "return mul(e, db)", PRIMITIVES),
    # expression.py (any graph from a config): the homework graph has no minus sign, division or sigmoid
    Mutant("unary-minus-dropped", "expression.py", 'return Neg(arg) if value == "-" else arg', "return arg", NEURON),
    Mutant("division-flipped", "expression.py", '"/": lambda: a / b', '"/": lambda: b / a', TWO_INPUTS),
    Mutant("sigmoid-is-tanh", "expression.py", '{"sigmoid": lambda: _sigmoid(xp)', '{"sigmoid": lambda: xp.tanh',
           NEURON),
    # numerics.py (the error measures every claim reads): calibrated by softmax_jacobian's planted errors
    Mutant("max-abs-error-takes-min", "numerics.py", "return jnp.max(jnp.abs(jnp.asarray(value)",
           "return jnp.min(jnp.abs(jnp.asarray(value)", SM),
    Mutant("max-rel-error-takes-min", "numerics.py", "return jnp.max(jnp.where(normal, rel",
           "return jnp.min(jnp.where(normal, rel", SM),
    Mutant("max-rel-error-skips-spurious", "numerics.py", "jnp.where(spurious, jnp.inf, 0.0)", "0.0", SM),
    # autodiff_cost.py, scaling_fits.py (Problem 10's why: the cost of forward and reverse mode)
    Mutant("reverse-route-is-forward", "autodiff_cost.py", "return jax.grad(loss)\n", "return jax.jacfwd(loss)\n",
           SCALING),
    Mutant("hvp-along-theta", "autodiff_cost.py", "(theta,), (v,))[1]", "(theta,), (theta,))[1]", SCALING),
    Mutant("sequential-basis-reversed", "autodiff_cost.py", "jnp.arange(theta.shape[0]))",
           "jnp.arange(theta.shape[0])[::-1])", SCALING),
    Mutant("segments-not-checkpointed", "autodiff_cost.py", "            @jax.checkpoint\n            def segment",
           "            def segment", SCALING),
    Mutant("one-segment-of-depth", "autodiff_cost.py", "range(1, math.isqrt(depth) + 1)", "range(1, depth + 1)",
           SCALING),
    Mutant("flop-formula-first-layer-deltas", "autodiff_cost.py", "return 3.0 - shapes[0][0] * shapes[0][1] / F",
           "return 3.0", SCALING),
    Mutant("loglog-fit-axes-swapped", "scaling_fits.py", "x, y = np.log(np.array(pairs, dtype=float)).T",
           "y, x = np.log(np.array(pairs, dtype=float)).T", SCALING),
]

# Small configurations: each run a few seconds, every judged claim still measured.
RUNS = {
    "logreg": Run("logreg", ["grid.resolution=41", "train.steps=300"]),
    "weight_decay": Run("weight_decay", ["steps=100", "contour_grid=10"]),
    "map_l2": Run("map_l2", ["offset_check.num_points=50", "sigma_sweep.num=5"]),
    "linreg_hessian": Run("linreg_hessian", ["surface_grid_points=11"]),
    "softmax_jacobian": Run("softmax_jacobian", []),
    "logreg_sweep": Run("logreg_sweep", ["seeds.count=2", "lr.num=30", "momenta=[0.0,0.5,0.9]", "steps=200",
                                         "check_row.lr_index=2", "check_row.momentum_index=1", "timing_repeats=1",
                                         "curves=0"]),  # a small lr: 200 steps from the optimum, the path matters
    "receptive_field_problem6": Run("receptive_field", ["preset=problem6"]),
    "autodiff_modes": Run("autodiff_modes", []),
    **{f"autodiff_modes_{graph}": Run("autodiff_modes", [f"graph={graph}"], claims="autodiff_modes",
                                      judged=("max_errors.", "operation_counts."))
       for graph in ("neuron", "two_inputs")},
    "autodiff_modes_primitives": Run("autodiff_modes", ["graph=primitives"], claims="autodiff_modes",  # no closed form
                                     judged=("max_errors.forward_vs_jax_jvp", "max_errors.reverse_vs_jax_vjp",
                                             "max_errors.finite_difference_within_bound", "operation_counts.")),
    # three sizes a family, one call a round, four depths: ~10 s
    "autodiff_scaling": Run("autodiff_scaling", ["backend=cpu", "linear.P=[4,8,16]", "mlp.widths=[2,4,8]",
                                                 "n_samples=256", "mlp.n_samples=256", "timing.repeats=5",
                                                 "timing.min_window_s=0.0001", "mirror.sizes=[]",
                                                 "memory.depths=[4,16,64,256]", "memory.width=16",
                                                 "memory.n_samples=16"],
                            judged=("flop_ratio.", "hvp.", "memory_vs_depth.slopes.", "all_grads_match")),
}


def judged_claims(run_id: str, claims) -> list:
    """The claims that judge run `run_id` (see the module docstring)."""
    run = RUNS[run_id]

    def reads(claim) -> bool:
        paths = (claim.analytic, claim.computed, claim.error, claim.tolerance_metric,
                 claim.expect[0] if claim.expect else None)
        return any(isinstance(p, str) and p.startswith(run.judged) for p in paths)

    return [c for c in claims if c.experiment == (run.claims or run_id) and (run.judged is None or reads(c))]
