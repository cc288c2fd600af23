"""Why deep nets use reverse mode (Problem 10): cost of the gradient by jvp vs vjp as P grows.

The experiment lives in `gradlab.experiments.autodiff_scaling`; its defaults in `configs/autodiff_scaling.yaml`.
"""

from gradlab.runner.run import launch

if __name__ == "__main__":
    launch("autodiff_scaling")
