"""Shared test set-up: float64 once, an in-process runner (Hydra's compose API) and the CLI, both into tmp_path.

Most tests call an experiment in-process (`run_experiment`): the config is composed from configs/<name>.yaml
exactly as the CLI composes it, then the run layer's `execute` runs it into tmp_path. The tests under `e2e/`
run the CLI (`cli`) for the contract a process has: exit codes, stderr, signals, launchers; in processes forked
from a server that imported it once (cli_processes.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cli_processes
import jax
import pytest
from cli_processes import CLI_ENV, REPO
from hypothesis import settings

from gradlab.runner.meta import set_compile_cache

jax.config.update("jax_enable_x64", True)  # the verification tests compare in float64
# hypothesis draws the same inputs every run: a failure reproduces, and the programs their shapes compile are cache hits
# after the first run (random draws compiled ~80 new XLA programs a run: 84 -> 76 CPU-s for the 12 files that use it);
# HYPOTHESIS_PROFILE=explore draws new inputs each run
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
# every test's XLA executables in JAX's persistent cache, as runs keep theirs: a second `make test` loads them
TEST_COMPILE_CACHE = set_compile_cache(os.environ.get("GRADLAB_TEST_COMPILE_CACHE", "~/.cache/gradlab/jax-tests"))
# submitit runs logging.config.dictConfig when first imported, which closes the log handlers already made; one
# made during an earlier test (absl's) writes to that test's captured stderr, and closing it broke the capture of
# the test that imported submitit next, and every later test on that worker: imported once, before any test
with contextlib.suppress(ImportError):  # without the `launchers` extra there is nothing to import
    import submitit  # noqa: F401


def pytest_collection_finish(session):
    """What collection imported is frozen out of the cyclic collector's reach (its thresholds:
    src/gradlab/__init__.py)."""
    gc.collect()
    gc.freeze()


WHOLE_RUN_FIXTURES = {"run_experiment", "cli", "hydra_in_process"}


def pytest_collection_modifyitems(items):
    """A test that runs a whole experiment (in-process or through the CLI) is marked `experiment`: the fast tier
    (`make test-fast`: tests/unit, neither `experiment` nor `slow`) leaves it to `make test`."""
    for item in items:
        if WHOLE_RUN_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.experiment)


# A logreg run that computes for about a minute alone on this machine (2e6 SGD steps on 4000 points), far longer
# than any test waits: a test that signals or kills it mid-run never races the run's own end, whatever the load
# (10M steps on the homework's 20 points took ~2.5 s and once finished before a kill -9 took effect). The loss
# sums over the points, so the step is small: lr < 2 / L with L ~ sum(1 + x^2) / 4 ~ 2000.
LONG_STEPS = 2_000_000
LONG_DATA = ("data.n_per_class=2000", "optimizer.name=sgd", "optimizer.lr=0.0002", "grid.resolution=11",
             "figures=false")
LONG_LOGREG = (f"train.steps={LONG_STEPS}", *LONG_DATA)
# a sweep whose job 1 is killed with SIGKILL (as the OOM killer does) while it computes; jobs 0 and 2 end ok
KILLED_JOB_STEPS = (30, LONG_STEPS, 300)


def assert_the_killed_job_crashed_and_the_others_ran(rows: list[dict], job1_metrics: Path) -> None:
    """summary.csv's first three rows, of a sweep over train.steps=KILLED_JOB_STEPS whose job 1 was killed: job 1
    `crashed` (its record too) naming SIGKILL, jobs 0 and 2 ok with their own configs (more steps: closer to the
    optimum)."""
    assert [row["train.steps"] for row in rows[:3]] == [str(n) for n in KILLED_JOB_STEPS]
    assert [row["status"] for row in rows[:3]] == ["ok", "crashed", "ok"]
    assert "SIGKILL" in rows[1]["error"] and json.loads(job1_metrics.read_text())["status"] == "crashed"
    assert float(rows[2]["fit.grad_norm"]) < float(rows[0]["fit.grad_norm"])

# autodiff_scaling in a few seconds: one family, two sizes, no memory probe
# backend=cpu: these sizes on any device (on a GPU, backend=auto would replace them by presets.gpu's)
SMALL_AUTODIFF_SCALING = ("families=[linear]", "linear.P=[10,100]", "n_samples=8", "timing.min_window_s=0.001",
                          "mirror.sizes=[1,8]", "memory.depths=[]", "backend=cpu")


def cores_of_every_thread() -> set[frozenset[int]]:
    """The distinct core sets of this process's threads (Linux): one set when every thread is pinned alike."""
    return {frozenset(os.sched_getaffinity(int(tid))) for tid in os.listdir("/proc/self/task")}


def wait_for(condition, deadline_s: float = 60.0):
    """condition()'s value once it is truthy, or its last value when `deadline_s` has passed."""
    end = time.monotonic() + deadline_s
    while not (value := condition()) and time.monotonic() < end:
        time.sleep(0.05)
    return value


def sweep_job(cwd: Path, job: int) -> Path | None:
    """metrics.json of job `job` of the logreg sweep started in `cwd`, once it exists (None before)."""
    return next(iter((cwd / "outputs" / "logreg" / "multirun").glob(f"*/*/{job}/metrics.json")), None)


