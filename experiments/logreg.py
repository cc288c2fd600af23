"""Problem 8: 1D logistic regression Pr(y=1|x) = sig(phi0 + phi1 x), parts (i) to (v), trained jit-compiled.

The experiment lives in `gradlab.experiments.logreg`; its defaults in `configs/logreg.yaml`.
"""

from gradlab.runner.run import launch

if __name__ == "__main__":
    launch("logreg")
