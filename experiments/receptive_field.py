"""Problems 4-6: the receptive field of each layer of a 1D conv stack, analytic against measured.

The experiment lives in `gradlab.experiments.receptive_field`; its defaults in `configs/receptive_field.yaml`.
"""

from gradlab.runner.run import launch

if __name__ == "__main__":
    launch("receptive_field")