def wait_until_computing(metrics: Path, timeout: float = 60) -> int:
    """The pid of the process computing a run, once its record (metrics.json) says so."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            record = json.loads(metrics.read_text())
            if record["status"] == "running" and "worker_pid" in record["meta"]:
                return record["meta"]["worker_pid"]
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{metrics} never said running")


def as_run_all_override(name: str, overrides: tuple[str, ...]) -> str:
    """run_all's `overrides={<name>: [...]}` for one run."""
    return f"overrides={{{name}: [{', '.join(repr(o) for o in overrides)}]}}"


def hydra_compose(name: str, *overrides: str):
    """configs/<name>.yaml with overrides, composed by Hydra as the CLI does (without the hydra section)."""
    from hydra import compose, initialize_config_dir

    from gradlab.runner.run import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))


@functools.cache
def composed_once(name: str):
    return hydra_compose(name)


@functools.cache
def override_parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


_MISSING = object()


def changes_a_key(override, cfg) -> bool:
    """Whether Hydra applies `override` to the composed config (`key=value` on a key the config has), rather than
    to the defaults list (a config group: a folder of configs/) or through +, ~, @package, hydra.* or a sweep."""
    from hydra.core.override_parser.types import OverrideType
    from omegaconf import OmegaConf

    from gradlab.runner.run import CONFIG_DIR

    key = override.key_or_group
    return (override.type == OverrideType.CHANGE and override.package is None and not override.is_sweep_override()
            and not override.is_hydra_override() and "/" not in key and not (CONFIG_DIR / key).is_dir()
            and OmegaConf.select(cfg, key, default=_MISSING) is not _MISSING)


def compose_config(name: str, *overrides: str):
    """configs/<name>.yaml with overrides, as the CLI composes it (without the hydra section).

    Hydra's compose takes ~0.1 s, most of an in-process test's time, and almost all of it goes to the defaults
    list and Hydra's own config, the same for every override of a key. So each experiment is composed once per
    process, and overrides that change keys it has are applied to a copy as Hydra applies them after composing:
    parsed by its override parser, then OmegaConf.update(merge=True) on the struct config. Anything else (a config
    group, +key, ~key, @package, hydra.*, a sweep, a key the config lacks) goes through Hydra whole, whose errors
    the tests then see. test_configs.py checks both routes give the same config.
    """
    import copy

    from omegaconf import OmegaConf

    base = composed_once(name)
    parsed = override_parser().parse_overrides(list(overrides))
    if not all(changes_a_key(override, base) for override in parsed):
        return hydra_compose(name, *overrides)
    cfg = copy.deepcopy(base)
    for override in parsed:
        OmegaConf.update(cfg, override.key_or_group, override.value(), merge=True)
    return cfg


def validated_config(name: str, *overrides: str):
    """The experiment's schema object for configs/<name>.yaml with overrides (raises ConfigError)."""
    from gradlab.runner.config import validate
    from gradlab.runner.run import experiment_module

    return validate(compose_config(name, *overrides), experiment_module(name).Config)


def config_error(name: str, *overrides: str):
    """The ConfigError that configs/<name>.yaml with overrides raises; asserts it is one line saying what is allowed."""
    from gradlab.runner.config import ConfigError

    with pytest.raises(ConfigError) as err:
        validated_config(name, *overrides)
    assert "\n" not in str(err.value) and "not allowed" in str(err.value)
    return err.value


def assert_refused_over_budget(result, key: str) -> None:
    """`run_experiment(...)`'s result for a config too large for the machine: exit 2, one line naming `key` and
    the memory budget, and no JAX backend started (refused before any array exists)."""
    code, metrics, _ = result
    assert code == 2 and metrics["status"] == "failed" and "\n" not in metrics["error"]
    assert metrics["error"].startswith(f"config error: {key}=") and "memory budget" in metrics["error"]
    assert "backend" not in metrics["meta"]


def experiment_module(name: str):
    """gradlab.experiments.<name>: its schema, main and helpers."""
    from gradlab.runner.run import experiment_module as module

    return module(name)


def read_metrics(out_dir: Path) -> dict:
    return json.loads((Path(out_dir) / "metrics.json").read_text())


@pytest.fixture
def run_experiment(tmp_path):
    """run_experiment(name, *overrides, figures=False) -> (exit code, metrics dict, run dir), in this process.

    The PNGs are drawn only with figures=True (the numbers do not need them; plot_data.npz is always written).
    float64 is restored afterwards (a float32 run switches x64 off for the whole process).
    """
    from gradlab.runner.run import execute

    counter = iter(range(1_000))

    def _run(name: str, *overrides: str, figures: bool = False):
        out_dir = tmp_path / f"{name}-{next(counter)}"
        module = experiment_module(name)
        overrides = (f"figures={str(figures).lower()}", *overrides)
        try:
            code = execute(name, module.Config, module.main, compose_config(name, *overrides), out_dir)
        finally:
            jax.config.update("jax_enable_x64", True)
        metrics_path = out_dir / "metrics.json"
        return code, (read_metrics(out_dir) if metrics_path.exists() else None), out_dir

    return _run


