"""Jit-compiled logistic-regression training (Problem 8) against the alternatives, measured.

The experiment lives in `gradlab.experiments.bench_logreg`; its defaults in `configs/bench_logreg.yaml`.
"""

from gradlab.runner.run import launch

if __name__ == "__main__":
    launch("bench_logreg")
