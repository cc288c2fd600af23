"""Grade a student's numeric answers to Homework 1 against the values the library computes.

The experiment lives in `gradlab.experiments.check_answers`; its defaults in `configs/check_answers.yaml`.
"""

from gradlab.runner.run import launch

if __name__ == "__main__":
    launch("check_answers")