@pytest.fixture
def hydra_in_process(monkeypatch, tmp_path):
    """Hydra apps run here: in tmp_path, Hydra's global state and the environment restored afterwards."""
    from hydra.core.global_hydra import GlobalHydra

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    yield
    GlobalHydra.instance().clear()


def run_cli(name: str, out_dir: Path, *overrides: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python experiments/<name>.py hydra.run.dir=<out_dir> <overrides>` from the repo root (forked from the CLI
    server: cli_processes.py)."""
    return cli_processes.run(
        [sys.executable, str(REPO / "experiments" / f"{name}.py"), f"hydra.run.dir={out_dir}", *overrides],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, env=CLI_ENV,
    )


@pytest.fixture
def cli(tmp_path):
    """cli(name, *overrides) -> (completed process, metrics dict or None), the CLI into a fresh tmp dir."""
    counter = iter(range(1_000))

    def _run(name: str, *overrides: str, timeout: float = 600):
        out_dir = tmp_path / f"{name}-{next(counter)}"
        proc = run_cli(name, out_dir, *overrides, timeout=timeout)
        metrics_path = out_dir / "metrics.json"
        return proc, (read_metrics(out_dir) if metrics_path.exists() else None)

    return _run


# Hydra's logging set-up (logging.config.dictConfig) would close pytest's own log handlers: left out in this process
QUIET_HYDRA = ("hydra/job_logging=none", "hydra/hydra_logging=none")


@pytest.fixture
def gradlab_here(hydra_in_process, capsys):
    """gradlab_here(*argv) -> (exit code, stdout, stderr): `gradlab <argv>` run in this process, in tmp_path.

    The same entry point as the console script without a process start: for what a command says and its exit code
    (the process itself, its signals and its isolation are tested through real processes in tests/e2e)."""
    from gradlab import cli as gradlab_cli

    def _run(*argv: str) -> tuple[int, str, str]:
        command, *rest = argv
        code = gradlab_cli.main([command, *(QUIET_HYDRA if command != "search" else ()), *rest])
        out, err = capsys.readouterr()
        return code, out, err

    return _run


# the session's main job: run id -> (overrides, what must be equal in-process: None = every result but meta,
# config and plots)
MAIN_JOB_TAGS = ("main-job", "it's 2")  # a quote inside: Hydra reads each tag back exactly
MAIN_JOB_RUNS: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    "softmax_jacobian": ((), None),
    "map_l2": (("offset_check.num_points=100", "sigma_sweep.num=9"), None),
    "receptive_field_problem4": ((), None),
    "linreg_hessian": (("surface_grid_points=21",), None),
    "logreg": (("grid.resolution=31", "train.steps=300"), None),
    "autodiff_modes": ((), None),
    "bench_logreg": (("backend=cpu", "sizes.small.steps=20", "sizes.small.slow_steps=2",
                      "sizes.large.n_per_class=500", "sizes.large.steps=3", "sizes.large.slow_steps=2",
                      "timing.repeats=1", "timing.probe_repeats=1",
                      "sweep.configs=4", "sweep.steps=10", "limits.dtypes=[float32]", "sharding.devices=1",
                      "optional.torch=false", "optional.sklearn=false", "timing_dtype=float32"),
                     ("sizes.small.agreement", "sizes.large.agreement", "sizes.small.gd_steps_to_tolerance")),
}


def once_per_session(name: str, tmp_path_factory, worker_id: str, make) -> tuple[Path, dict]:
    """(`<session folder>/<name>`, what `make(that folder)` returned): made once per session by whichever xdist
    worker asks first (the others wait on a file lock), then shared; `make` returns something JSON can hold."""
    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent  # the session's folder, above each worker's
    result = shared / f"{name}.json"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.exists():
            result.write_text(json.dumps(make(shared / name)))
    return shared / name, json.loads(result.read_text())


@pytest.fixture(scope="session")
def main_job(tmp_path_factory, worker_id) -> tuple[Path, dict]:
    """(its output dir, {returncode, stderr}): the main job as a user starts it (`python experiments/run_all.py`)
    on small configs, tagged MAIN_JOB_TAGS; run once per session and shared by the tests that need a finished main
    job or one of its runs (test_main_job.py and others)."""
    def run_main_job(out: Path) -> dict:
        per_run = ", ".join(f"{run_id}: [{', '.join(repr(o) for o in overrides)}]"
                            for run_id, (overrides, _) in MAIN_JOB_RUNS.items() if overrides)
        command = [sys.executable, str(REPO / "experiments" / "run_all.py"), f"hydra.run.dir={out}",
                   f"only=[{','.join(MAIN_JOB_RUNS)}]", f"overrides={{{per_run}}}",
                   f"tags=[{','.join(repr(tag) for tag in MAIN_JOB_TAGS)}]"]
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, env=CLI_ENV)
        return {"returncode": proc.returncode, "stderr": proc.stderr}

    return once_per_session("main_job", tmp_path_factory, worker_id, run_main_job)
