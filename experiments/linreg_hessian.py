"""Problem 7: the Hessian of the linear-regression least-squares loss, its eigenvalues, the degenerate case.

The experiment lives in `gradlab.experiments.linreg_hessian`; its defaults in `configs/linreg_hessian.yaml`.
"""

from gradlab.runner.run import launch

if __name__ == "__main__":
    launch("linreg_hessian")
