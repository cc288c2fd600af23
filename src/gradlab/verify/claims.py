"""Every claim of Homework 1 that the report verifies, and where its numbers live in the runs' metrics.

The first field is the problem; `experiment` is the run id in configs/run_all.yaml. Tolerances are the
verification thresholds: float64 round-off for identities, optimizer tolerance for minimizers.
"""

from gradlab.verify.report import Claim

ROUND_OFF = 1e-10  # float64 identities computed two ways agree far below this

CLAIMS = [
    # Problem 1: softmax Jacobian
    Claim("1", "softmax_jacobian", "J = diag(s) - s s^T vs jax.jacfwd (max abs error)", None, None,
          error="max_abs_err.jacfwd", tolerance=ROUND_OFF),
    Claim("1", "softmax_jacobian", "J = diag(s) - s s^T vs jax.jacrev (max abs error)", None, None,
          error="max_abs_err.jacrev", tolerance=ROUND_OFF),
    Claim("1", "softmax_jacobian", "relative error vs jax.jacfwd, tiny entries included", None, None,
          error="max_rel_err.jacfwd", tolerance=1e-8),
    Claim("1", "softmax_jacobian", "rows of J sum to 0", None, None, error="row_sum_max_abs", tolerance=ROUND_OFF),
    Claim("1", "softmax_jacobian", "J is symmetric", None, None, expect=("symmetric", True)),
    # Problem 2: Gaussian prior = L2
    Claim("2", "map_l2", "Bernoulli: MAP minimizer vs NLL + L2 minimizer", None, None,
          error="bernoulli.max_abs_diff_map_vs_l2", tolerance=1e-8),
    Claim("2", "map_l2", "Gaussian: MAP minimizer vs NLL + L2 minimizer", None, None,
          error="gaussian.max_abs_diff_map_vs_l2", tolerance=1e-8),
    Claim("2", "map_l2", "Gaussian: MAP minimizer vs closed-form ridge", None, None,
          error="gaussian.max_abs_diff_map_vs_ridge", tolerance=1e-8),
    Claim("2", "map_l2", "-log posterior - (NLL + L2) = sum_j log sqrt(2 pi sigma_j^2)",
          "objective_offset_expected", "objective_offset", tolerance=ROUND_OFF),
    # Problem 3: weight decay = L2 under gradient descent
    Claim("3", "weight_decay", "hand-written decay update vs optax.sgd on L~ (max over trajectory)", None, None,
          error="sgd.max_abs_diff_manual_vs_l2", tolerance=ROUND_OFF),
    Claim("3", "weight_decay", "add_decayed_weights(lam/alpha) + sgd vs sgd on L~", None, None,
          error="sgd.max_abs_diff_optax_decay_vs_l2", tolerance=ROUND_OFF),
    Claim("3", "weight_decay", "gradient of the penalty = (lam/alpha) phi vs jax.grad", None, None,
          error="penalty_grad_max_abs_err", tolerance=ROUND_OFF),
    Claim("3", "weight_decay", "beyond: momentum with decay vs momentum on L~", None, None,
          error="momentum.max_abs_diff_decay_vs_l2", tolerance=ROUND_OFF),
    Claim("3", "weight_decay", "beyond: AdamW differs from Adam on L~ (decoupled decay)", None, None,
          error="adam.max_abs_diff_adamw_vs_l2", at_least=1e-6),
    # Problems 4-6: receptive fields
    *[
        Claim(problem, f"receptive_field_problem{problem}", "receptive field per layer: analytic vs measured",
              "receptive_field.analytic", "receptive_field.measured", equal=True)
        for problem in ("4", "5", "6")
    ],
    # Problem 7: linear regression is convex
    Claim("7", "linreg_hessian", "H = 2 [[I, sum x], [sum x, sum x^2]] vs jax.hessian", None, None,
          error="hessian.max_abs_err", tolerance=ROUND_OFF),
    Claim("7", "linreg_hessian", "det H > 0 for distinct x: strictly convex", None, "det",
          expect=("strictly_convex", True)),
    Claim("7", "linreg_hessian", "all x equal: det H = 0, a line of minima", None, "degenerate.det",
          expect=("degenerate.strictly_convex", False)),
    # Problem 8: logistic regression
    Claim("8 (ii)", "logreg", "stable BCE at |z| up to 1e3 vs plain-Python reference (max rel error)", None, None,
          error="loss_stability.max_rel_err", tolerance=1e-12),
    Claim("8 (iii)", "logreg", "gradient sum(p - y), sum((p - y) x) vs jax.grad (max over grid)", None, None,
          error="gradient.max_abs_err", tolerance=ROUND_OFF),
    Claim("8 (v)", "logreg", "Hessian sum p(1-p) [[1, x], [x, x^2]] vs jax.hessian (max over grid)", None, None,
          error="hessian.max_abs_err", tolerance=ROUND_OFF),
    Claim("8 (v)", "logreg", "smallest Hessian eigenvalue over the grid > 0: convex", None,
          "hessian.min_eig_over_grid", expect=("convex", True)),
    Claim("8", "logreg", "Newton's method: gradient norm at its minimum", None, None,
          error="newton.grad_norm", tolerance=1e-10),
    Claim("8", "logreg", "optax training lands on Newton's minimum (distance)", None, None,
          error="fit.distance_to_newton", tolerance=1e-6),
    Claim("8 (iv)", "logreg", "Newton's minimum within one grid cell of the heatmap minimum", None, None,
          error="newton.distance_to_heatmap_min", tolerance_metric="heatmap.cell_diagonal"),
    # Problems 9 and 10: reverse and forward mode on the graph, errors relative (max over the configured x)
    Claim("10", "autodiff_modes", "forward tangents df_i/dx vs jax.jvp, node by node (rel)", None, None,
          error="max_errors.forward_vs_jax_jvp", tolerance=1e-13),
    Claim("9", "autodiff_modes", "reverse adjoints dy/df_i vs jax.vjp, node by node (rel)", None, None,
          error="max_errors.reverse_vs_jax_vjp", tolerance=1e-13),
    Claim("10", "autodiff_modes", "forward-mode dy/dx vs closed form f1 (1 + 2 f1)(f4 + cos f3) (rel)", None, None,
          error="max_errors.forward_vs_closed_form", tolerance=1e-13),
    Claim("9", "autodiff_modes", "reverse-mode dy/dx vs closed form (rel)", None, None,
          error="max_errors.reverse_vs_closed_form", tolerance=1e-13),
    Claim("9, 10", "autodiff_modes", "dy/dx at x = 0: closed form 3 (e^2 + cos 2) vs jax.grad",
          "points.4.gradient.x.closed_form", "points.4.gradient.x.jax_grad", tolerance=1e-12),
    Claim("9, 10", "autodiff_modes", "closed form vs central finite difference (rel)", None, None,
          error="max_errors.finite_difference_vs_closed_form", tolerance_metric="max_errors.finite_difference_bound",
          tolerance_why="2 (|D(2h) - D(h)| / 3 + (eps/2) sum_v |dy/dv| |v| / h): Richardson's truncation estimate "
                        "plus y's first-order round-off over the step", arrays="tables.md"),
    Claim("9, 10", "autodiff_modes", "central difference within its derived bound at every point", None, None,
          expect=("max_errors.finite_difference_within_bound", True)),
    Claim("10 (why)", "autodiff_modes", "forward mode's chain-rule operations: counted on the graph vs walked",
          "operation_counts.forward_total_ops", "operation_counts.forward_ops_walked", equal=True),
    Claim("9 (why)", "autodiff_modes", "reverse mode's chain-rule operations: counted on the graph vs walked",
          "operation_counts.reverse_total_ops", "operation_counts.reverse_ops_walked", equal=True),
    # Why deep nets use reverse mode: forward mode pays a factor P, reverse mode a small constant
    *[
        claim
        for family in ("linear", "mlp")
        for claim in (
            Claim("10 (why)", "autodiff_scaling", f"{family}: FLOP slope forward - reverse = 1 (the factor P)",
                  1.0, f"slopes.{family}.fwd_minus_rev_flops", tolerance=0.15),
            # measured seconds: P jvps against one vjp; below the asymptote, per-call costs flatten the forward
            # slope, and a busy machine moves it, hence the wide tolerance (the interval is in the metrics)
            Claim("10 (why)", "autodiff_scaling", f"{family}: time slope forward (P jvps) - reverse = 1",
                  1.0, f"slopes.{family}.time_slope_difference.value", tolerance=0.5),
            Claim("10 (why)", "autodiff_scaling", f"{family}: cost(grad)/cost(f) in FLOPs, largest over P",
                  None, f"cheap_gradient_ratio.{family}.flops_rev_range.1", at_most=5.0),
        )
    ],
    Claim("10 (why)", "autodiff_scaling", "reverse, batched forward and sequential forward gradients agree", None,
          None, expect=("all_grads_match", True)),
]
