"""Problem 1: the derivative of softmax, J = diag(s) - s s^T, checked against JAX's two autodiff modes.

The experiment lives in `gradlab.experiments.softmax_jacobian`; its defaults in `configs/softmax_jacobian.yaml`.
"""

from gradlab.runner.run import launch

if __name__ == "__main__":
    launch("softmax_jacobian")
