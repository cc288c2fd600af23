"""The main job: every experiment with its defaults, one directory each, then the verification report.

The experiment lives in `gradlab.experiments.run_all`; its defaults in `configs/run_all.yaml`.
"""

from gradlab.runner.run import launch

if __name__ == "__main__":
    launch("run_all")
