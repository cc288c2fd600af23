"""The main job: every experiment with its defaults, one directory each, then the verification report.

The experiment lives in `gradlab.experiments.run_all`; its defaults in `configs/run_all.yaml`.
"""

from gradlab.runner.process import hold_signals  # light: no JAX, Hydra or numpy

if __name__ == "__main__":
    hold_signals()  # Ctrl-C from the first moment ends as it does later: a report, runs not started "not run"
    from gradlab.runner.run import launch

    launch("run_all")
