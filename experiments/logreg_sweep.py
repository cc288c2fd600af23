"""Problem 8, vectorised: thousands of (seed, learning rate, momentum) trainings in one jit(vmap(train)) call.

The experiment lives in `gradlab.experiments.logreg_sweep`; its defaults in `configs/logreg_sweep.yaml`.
"""

from gradlab.runner.run import launch

if __name__ == "__main__":
    launch("logreg_sweep")
