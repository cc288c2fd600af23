"""One process of the mutation tier: runs experiments in-process, each from the source copy it is given.

Reads one JSON job a line from stdin, {"src": copy/src, "script": name, "overrides": [...], "out": run dir},
imports gradlab afresh from that copy (every gradlab module is dropped from sys.modules first), runs the
experiment as the tests' run_experiment does, and answers one line. JAX, optax and Hydra are imported once, so
a run costs its compile and compute, not a new interpreter (~3 s each on this machine).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys

import jax


def run(job: dict) -> int:
    for name in [m for m in sys.modules if m == "gradlab" or m.startswith("gradlab.")]:
        del sys.modules[name]
    sys.path[:] = [job["src"]] + [p for p in sys.path if not p.endswith("/src")]
    os.environ["PYTHONPATH"] = job["src"]  # a process the run starts (autodiff_scaling's resident check) too
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from gradlab.runner.run import CONFIG_DIR, execute, experiment_module

    assert str(CONFIG_DIR).startswith(job["src"]), CONFIG_DIR  # the copy's configs and code, not the tree's
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=job["script"], overrides=["figures=false", *job["overrides"]])
    module = experiment_module(job["script"])
    try:
        return execute(job["script"], module.Config, module.main, cfg, job["out"])
    finally:
        jax.config.update("jax_enable_x64", True)


def main() -> None:
    for line in sys.stdin:
        job = json.loads(line)
        sink = io.StringIO()
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                code = run(job)
        except BaseException as err:  # a mutant may break anything; the record (or its absence) says what
            code = f"{type(err).__name__}: {err}"
        print(json.dumps({"code": code}), flush=True)


if __name__ == "__main__":
    main()
