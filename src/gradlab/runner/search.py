"""`gradlab search <experiment>`: an Optuna study whose trials are runs of the experiment.

    gradlab search logreg                                      # the search of configs/hpo/logreg_optuna.yaml
    gradlab search logreg search.n_trials=10 train.steps=200   # search.KEY: the search's keys; the rest: logreg's
    optuna-dashboard sqlite:///outputs/logreg/search/logreg_lr_momentum/study.db

Optuna's ask/tell: ask for a trial, draw its parameters from the search config's space (search_space.py), compose
the experiment's config with them (Hydra's compose API), run it through the run layer (`execute`, in its own
process, into <dir>/<trial number>, with .hydra/overrides.yaml so `gradlab rerun` works), and tell Optuna the run's
`objective`, or FAIL for a run that did not end ok (NaN in training, a crash); the search goes on.

`n_trials` counts the trials that ran to an end, complete or failed. A search opens its study with
`load_if_exists`, so the same command resumes a killed one from its database: trials still RUNNING there (the
process died) are marked FAIL and run again as new trials. Ctrl-C or SIGTERM stops the search: the running trial
is recorded interrupted (FAIL in the study), the summary is written, exit 130 / 143. The summary (every time):
<dir>/summary.csv (every trial: state, value, run status, parameters, metrics, error), summary.png and best.yaml.
One search at a time per directory (a lock), so a RUNNING trial found at the start is one whose process is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
import os
import re
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gradlab.runner import process
from gradlab.runner.config import ConfigError, validate
from gradlab.runner.process import EXIT_SIGNAL
from gradlab.runner.records import read_record, status_of
from gradlab.runner.run import (
    CONFIG_DIR,
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    execute,
    experiment_module,
    objective_value,
    quiet_jax_logging,
    report_error,
)
from gradlab.runner.runs import RunError
from gradlab.runner.search_space import (
    Param,
    SearchConfig,
    as_override,
    bounds,
    parse_params,
    parse_search,
    split_arguments,
    suggest,
)
from gradlab.runner.sweep_summary import BEST_YAML, SUMMARY_CSV, SUMMARY_PNG, write_search_summary

LOCK_FILE = ".search.lock"
CUT_SHORT = "interrupted"  # the run status of a trial a signal stopped: FAIL in the study, not counted


def search(experiment: str, arguments: Sequence[str]) -> int:
    """Run (or resume) the search; the exit code. Errors: one line, exit 2 for bad input, 1 for anything else."""
    from hydra import initialize_config_dir

    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    if importlib.util.find_spec("optuna") is None:
        print("gradlab: error: gradlab search needs Optuna, the `hpo` extra: pip install -e '.[hpo]'", file=sys.stderr)
        return EXIT_FAILED
    try:
        with _stop_on_signals(), initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return _search(experiment, list(arguments))
    except RunError as err:
        print(f"gradlab: error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except Exception as err:  # noqa: BLE001 - reported once, classified
        return report_error(err, experiment, full_error)


def _search(experiment: str, arguments: list[str]) -> int:
    import optuna
    from hydra import compose
    from optuna.trial import TrialState

    name, search_overrides, run_overrides = split_arguments(experiment, arguments)
    spec = _load_search(name, search_overrides)
    base = compose(config_name=experiment, overrides=[*spec.overrides, *run_overrides], return_hydra_config=True)
    objective = base.get("objective")
    if not objective:
        raise ConfigError("objective", objective, "the metric the search optimises, e.g. objective=fit.loss")
    params = parse_params(spec.params, base, experiment)
    module = experiment_module(experiment)  # JAX's import: after the checks that need none
    _check_bounds(experiment, module, base, params, spec.params)
    summary_metrics = OmegaConf.select(base, "hydra.callbacks.sweep_summary.metrics", default=None) or []
    metrics = list(dict.fromkeys([objective, *summary_metrics]))
    root = Path(spec.dir)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours
    with _only_search_in(root), _logging():
        study = _open_study(spec, root)
        stale = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
        for number in stale:
            study.tell(number, state=TrialState.FAIL)
        done = len(_counted(study))
        what = f"{spec.n_trials} trials of {experiment}, {spec.direction} {objective} over " + ", ".join(
            p.key for p in params)
        print(f"search {spec.study_name}: {what}; study in {spec.storage or 'memory'}; runs in {root}/<trial>"
              + (f"; resuming: {done} trials done" if study.trials else ""))
        if stale:
            print(f"  trial(s) {', '.join(map(str, stale))} were running when the search stopped: marked FAIL "
                  "(they run again as new trials)")
        while len(_counted(study)) < spec.n_trials and not process.SWEEP_STOP.is_set():
            trial = study.ask()
            values = {p.key: suggest(trial, p) for p in params}
            trial_dir = root / str(trial.number)
            overrides = [*spec.overrides, *run_overrides, *(as_override(k, v) for k, v in values.items())]
            try:
                _run_trial(experiment, module, overrides, trial_dir)
            except Exception:  # not the run's failure (the run layer records those): ours, e.g. a full disk
                study.tell(trial, state=TrialState.FAIL)
                write_summary(study, root, metrics, params)
                raise
            status, value, record = _tell(study, trial, trial_dir, objective)
            shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
            print(f"trial {trial.number}: {shown} -> " + (f"{objective} = {value:.4g}" if value is not None else
                                                          f"FAIL ({status}: {record.get('error', 'no record')})"),
                  flush=True)
            if status == "ok" and value is None:
                write_summary(study, root, metrics, params)
                raise ConfigError("objective", objective, f"a number in the run's metrics.json ({trial_dir})")
        return _finish(study, spec, root, metrics, params)


def _tell(study: Any, trial: Any, trial_dir: Path, objective: str) -> tuple[str, float | None, dict]:
    """Tell Optuna how the trial's run ended: its objective, or FAIL; (run status, value, run record)."""
    from optuna.trial import TrialState

    record = read_record(trial_dir) or {}
    status, value = status_of(record or None), objective_value(trial_dir, objective)
    trial.set_user_attr("status", status)  # what counts towards n_trials (_counted); shown by optuna-dashboard
    trial.set_user_attr("dir", str(trial_dir))
    if record.get("error"):
        trial.set_user_attr("error", str(record["error"]))
    if value is None:
        study.tell(trial, state=TrialState.FAIL)
    else:
        study.tell(trial, value)
    return status, value, record


