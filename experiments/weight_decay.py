"""Problem 3: weight decay phi <- (1 - lambda) phi - alpha dL/dphi is gradient descent on

The experiment lives in `gradlab.experiments.weight_decay`; its defaults in `configs/weight_decay.yaml`.
"""

from gradlab.runner.run import launch

if __name__ == "__main__":
    launch("weight_decay")
