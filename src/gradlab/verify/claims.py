"""Every claim of Homework 1 that the report verifies, and where its numbers live in the runs' metrics.

The first field is the problem; `experiment` is the run id in configs/run_all.yaml. Each claim compares two
routes that share no code on the path checked (`independent`), names the statistic its error is, and judges it
against a tolerance derived from the numerics (`tolerance_why`), most computed by the run from its own data
(`tolerance_metric`). tests/mutation/ plants bugs in src/gradlab/problems/ and checks that some claim fails.
"""

from gradlab.verify.report import Claim

ROUND_OFF = 1e-10  # float64 identities computed two ways agree far below this

CLAIMS = [
    # Problem 1: softmax Jacobian. The analytic J (diag(s) - s s^T from log_softmax) against jax.jacfwd / jacrev of
    # softmax written per class (sigmoid of a margin against a log-sum-exp: no s s^T, no 1 - s_i); the structure
    # the problem states is read off autodiff's J, which never sees the formula.
    *[
        claim
        for case, where in (("", "random logits"), ("saturated.", "saturated logits"))
        for claim in (
            Claim("1", "softmax_jacobian", f"{where}: J = diag(s) - s s^T vs jax.jacfwd", None, None,
                  error=f"{case}max_abs_err.jacfwd", tolerance_metric=f"{case}tolerance.abs",
                  statistic="max abs error over the n x n entries", arrays="jacobian_entries.csv",
                  tolerance_why="(n + 8) eps (1 + max|z|) max|J|: log-sum-exp margin error, exp makes it relative",
                  independent=True),
            Claim("1", "softmax_jacobian", f"{where}: J vs jax.jacrev, relative, tiny entries included", None, None,
                  error=f"{case}max_rel_err.jacrev", tolerance_metric=f"{case}tolerance.rel",
                  statistic="max relative error over the entries (normal ones)", arrays="jacobian_entries.csv",
                  tolerance_why="(n + 8) eps (1 + max|z|)", independent=True),
            Claim("1", "softmax_jacobian", f"{where}: rows of jax.jacfwd's J sum to 0", 0.0, None,
                  error=f"{case}autodiff_row_sum_max_abs", tolerance_metric=f"{case}tolerance.row_sum",
                  statistic="max_i |sum_j J_ij| of autodiff's J",
                  tolerance_why="(n + 8) eps max_i sum_j |J_ij| + rel max|J| (sum of n entries, each within rel)",
                  independent=True),
            Claim("1", "softmax_jacobian", f"{where}: jax.jacfwd's J is symmetric", None, None,
                  error=f"{case}autodiff_symmetry_max_rel", tolerance_metric=f"{case}tolerance.symmetry_rel",
                  statistic="max_ij |J_ij - J_ji| / |J_ji| of autodiff's J",
                  tolerance_why="2 rel: J_ij and J_ji each within rel = (n + 8) eps (1 + max|z|)",
                  independent=True),
        )
    ],
    # Every problem: the error measures the claims read (problems/numerics.py), calibrated on errors planted in a
    # known array; recorded by softmax_jacobian, the quickest run that uses both.
    *[
        Claim("all", "softmax_jacobian", f"error measures: {measure} reads back a planted error of {planted}",
              f"error_measures.{measure}.planted", f"error_measures.{measure}.measured",
              tolerance_metric="error_measures.tolerance", statistic="|measured - planted|",
              tolerance_why="4 eps: each planted entry is one rounded operation on exact numbers", independent=True)
        for measure, planted in (("max_abs_error", 0.25), ("max_rel_error", 0.1))
    ],
    Claim("all", "softmax_jacobian", "error measures: max_rel_error is infinite for a nonzero value where the "
          "reference is 0", None, None, expect=("error_measures.spurious_is_infinite", True),
          statistic="max_rel_error(r with a 0 entry set to 1, r)", tolerance_why="a spurious entry is never skipped",
          independent=True),
    # Problem 2: Gaussian prior = L2. -log posterior from the densities (jax.scipy.stats.norm.logpdf, log-sigmoid
    # pmf) and NLL + L2 from the loss formulas are minimized separately; ridge is a linear solve.
    *[
        Claim("2", "map_l2", f"{model}: MAP minimizer vs NLL + L2 minimizer", f"{model}.map.0", f"{model}.l2.0",
              error=f"{model}.max_abs_diff_map_vs_l2", tolerance_metric=f"{model}.minimizer_tolerance",
              statistic="max abs difference of the two minimizers (phi0 shown)",
              tolerance_why="sqrt(P) max(|g|, newton.tol) max sigma^2 per run, |g| where it stopped: "
              "(1/sigma^2)-strongly convex",
              independent=True)
        for model in ("bernoulli", "gaussian")
    ],
    Claim("2", "map_l2", "Gaussian: MAP minimizer vs closed-form ridge", "gaussian.ridge.0", "gaussian.map.0",
          error="gaussian.max_abs_diff_map_vs_ridge", tolerance_metric="tolerance.ridge",
          statistic="max abs difference over (phi0, phi1) (phi0 shown)",
          tolerance_why="sqrt(P) max(|g|, tol) sigma^2 + 8 cond(G) eps |phi| (Newton's bound + the solve's)",
          independent=True),
    Claim("2", "map_l2", "-log posterior - (NLL + L2) = sum_j log sqrt(2 pi sigma_j^2)",
          "objective_offset_expected", "objective_offset", error="objective_offset_max_abs_err",
          tolerance_metric="tolerance.offset", statistic="max abs error over the offset-check points",
          tolerance_why="(n + 8) eps max(|-log post| + |NLL + L2|) + 4 eps |offset|", independent=True),
    # Problem 3: weight decay = L2 under gradient descent. Every optax/JAX trajectory against the same update written
    # by hand in NumPy with a NumPy gradient (regularization.numpy_reference_runs): no JAX, no optax on that route.
    *[
        Claim("3", "weight_decay", f"{label} vs the NumPy update {reference}", None, None,
              error=f"numpy_reference.{metric}_max_abs_err", tolerance_metric="numpy_reference.tolerance",
              statistic="max abs difference over steps and coordinates",
              arrays="plot_data.npz (path_<run>, numpy_path_<reference>)",
              tolerance_why="steps (n + 8) eps (max|phi| + alpha S), S = max sum_i |gradient terms|: "
                            "round-off per update, not expanded by a convex SGD step", independent=True)
        for metric, label, reference in (
            ("sgd_manual", "hand-written decay update (1 - lam) phi - alpha g (JAX)", "(1 - lam) phi - alpha g"),
            ("sgd_l2", "optax.sgd on L~ = L + lam/(2 alpha) |phi|^2", "(1 - lam) phi - alpha g"),
            ("sgd_optax_decay", "add_decayed_weights(lam/alpha) + sgd on L", "(1 - lam) phi - alpha g"),
            ("momentum_decay", "beyond: add_decayed_weights + momentum on L", "heavy ball on L~"),
            ("momentum_l2", "beyond: momentum on L~", "heavy ball on L~"),
            ("momentum_decoupled", "beyond: decoupled decay after the momentum buffer (SGDW) on L",
             "SGDW (decay after the buffer)"),
            ("adam_l2", "beyond: optax.adam on L~", "Adam on g + w phi"),
            ("adamw", "beyond: optax.adamw(weight_decay=lam/alpha)", "AdamW (decoupled)"),
        )
    ],
    Claim("3", "weight_decay", "beyond: AdamW - Adam on L~, JAX vs NumPy (the gap is measured)",
          "numpy_reference.adamw_vs_adam_l2.numpy", "numpy_reference.adamw_vs_adam_l2.jax",
          error="numpy_reference.adamw_vs_adam_l2.abs_err",
          tolerance_metric="numpy_reference.adamw_vs_adam_l2.tolerance",
          statistic="max over steps of |gap_JAX(t) - gap_NumPy(t)|, gap = max_k |AdamW - Adam-L2|",
          arrays="per_step_difference.png", tolerance_why="2 x the trajectory bound (two runs each side)",
          independent=True),
    Claim("3", "weight_decay", "gradient of the penalty = (lam/alpha) phi vs central differences", None, None,
          error="penalty_grad_fd_max_ratio", tolerance=1.0,
          statistic="max over trajectory points of |analytic - central difference| / bound",
          tolerance_why="bound = (8 eps P(phi) + eps |phi_k g_k|) / h, h = eps^(1/3) max(1, |phi_k|); no truncation "
                        "(quadratic)", independent=True),
    # Problems 4-6: receptive fields: the recursion against the span of d(unit)/d(input) through lax convolutions
    *[
        Claim(problem, f"receptive_field_problem{problem}", "receptive field per layer: analytic vs measured",
              "receptive_field.analytic", "receptive_field.measured", equal=True,
              statistic="per layer (integers)", tolerance_why="exact: integers", independent=True)
        for problem in ("4", "5", "6")
    ],
    # Problem 7: linear regression is convex. Closed forms against jax.hessian of the loss and its det / eigvalsh.
    *[
        claim
        for case, where in (("", "data"), ("degenerate.", "all x equal"))
        for claim in (
            Claim("7", "linreg_hessian", f"{where}: H = 2 [[I, sum x], [sum x, sum x^2]] vs jax.hessian", None,
                  None, error=f"{case}hessian.max_abs_err", tolerance_metric=f"{case}tolerance.hessian",
                  statistic="max abs error over the 4 entries", tolerance_why="4 n eps sum_i (1 + x_i^2)",
                  independent=True),
            Claim("7", "linreg_hessian", f"{where}: det H = 4 I sum (x - mean)^2 vs det(jax.hessian)",
                  f"{case}det", f"{case}det_autodiff", tolerance_metric=f"{case}tolerance.det",
                  statistic="|closed form - det of autodiff's H|",
                  tolerance_why="8 eps (|ad| + b^2) + d (|a| + |d| + 2|b|), d the entries' bound", independent=True),
            Claim("7", "linreg_hessian", f"{where}: lambda_min closed form vs eigvalsh(jax.hessian)",
                  f"{case}min_eigenvalue_closed_form", f"{case}min_eigenvalue_autodiff",
                  statistic="|closed form - eigvalsh|", tolerance_metric=f"{case}tolerance.min_eig",
                  tolerance_why="2 d + 8 eps max|H| (Weyl)",
                  independent=True),
            # the minimizer (lstsq), the loss and eigh's flattest eigenvector against lambda_min's closed form
            Claim("7", "linreg_hessian", f"{where}: a unit step from the minimizer along the flattest eigenvector "
                  "raises L by lambda_min / 2", f"{case}half_min_eigenvalue",
                  f"{case}loss_rise_unit_step_along_flattest", tolerance_metric=f"{case}tolerance.rise",
                  statistic="|L(phi* + v) - L(phi*) - lambda_min / 2|: L twice, lambda_min from trace and det",
                  tolerance_why="lambda_min's bound / 2 + the round-off of each evaluation of L", independent=True),
        )
    ],
    Claim("7", "linreg_hessian", "det(jax.hessian) > its round-off for distinct x: strictly convex", None,
          "det_autodiff", expect=("strictly_convex_autodiff", True), statistic="det of autodiff's H",
          tolerance_why="det > 8 eps (|ad| + b^2) + d (...)", independent=True),
    Claim("7", "linreg_hessian", "all x equal: det(jax.hessian) = 0 within round-off, a line of minima", None,
          "degenerate.det_autodiff", expect=("degenerate.strictly_convex_autodiff", False),
          statistic="det of autodiff's H", tolerance_why="|det| <= 8 eps (|ad| + b^2) + d (...)", independent=True),
    # Problem 8: logistic regression. The analytic gradient / Hessian against autodiff of the textbook loss
    # (logistic.bce_loss_textbook: log-sigmoid, its own logits, no custom rule of ours) and against central
    # differences of the stable loss; the custom JVP rule and the fused loss-and-gradient training uses, likewise.
    Claim("8 (ii)", "logreg", "stable BCE at |z| up to 1e3 vs plain-Python reference (rel)", None, None,
          error="loss_stability.max_rel_err", tolerance_metric="loss_stability.tolerance",
          statistic="max relative error over (z, y)",
          tolerance_why="8 eps: one exp, one log1p, one add per route, each within an ulp", independent=True),
    Claim("8 (ii)", "logreg", "stable and fused BCE vs the textbook loss over the grid", None, None,
          error="loss.max_ratio_to_bound", tolerance=1.0, statistic="max over grid of |L - L_textbook| / bound",
          arrays="grid_errors.csv (loss_ratio)", tolerance_why="bound = (n + 8) eps L_textbook", independent=True),
    Claim("8 (iii)", "logreg", "gradient sum(p - y), sum((p - y) x) vs jax.grad of the textbook loss", None, None,
          error="gradient.max_abs_err", tolerance_metric="gradient.tolerance",
          statistic="max abs error over grid and components", arrays="grid_errors.csv (grad_err)",
          tolerance_why="(n + 8) eps sum_i (1 + |x_i|): residuals within 4 eps, n-term sums", independent=True),
    Claim("8 (iii)", "logreg", "gradient vs central differences of the stable loss", None, None,
          error="gradient.finite_difference_max_ratio", tolerance=1.0,
          statistic="max over grid and components of |analytic - FD| / bound", arrays="grid_errors.csv (fd_ratio)",
          tolerance_why="bound = h^2 M3 / 6 + (n + 8) eps L / h + eps |phi g| / h, h = eps^(1/3) max(1, |phi|), "
                        "M3 = sum |a_ik|^3 sqrt(3)/18", independent=True),
    Claim("8 (iii)", "logreg", "jax.grad through bce_terms' custom JVP rule vs the textbook loss's", None, None,
          error="gradient.custom_rule_max_abs_err", tolerance_metric="gradient.tolerance",
          statistic="max abs error over grid and components", arrays="grid_errors.csv (custom_rule_err)",
          tolerance_why="(n + 8) eps sum_i (1 + |x_i|)", independent=True),
    Claim("8 (iii)", "logreg", "fused loss-and-gradient (training's) vs jax.grad of the textbook loss", None, None,
          error="gradient.fused_max_abs_err", tolerance_metric="gradient.tolerance",
          statistic="max abs error over grid and components", arrays="grid_errors.csv (fused_grad_err)",
          tolerance_why="(n + 8) eps sum_i (1 + |x_i|)", independent=True),
    Claim("8", "logreg", "loss recorded by training at each step vs the textbook loss at that step's phi", None,
          None, error="loss.recorded_max_ratio_to_bound", tolerance=1.0,
          statistic="max over steps of |recorded - L_textbook(phi_t)| / bound", arrays="loss_curve.png",
          tolerance_why="bound = (n + 8) eps L_textbook", independent=True),
    Claim("8 (v)", "logreg", "Hessian sum p(1-p) [[1, x], [x, x^2]] vs jax.hessian of the textbook loss", None,
          None, error="hessian.max_abs_err", tolerance_metric="hessian.tolerance",
          statistic="max abs error over grid and entries", arrays="grid_errors.csv (hess_err)",
          tolerance_why="(n + 8) eps sum_i (1 + |x_i|)^2 / 4", independent=True),
    Claim("8 (v)", "logreg", "smallest eigenvalue: eigvalsh of jax.hessian (textbook) vs the 2x2 closed form "
          "2 det / (tr + hypot(a - d, 2b)) of the analytic H, over the grid", None, None,
          error="hessian.min_eig_max_ratio_to_bound", tolerance=1.0, statistic="max over grid of |error| / bound",
          arrays="grid_errors.csv (min_eig_ratio)",
          tolerance_why="bound = 2 x 2 x the entries' bound (Weyl, each route) + 16 eps max|H| (eigvalsh, the "
          "closed form)", independent=True),
    Claim("8 (v)", "logreg", "smallest eigenvalue of jax.hessian (textbook) over the grid >= 0: convex", None,
          "hessian.min_eig_over_grid", expect=("convex", True), statistic="min over grid",
          arrays="min_eigenvalue_map.png", tolerance_why=">= -100 eps max|lambda_min| (eigvalsh round-off)",
          independent=True),
    Claim("8", "logreg", "Newton's minimum: |jax.grad of the textbook loss| there", None, None,
          error="independent.newton_grad_norm", tolerance_metric="independent.newton_grad_tolerance",
          statistic="2-norm of the gradient", tolerance_why="newton.tol + sqrt(2) x the gradient's round-off bound",
          independent=True),
    Claim("8", "logreg", "|gradient| training reports at its final phi vs |jax.grad of the textbook loss| there",
          None, None, error="independent.fit_grad_norm_err", tolerance_metric="independent.fit_grad_norm_tolerance",
          statistic="| |g_training| - |g_textbook| | at the fitted phi",
          tolerance_why="sqrt(2) x the gradient's round-off bound: each component within it, and two norms differ "
          "by at most the norm of the difference", independent=True),
    Claim("8", "logreg", "optax training lands on Newton's minimum", None, None,
          error="fit.distance_to_newton", tolerance_metric="independent.fit_to_newton_bound",
          statistic="2-norm distance of the two minimizers",
          tolerance_why="2 (|g_fit| + |g_newton| + 2 delta) / lambda_min(H): strong convexity, textbook gradients",
          independent=True),
    Claim("8 (iv)", "logreg", "Newton's minimum within one grid cell of the heatmap minimum", None, None,
          error="newton.distance_to_heatmap_min", tolerance_metric="heatmap.cell_diagonal",
          statistic="2-norm distance", tolerance_why="one cell diagonal: the heatmap's resolution",
          independent=True),
    # Problem 8 at scale: one row of the vectorised sweep against the same training by hand in NumPy
    Claim("8", "logreg_sweep", "a sweep row (last seed) vs the same training written in NumPy",
          "check_row.numpy_phi.1", "check_row.sweep_phi.1", error="check_row.max_abs_err",
          tolerance_metric="check_row.tolerance", statistic="max abs difference of the final phi (phi1 shown)",
          tolerance_why="steps (n + 8) eps (max|phi| + lr S) / (1 - momentum): per-step round-off, heavy-ball gain",
          independent=True),
    Claim("8", "logreg_sweep", "the sweep's final loss vs the textbook loss at its final phi (rel)", None, None,
          error="check_row.final_loss_rel_err", tolerance_metric="check_row.final_loss_rel_tolerance",
          statistic="relative error", tolerance_why="(n + 8) eps: n positive terms, 4 eps each route",
          independent=True),
    # Problems 9 and 10: reverse and forward mode on the graph, errors relative (max over the configured x). Node by
    # node, each entry against its own round-off: a node's conditioning is not y's (sin(f3) where cos(f3) ~ 0)
    *[
        Claim(problem, "autodiff_modes", quantity, None, None, error=f"max_errors.{metric}_worst.error",
              tolerance_metric=f"max_errors.{metric}_worst.bound", arrays="report_tables.md",
              statistic=f"|hand - {route}| / |{route}| at the entry (node, point) nearest its own bound",
              tolerance_why="8 eps (1 + R / (eps/2) / |e|) per entry e, R its first-order round-off: every "
                            "name's rounding moving e (second derivatives, by jax.jvp), every accumulated "
                            "derivative's rounding carried on to e", independent=True)
        for problem, quantity, metric, route in (
            ("10", "forward tangents df_i/dx vs jax.jvp, node by node (rel)", "forward_vs_jax_jvp", "jax.jvp"),
            ("9", "reverse adjoints dy/df_i vs jax.vjp, node by node (rel)", "reverse_vs_jax_vjp", "jax.vjp"),
        )
    ],
    *[
        Claim(problem, "autodiff_modes", quantity, None, None, error=f"max_errors.{metric}",
              tolerance_metric="max_errors.round_off_bound", arrays="report_tables.md", statistic=statistic,
              tolerance_why="8 eps (1 + sum_v |dy/dv| |v| / |y|), max over the points: each name's rounding on "
                            "either route, moved to y by its adjoint", independent=True)
        for problem, quantity, metric, statistic in (
            ("10", "forward-mode dy/dx vs closed form f1 (1 + 2 f1)(f4 + cos f3) (rel)", "forward_vs_closed_form",
             "max over the points of |forward - closed form| / |closed form|"),
            ("9", "reverse-mode dy/dx vs closed form (rel)", "reverse_vs_closed_form",
             "max over the points of |reverse - closed form| / |closed form|"),
        )
    ],
    Claim("9, 10", "autodiff_modes", "dy/dx at x = 0: closed form 3 (e^2 + cos 2) vs jax.grad",
          "points.4.gradient.x.closed_form", "points.4.gradient.x.jax_grad", tolerance=1e-12,
          statistic="|closed form - jax.grad| at x = 0", independent=True,
          tolerance_why="|dy/dx| = 20.9 times 8 eps (1 + sum_v |dy/dv| |v| / |y|) = 1.4e-14 at x = 0: 3.0e-13"),
    Claim("9, 10", "autodiff_modes", "closed form vs central finite difference (rel)", None, None,
          error="max_errors.finite_difference_vs_closed_form", tolerance_metric="max_errors.finite_difference_bound",
          tolerance_why="2 (|D(2h) - D(h)| / 3 + (eps/2) sum_v |dy/dv| |v| / h): Richardson's truncation estimate "
                        "plus y's first-order round-off over the step", arrays="report_tables.md", independent=True,
          statistic="max over the points of |D(h) - closed form| / |closed form|, against the max relative bound"),
    Claim("9, 10", "autodiff_modes", "central difference within its derived bound at every point", None, None,
          expect=("max_errors.finite_difference_within_bound", True), independent=True,
          statistic="every point: |D(h) - closed form| <= its own bound",
          tolerance_why="2 (|D(2h) - D(h)| / 3 + (eps/2) sum_v |dy/dv| |v| / h) at that point"),
    *[
        Claim(problem, "autodiff_modes", f"{mode} mode's chain-rule operations: counted on the graph vs walked",
              f"operation_counts.{mode}_total_ops", f"operation_counts.{mode}_ops_walked", equal=True,
              independent=True, statistic=f"{mode}: {formula}, against a counter in the walk",
              tolerance_why="operation counts are integers: equal")
        for problem, mode, formula in (("10 (why)", "forward", "n passes of 2E - N operations"),
                                       ("9 (why)", "reverse", "one pass of 2E - P operations"))
    ],
    # Why deep nets use reverse mode: forward mode pays a factor P, reverse mode a small constant. Times: the minimum
    # over >= 3 interleaved rounds of each round's minimum; slopes fitted over the sizes >= 10 x the empty call.
    *[
        claim
        for family in ("linear", "mlp")
        for claim in (
            Claim("10 (why)", "autodiff_scaling", f"{family}: time slope forward (P jvps) - reverse = 1", 1.0,
                  f"slopes.{family}.time_slope_difference.value",
                  tolerance_metric=f"slopes.{family}.time_slope_difference.half_width",
                  statistic="paired: log-log slope of the per-size ratio t_seq / t_rev (ratio of the best times)",
                  tolerance_why="its 95% t interval: pass when 1 lies inside it",
                  independent=True)
            if family == "linear" else
            # = 1 needs one tangent pass of the loop and the reverse pass to grow alike in P (ratios.*.fixed_share:
            # t = a + b P per route; the local slope excess is the difference of their P-independent shares).
            # XLA hoists the loop-invariant primal out of lax.map, so the P passes compute tangents only, while
            # reverse pays the per-point exp/log1p/sigmoid once a call: with sample-major activations the shares
            # were ~89% vs ~70% at P = 7 and the slope 1.2-1.3; feature-major (cost.make_mlp_loss) ~86% vs ~78%,
            # 0.98-1.11 in the main job (1 inside), 1.117 [1.017, 1.217] at scale=full. Claimed: >= 1.
            Claim("10 (why)", "autodiff_scaling", f"{family}: time slope forward (P jvps) - reverse >= 1", 1.0,
                  f"slopes.{family}.time_slope_difference.value",
                  error=f"slopes.{family}.time_slope_difference.interval.1", at_least=1.0,
                  statistic="upper end of the 95% interval of the paired slope of t_seq / t_rev",
                  tolerance_why="pass unless the whole interval lies below 1; = 1 only where a tangent pass and "
                  "the reverse pass have equal P-independent shares (ratios.mlp.fixed_share: ~78% vs ~86% at the "
                  "smallest P, a residual ~+0.1), measured 0.98-1.12", independent=True),
            Claim("10 (why)", "autodiff_scaling", f"{family}: that slope difference is pinned down (interval width)",
                  None, None, error=f"slopes.{family}.time_slope_difference.width",
                  tolerance_metric="config.timing.max_interval_width",
                  statistic="width of the 95% interval",
                  tolerance_why="timing.max_interval_width, 0.3: a slope of 1 that cannot be told from 0.7 or "
                  "1.3 says nothing (the main job on one core measures 0.07-0.24)", independent=True),
            Claim("10 (why)", "autodiff_scaling", f"{family}: every time fit spans >= 1.5 decades of P above the floor",
                  None, None, error=f"slopes.{family}.min_decades", at_least=1.5,
                  statistic="min over routes of log10(P_max / P_min) of the fitted sizes",
                  tolerance_why="floor = 10 x the empty call (identity in theta, same arguments), measured",
                  independent=True),
            Claim("10 (why)", "autodiff_scaling", f"{family}: P jvps in one loop cost <= P separate jvps", None,
                  f"ratios.{family}.seq_over_P_jvp_max_low", at_most=1.0,
                  statistic="max over sizes of the lowest round's t_seq / (P t_jvp)",
                  tolerance_why="about 1, or below: the loop pays no per-call dispatch and XLA hoists the "
                  "loop-invariant primal out of it (the logistic loop's body has no exp); the rounds' spread",
                  independent=True),
            Claim("10 (why)", "autodiff_scaling", f"{family}: cheap gradient, t_rev / t_f <= 5 at every size", None,
                  f"ratios.{family}.rev_over_f_max_low", at_most=5.0,
                  statistic="max over sizes above the floor of the lowest round's t_rev / t_f",
                  tolerance_why="Griewank & Walther's bound; sizes above it: ratios.*.rev_over_f_above_5",
                  independent=True),
            Claim("10 (why)", "autodiff_scaling", f"{family}: one jvp costs <= 3 f", None,
                  f"ratios.{family}.jvp_over_f_max_low", at_most=3.0,
                  statistic="max over sizes above the floor of the lowest round's t_jvp / t_f",
                  tolerance_why="primal + tangent: <= 3 f (Griewank & Walther)", independent=True),
        )
    ],
    Claim("10 (why)", "autodiff_scaling", "matrix-product FLOPs cost(grad) / cost(f) = 2, logistic model", 2.0, None,
          error="flop_ratio.linear.max_rel_err", tolerance=0.01,
          statistic="max over P of |ratio / 2 - 1|, dot FLOPs counted on jax.make_jaxpr",
          tolerance_why="the issue's 1%; the count is exact (integers)", independent=True),
    Claim("10 (why)", "autodiff_scaling", "MLP: cost(grad) / cost(f) counted = 3 - a_1 b_1 / F at every width", None,
          None, error="flop_ratio.mlp.max_rel_err_vs_formula", tolerance=1e-12,
          statistic="max relative difference, counted on the jaxpr vs the hand-derived formula",
          tolerance_why="both exact rationals", independent=True),
    Claim("10 (why)", "autodiff_scaling", "MLP: cost(grad) / cost(f) = 3 on a wide net (depth 2)", 3.0,
          "flop_ratio.mlp.ratio_at_flops_width", error="flop_ratio.mlp.rel_err_vs_3", tolerance=0.01,
          statistic="|ratio / 3 - 1| at mlp.flops_width", tolerance_why="the issue's 1%: the input layer's "
          "a_1 b_1 / F is below it there", independent=True),
    Claim("10 (why)", "autodiff_scaling", "HVP forward-over-reverse = X^T diag(p(1-p)) X v / n (numpy)", None, None,
          error="hvp.max_ratio_to_bound", tolerance=1.0, statistic="max over sizes and entries of |error| / bound",
          tolerance_why="bound = (P + N + 8) eps sum_k |X_ki| p_k(1-p_k) sum_j |X_kj v_j| / N", independent=True),
    Claim("10 (why)", "autodiff_scaling", "HVP costs a small constant times f (logistic model)", None,
          "ratios.linear.hvp_over_f_median", at_most=5.0,
          statistic="median over sizes above the floor of t_hvp / t_f (max: ratios.linear.hvp_over_f_max)",
          tolerance_why="forward over reverse: <= 5 f (the jvp bound applied to the gradient)", independent=True),
    *[
        Claim("10 (why)", "autodiff_scaling", f"reverse-mode memory vs depth, checkpoint {strategy}: slope {slope}",
              slope, f"memory_vs_depth.slopes.{strategy}.temp_bytes.slope",
              tolerance_metric=f"memory_vs_depth.slopes.{strategy}.temp_bytes.tolerance",
              statistic="log-log slope of XLA's peak temporary bytes against depth (the plan checked below)",
              tolerance_why="95% t half-width + 0.1: the depth-independent terms (batch, carry, one segment) bend "
                            "the slope at small D", independent=True)
        for strategy, slope in (("none", 1.0), ("sqrt_segments", 0.5))
    ],
    Claim("10 (why)", "autodiff_scaling", "XLA's plan is what one call takes: resident rise = temp + output bytes",
          None, None, error="memory_vs_depth.resident.max_abs_excess_bytes",
          tolerance_metric="memory_vs_depth.resident.allowance_bytes",
          statistic="deepest net, each strategy's call alone in a new process: max |rise - (temp + output)|, the "
                    "rise of the resident high-water mark (device peak on a GPU)",
          tolerance_why="1 MiB: measured -0.12 to +0.36 MiB on a CPU (float32 and float64, after one call of the "
                        "same kernels on a one-layer net); at the default sizes a call that skipped its outputs "
                        "or reused freed memory misses by >= 4 MiB",
          independent=True),
    Claim("10 (why)", "autodiff_scaling", "sqrt(D) checkpointing costs <= 2x the time of none (deepest net)", None,
          "memory_vs_depth.sqrt_time_over_none.best", at_most=2.0, statistic="ratio of the best times",
          tolerance_why="one extra forward pass: ~4/3 in theory", independent=True),
    Claim("10 (why)", "autodiff_scaling", "jacfwd / jacrev crosses 1 near n_in = n_out", None, None,
          error="mirror.crossover_abs_log10_median", tolerance_metric="mirror.crossover_tolerance_log10",
          statistic="median over n_out of |log10(n_in* / n_out)|, n_in* the interpolated crossing",
          tolerance_why="one grid step + the largest shift of a crossing between the rounds' low and high ratios",
          independent=True),
    Claim("10 (why)", "autodiff_scaling", "reverse, batched forward and sequential forward gradients agree", None,
          None, expect=("all_grads_match", True), independent=True),
]