def _load_search(name: str, overrides: list[str]) -> SearchConfig:
    """configs/hpo/<name>.yaml with `search.KEY=VALUE` overrides, composed and checked."""
    from hydra import compose
    from hydra.errors import HydraException

    if not (CONFIG_DIR / "hpo" / f"{name}.yaml").is_file():
        there = ", ".join(sorted(p.stem for p in (CONFIG_DIR / "hpo").glob("*.yaml")))
        raise ConfigError("search", name, f"the name of a search config in configs/hpo/ ({there})")
    # search.params={...} replaces the searched space (Hydra would merge it into the file's, refusing new keys)
    replaced = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == "params"]
    overrides = [o for o in overrides if o.split("=", 1)[0] != "params"]
    try:
        raw = compose(config_name=f"hpo/{name}", overrides=overrides)
    except HydraException as err:
        unknown = re.search(r"Could not override '([^']+)'", str(err))
        if not unknown:
            raise
        typed = next((o.split("=", 1)[-1] for o in overrides if o.split("=", 1)[0] == unknown.group(1)), "?")
        raise ConfigError(f"search.{unknown.group(1)}", typed, f"not a key of configs/hpo/{name}.yaml") from None
    values = OmegaConf.to_container(raw, resolve=True)
    for text in replaced:
        try:
            values["params"] = OmegaConf.to_container(OmegaConf.create(text))
        except (OmegaConfBaseException, ValueError):
            values["params"] = None
        if not isinstance(values["params"], dict):
            raise ConfigError("search.params", text, "a mapping {key: {low: L, high: H}, ...}")
    return parse_search(values)


def _check_bounds(experiment: str, module: Any, base: Any, params: list[Param], specs: dict) -> None:
    """The experiment's composed config, then with each parameter at its edges (or each choice), through the
    experiment's schema: a config or a range it refuses fails now, not in every trial."""
    config = OmegaConf.masked_copy(base, [key for key in base if key != "hydra"])
    validate(config, module.Config)
    for param in params:
        for value in bounds(param):
            edge = config.copy()
            OmegaConf.update(edge, param.key, value, merge=False)
            try:
                validate(edge, module.Config)
            except ConfigError as err:
                raise ConfigError(f"search.params.{param.key}", specs[param.key],
                                  f"a range {experiment} accepts ({err.key}={err.value!r} is not: {err.allowed})"
                                  ) from None


