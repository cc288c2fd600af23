"""Problem 2: MAP with the prior Norm(0, sigma_j^2) on each phi_j is NLL + sum_j phi_j^2 / (2 sigma_j^2).

The experiment lives in `gradlab.experiments.map_l2`; its defaults in `configs/map_l2.yaml`.
"""

from gradlab.runner.run import launch

if __name__ == "__main__":
    launch("map_l2")
