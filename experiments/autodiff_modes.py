"""Problems 9 and 10: reverse and forward mode by hand on y = exp(e^x + e^2x) + sin(e^x + e^2x).

The experiment lives in `gradlab.experiments.autodiff_modes`; its defaults in `configs/autodiff_modes.yaml`.
"""

from gradlab.runner.run import launch

if __name__ == "__main__":
    launch("autodiff_modes")