def _open_study(spec: SearchConfig, root: Path) -> Any:
    """The study, created or loaded (`load_if_exists`), with the seeded TPE sampler; its directory checked."""
    import optuna

    if spec.storage and spec.storage.startswith("sqlite:///"):
        Path(spec.storage[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    def create(sampler: Any = None) -> Any:
        return optuna.create_study(study_name=spec.study_name, storage=spec.storage, direction=spec.direction,
                                   sampler=sampler, load_if_exists=True)

    # seeded by the trials already there: a resumed study does not draw its first trials again
    study = create(optuna.samplers.TPESampler(seed=(spec.seed + len(create().get_trials(deepcopy=False))) % 2**32))
    if study.direction.name.lower() != spec.direction:
        raise ConfigError("search.direction", spec.direction, f"the stored study's ({study.direction.name.lower()})")
    known = {t.number for t in study.get_trials(deepcopy=False)}
    strangers = sorted(int(p.name) for p in root.iterdir() if p.name.isdigit() and int(p.name) not in known)
    if strangers:
        raise ConfigError("search.dir", str(root), f"a directory of this study only: it holds runs of trials "
                          f"{strangers[:5]} that study {spec.study_name} in {spec.storage or 'memory'} does not know "
                          "(pick a new search.dir or search.study_name)")
    return study


def _counted(study: Any) -> list:
    """The trials that count towards n_trials: complete, or failed after running to an end."""
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE or (
        t.state == TrialState.FAIL and t.user_attrs.get("status") not in (None, CUT_SHORT))]


def _run_trial(experiment: str, module: Any, overrides: list[str], trial_dir: Path) -> int:
    """One run of the experiment into trial_dir, as Hydra would start it (.hydra/ holds its config and overrides)."""
    from hydra import compose

    cfg = compose(config_name=experiment, overrides=overrides)
    hydra_dir = trial_dir / ".hydra"
    hydra_dir.mkdir(parents=True)
    OmegaConf.save(cfg, hydra_dir / "config.yaml")
    (hydra_dir / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (hydra_dir / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"cwd": os.getcwd()},
                                                                    "job": {"config_name": experiment}}}))
    with _log_file(trial_dir / f"{experiment}.log"):
        return execute(experiment, module.Config, module.main, cfg, trial_dir, module=module, isolate=True)


def write_summary(study: Any, root: Path, metrics: list[str], params: list[Param]) -> dict | None:
    """summary.csv, summary.png and best.yaml of the study (sweep_summary.write_search_summary); the best."""
    return write_search_summary(study.get_trials(deepcopy=False), root, metrics, [p.key for p in params],
                                study=study.study_name, maximize=study.direction.name == "MAXIMIZE")


def _finish(study: Any, spec: SearchConfig, root: Path, metrics: list[str], params: list[Param]) -> int:
    """Write the summary and say how the search ended; the exit code."""
    best = write_summary(study, root, metrics, params)
    counted = _counted(study)
    complete = sum(t.state.name == "COMPLETE" for t in counted)
    tally = f"{len(counted)} of {spec.n_trials} trials done ({complete} complete, {len(counted) - complete} failed)"
    found = ("no trial completed" if best is None else f"best {metrics[0]} = {best['value']:.6g} at trial "
             f"{best['trial']}: " + ", ".join(f"{k}={v!r}" for k, v in best["params"].items()))
    signum = process.SWEEP_STOP.signum
    if signum is not None:
        again = "the same command resumes it" if spec.storage else "its study was in memory: it cannot be resumed"
        print(f"search {spec.study_name} interrupted by {signal.Signals(signum).name}: {tally}; {found}; {again}")
    else:
        print(f"search {spec.study_name} ended: {tally}; {found}")
    written = [name for name in (SUMMARY_PNG, BEST_YAML) if (root / name).exists()]
    print(f"summary: {root / SUMMARY_CSV}, {', '.join(written)}"
          + (f"; dashboard: optuna-dashboard {spec.storage}" if spec.storage else ""))
    if signum is not None:
        return EXIT_SIGNAL[signum]
    return EXIT_OK if best is not None else EXIT_FAILED


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGINT/SIGTERM between trials stop the search after the current step (during a trial, the run layer
    passes them on to the run and sets the same flag); no exception in the middle of a database write."""
    process.SWEEP_STOP.signum = None
    previous = {s: signal.signal(s, lambda signum, frame: process.SWEEP_STOP.set(signum)) for s in EXIT_SIGNAL}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def _only_search_in(root: Path) -> Iterator[None]:
    """A lock on root (POSIX: released when this process dies, not held by the runs it forks)."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RunError(root, "another gradlab search is running in this directory") from None
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _logging() -> Iterator[None]:
    """Warnings on stderr; each trial's INFO log in its own file (as Hydra sets up for a run)."""
    root_logger, console = logging.getLogger(), logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    level = root_logger.level
    root_logger.addHandler(console)
    root_logger.setLevel(logging.INFO)
    quiet_jax_logging()
    try:
        yield
    finally:
        root_logger.removeHandler(console)
        root_logger.setLevel(level)


@contextlib.contextmanager
def _log_file(path: Path) -> Iterator[None]:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()

