"""The run contract shared by every experiment.

An experiment is a module `gradlab.experiments.<name>` with a schema and a main:

    @dataclass
    class Config(BaseConfig):            # schema: types and allowed ranges; the values are in configs/<name>.yaml
        lr: float = positive()

    def main(cfg: Config, ctx: RunContext) -> dict:
        ...                              # call the library; ctx.keep(...) the arrays its figures draw
        return {"fit": {"loss": 0.12}}   # results, merged into metrics.json

and `experiments/<name>.py` calls `launch("<name>")`, which runs `configs/<name>.yaml` through Hydra (overrides,
`-m`, `hydra.run.dir=...` all work). `execute` does the rest, once for every experiment:

1. claim the run directory (dirs.py), validate the config (one-line `ConfigError`, exit code 2, before any JAX
   work: the schema, the experiment's `check_config(cfg)` if it has rules across keys) and check its
   `memory_estimate(cfg)` against the budget;
2. mark the run `running` in metrics.json (with host, pid and start time, so a reader can tell a crash);
3. run `main` in a child process (`isolate`), so that a job that dies (SIGKILL, the OOM killer, a native abort)
   is recorded `crashed` with its signal and a sweep goes on; Ctrl-C and SIGTERM end it `interrupted`;
4. write metrics.json atomically: `status` (ok, failed, interrupted, crashed), `experiment`, `meta` (versions,
   device, precision, seed, git commit, times), `config`, the results and `warnings`; then draw the figures
   from plot_data.npz; a figure that fails is recorded and fails the run without losing the numbers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import math
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from gradlab.runner import dirs, process, quiet, tracking
from gradlab.runner.config import ConfigError, checked, one_of, to_dict, validate
from gradlab.runner.meta import (
    COMPILE_CLOCK,
    REPO_ROOT,
    device_metadata,
    set_compile_cache,
    set_precision,
    static_metadata,
)
from gradlab.runner.plotting import figures_of, save_plot_data
from gradlab.runner.process import EXIT_SIGNAL, Interrupted
from gradlab.runner.records import (
    METRICS_FILE,
    PLOT_DATA_FILE,
    lookup,
    os_error_line,
    read_record,
    rewrite_in_place,
    write_json_atomic,
    write_text_atomic,
)
from gradlab.runner.tracking import TrackingConfig

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"  # package data: found installed or not
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
__all__ = ["REPO_ROOT", "CONFIG_DIR", "BaseConfig", "RunContext", "RunFailed", "execute", "launch"]


@dataclasses.dataclass
class BaseConfig:
    """Keys every experiment has (values in configs/base/run.yaml). Applied before any array is created."""

    precision: str = one_of("float64", "float32")
    scale: str = one_of("main", "full")  # configs/scale/: main-job sizes, or an experiment's long version
    compile_cache: str | None  # JAX's persistent compilation cache directory (per user); null disables it
    memory_budget_gb: float | None = checked(
        lambda x: x is None or (math.isfinite(x) and x > 0), "a number of GB > 0, or null (half the available memory)"
    )
    objective: str | None  # the metric (dotted path) a run returns to a Hydra sweeper, e.g. Optuna minimising it
    tracking: TrackingConfig  # TensorBoard event files (the `tracking` extra)
    cores: int | None = checked(lambda x: x is None or x >= 1, "a number of cores >= 1, or null (all it may use)")
    figures: bool  # draw the PNGs; false keeps plot_data.npz only (`gradlab replot DIR` draws them later)
    tags: list[str] = checked(lambda tags: all(tag.strip() and "," not in tag and "\n" not in tag for tag in tags),
                              "a list of words to find the run by (`gradlab runs --tag`): not empty, no ',' or newline")


class RunFailed(RuntimeError):
    """Raised by an experiment for a result it must not report (NaN in training, overflow, ...).

    `results` (optional) is what the run did obtain; it goes into the failed run's metrics.json.
    """

    def __init__(self, message: str, results: dict | None = None):
        super().__init__(message)
        self.results = results or {}


@dataclasses.dataclass
class RunContext:
    """Where an experiment writes: the arrays behind its figures (`keep`), partial results, text files."""

    out_dir: Path
    log: logging.Logger
    plot_data: dict[str, Any] = dataclasses.field(default_factory=dict)
    curves: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    partial: dict[str, Any] = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)
    files: dict[str, Callable[[Path], Any]] = dataclasses.field(default_factory=dict)  # written after the record
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)  # set on SIGINT/SIGTERM
    cooperative: bool = False  # main watches `stop` and wraps up (run_all): the run layer waits for it

    def path(self, name: str) -> Path:
        return self.out_dir / name

    def keep(self, **arrays: Any) -> None:
        """Keep arrays for the figures: saved to plot_data.npz, drawn by `gradlab.figures.<experiment>`."""
        self.plot_data.update({key: np.asarray(value) for key, value in arrays.items()})

    def save_later(self, name: str, write: Callable[[Path], Any]) -> None:
        """A large file of the run (a data-sized CSV, a table over a grid): `write(path)` is called after the
        numbers are in metrics.json, so a write that fails (a full disk, `ulimit -f`) costs no number. `write` is
        given a path to write to through `records.atomic_open` or `write_text_atomic`."""
        self.files[name] = write

    def curve(self, tag: str, values: Any) -> None:
        """A per-step scalar series (`train/loss`): written to TensorBoard when tracking is on."""
        self.curves[tag] = np.asarray(values)

    def warn(self, message: str) -> None:
        """A result the user must know about (no convergence, an estimate that does not exist): log + metrics."""
        self.log.warning(message)
        self.warnings.append(message)

    def save_text(self, name: str, text: str) -> Path:
        """Write a text file into the run dir, through a temporary file (never a truncated one)."""
        return write_text_atomic(self.path(name), text)


Main = Callable[[Any, RunContext], dict]


# --------------------------------------------------------------------------------------------------------
# Checks before any array exists


def memory_budget_bytes(budget_gb: float | None) -> float:
    """The configured budget, or half of the memory available now (MemAvailable; all of RAM if unknown)."""
    if budget_gb is not None:
        return budget_gb * 2**30
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / 2
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2


def check_memory(module: ModuleType, cfg: Any) -> None:
    """Refuse a config whose estimated memory (the experiment's `memory_estimate(cfg)`) exceeds the budget.

    `memory_estimate` returns {config key(s): bytes} for the arrays those keys size; the error names the keys
    that account for most of the total.
    """
    estimate = getattr(module, "memory_estimate", None)
    if estimate is None:
        return
    parts = {key: float(nbytes) for key, nbytes in estimate(cfg).items()}
    total, budget = sum(parts.values()), memory_budget_bytes(cfg.memory_budget_gb)
    if total > budget:
        keys = [k for k, v in sorted(parts.items(), key=lambda kv: -kv[1]) if v >= 0.1 * total]
        values = [_shortened(lookup(to_dict(cfg), k)) for k in keys]
        raise ConfigError(", ".join(keys), values[0] if len(values) == 1 else values, "a config within the memory "
                          f"budget: it needs about "
                          f"{_gib(total)}, the budget is {_gib(budget)} (memory_budget_gb)")


def _shortened(value: Any, width: int = 60) -> Any:
    """A long list quoted in an error: its first items and how many there are."""
    text = repr(value)
    if not isinstance(value, list | tuple) or len(text) <= width:
        return value
    return f"{text[:width - 20]}... ({len(value)} items)"


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.3g} GiB"


def _non_finite(value: Any, where: str = "") -> str | None:
    """The dotted path of the first NaN or infinite float in a result tree, or None."""
    if isinstance(value, dict):
        for key, item in value.items():
            found = _non_finite(item, f"{where}.{key}" if where else str(key))
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _non_finite(item, f"{where}.{index}")
            if found:
                return found
    elif hasattr(value, "dtype") and np.issubdtype(np.asarray(value).dtype, np.floating):
        array = np.asarray(value)
        if not np.all(np.isfinite(array)):
            return f"{where} = {array.ravel()[~np.isfinite(array.ravel())][0]}"
    elif isinstance(value, float) and not math.isfinite(value):
        return f"{where} = {value}"
    return None


# --------------------------------------------------------------------------------------------------------
# Executing one run


class _Record:
    """The run's metrics.json as it grows: running, then ok / failed / interrupted / crashed."""

    def __init__(self, name: str, out_dir: Path, meta: dict):
        self.name, self.path, self.meta = name, out_dir / METRICS_FILE, meta
        self.started = time.perf_counter()
        self.compile_before = COMPILE_CLOCK.seconds

    def write(self, status: str, error: str | None = None, results: dict | None = None, **extra: Any) -> None:
        self.meta["wall_time_s"] = time.perf_counter() - self.started
        self.meta["compile_time_s"] = COMPILE_CLOCK.seconds - self.compile_before
        record = {"status": status, "experiment": self.name, **({"error": error} if error else {}), **extra,
                  "meta": self.meta, **(results or {})}
        try:
            try:
                write_json_atomic(self.path, record)
            except PermissionError:  # the folder is read-only now: the record itself may still be writable
                if not self.path.is_file():
                    raise
                rewrite_in_place(self.path, record)
        except OSError as err:
            message = f"cannot write {METRICS_FILE}: {os_error_line(err, with_name=False)}"
            # the record without the results may still fit: a true status and why, rather than `crashed`
            with contextlib.suppress(OSError):
                write_json_atomic(self.path, {"status": "failed", "experiment": self.name,
                                              "error": f"{message} (the results did not fit)", "meta": self.meta})
            print(f"gradlab: {self.name} failed: {message} ({self.path})", file=sys.stderr)
            raise SystemExit(EXIT_FAILED) from None


def _log_to_file(logger: logging.Logger, message: str) -> None:
    """Record a message in the run's log file only (the console gets it once, on stderr)."""
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def execute(name: str, schema: type, main: Main, raw_cfg: DictConfig | dict, out_dir: Path, *,
            module: ModuleType | None = None, isolate: bool = False) -> int:
    """Claim `out_dir`, validate, run and record one experiment; return the process exit code.

    With `isolate`, `main` runs in a forked child process and this process records how the child ended.
    """
    out_dir = Path(out_dir)
    log = logging.getLogger(name)
    try:
        dirs.claim(out_dir, allowed=(".hydra", f"{name}.log"))
    except dirs.DirectoryTaken as err:
        print(dirs.refusal(str(err)), file=sys.stderr)
        return EXIT_CONFIG
    raw = OmegaConf.to_container(raw_cfg, resolve=True) if isinstance(raw_cfg, DictConfig) else raw_cfg
    record = _Record(name, out_dir, static_metadata(raw))

    def config_failure(err: ConfigError, results: dict | None = None) -> int:
        print(f"gradlab: {err}", file=sys.stderr)
        _log_to_file(log, str(err))
        record.write("failed", str(err), results)
        return EXIT_CONFIG

    module = module or sys.modules.get(main.__module__)
    try:
        cfg = validate(raw, schema)
        if hasattr(module, "check_config"):  # rules across keys, e.g. run ids that must exist in `runs`
            module.check_config(cfg)
        check_memory(module, cfg)
    except ConfigError as err:
        return config_failure(err)
    if process.SWEEP_STOP.is_set():
        reason = f"not run: the sweep was interrupted ({process.SWEEP_STOP.reason})"
        record.write("interrupted", reason, {"config": to_dict(cfg)})
        return EXIT_SIGNAL.get(process.SWEEP_STOP.signum, EXIT_FAILED)
    record.write("running", results={"config": to_dict(cfg)})
    if isolate:
        return process.supervise(record, lambda: _run(record, cfg, main, RunContext(out_dir, log), config_failure))
    return _run(record, cfg, main, RunContext(out_dir, log), config_failure)


class ArtifactNotWritten(RuntimeError):
    """A file of the run (plot_data.npz, a figure, TensorBoard's events) could not be written: a full disk,
    `ulimit -f`, a read-only folder. A runtime failure (exit 1), never bad input; the numbers are already kept."""


def _artifact(name: str, write: Callable[[], Any]) -> Any:
    """`write()`, with an OSError turned into one line naming the file: `cannot write plot_data.npz: [Errno 27]
    File too large`."""
    try:
        return write()
    except OSError as err:
        raise ArtifactNotWritten(f"cannot write {name}: {os_error_line(err, with_name=False)}") from None


def _tensorboard(out_dir: Path, write: Callable[[Path], Any]) -> None:
    """TensorBoard's event file, written in a hidden folder of the run dir and then moved in: a write that fails
    leaves no truncated event file behind."""
    staging = out_dir / ".tensorboard.tmp"
    try:
        staging.mkdir(exist_ok=True)
        write(staging)
        for event_file in staging.iterdir():
            os.replace(event_file, out_dir / event_file.name)
    finally:
        if staging.is_dir():
            for left in staging.iterdir():
                left.unlink(missing_ok=True)
            staging.rmdir()


def _run(record: _Record, cfg: Any, main: Main, ctx: RunContext, config_failure: Callable) -> int:
    """Run `main`, record the result, draw the figures; every way out leaves a final status.

    The numbers first: metrics.json (a few KB) is written before any large file (plot_data.npz, figures,
    TensorBoard), each of which goes through a temporary file and a rename, so that a write that fails (a full disk,
    `ulimit -f`, a read-only folder) costs no number and leaves no truncated file; it fails the run (exit 1).
    """
    name = record.name
    results: dict[str, Any] = {"config": to_dict(cfg)}

    def so_far() -> dict:
        return {**ctx.partial, **results, "warnings": ctx.warnings}

    def keep_arrays(status: str, error: str, extra: dict) -> None:
        """After the record of a run that did not end ok: its arrays too, if they can be written."""
        if not ctx.plot_data:
            return
        try:
            _artifact(PLOT_DATA_FILE, lambda: save_plot_data(ctx.path(PLOT_DATA_FILE), ctx.plot_data))
        except ArtifactNotWritten as err:
            record.write(status, f"{error}; {err}", so_far(), **extra)

    with process.signals_interrupt(), contextlib.ExitStack() as machine:
        try:
            machine.enter_context(quiet.computing())  # in the main job: its cores, shared (runner/quiet.py)
            record.meta["cores"] = machine.enter_context(process.on_cores(cfg.cores))  # before XLA's thread pools
            record.meta["worker_pid"] = os.getpid()  # the process computing (a child of `pid` when isolated)
            record.write("running", results=results)
            process.note_computing_here()
            set_precision(cfg.precision)
            record.meta["compile_cache"] = set_compile_cache(cfg.compile_cache)
            COMPILE_CLOCK.install()
            record.meta.update(device_metadata())
            results.update(process.in_worker_thread(main, cfg, ctx))
            bad = _non_finite(results)
            if bad:
                raise RunFailed(f"non-finite result: {bad}")
            # the numbers first, then the large files: a file that cannot be written never costs the results
            record.write("running", results=so_far(), phase="artifacts")
            not_written: list[str] = []  # each file is tried: one that does not fit costs no other

            def attempt(file_name: str, write: Callable[[], Any]) -> None:
                try:
                    _artifact(file_name, write)
                except ArtifactNotWritten as err:
                    not_written.append(str(err))

            if ctx.plot_data:
                attempt(PLOT_DATA_FILE, lambda: save_plot_data(ctx.path(PLOT_DATA_FILE), ctx.plot_data))
            for file_name, write in ctx.files.items():
                attempt(file_name, lambda write=write, file_name=file_name: write(ctx.path(file_name)))
            plots, plot_errors = {}, {}
            if cfg.figures:
                plots, plot_errors = figures_of(name).draw_all(ctx.plot_data, OmegaConf.create(results["config"]),
                                                               ctx.out_dir)
            if cfg.tracking.tensorboard:
                attempt("the TensorBoard event file", lambda: _tensorboard(ctx.out_dir, lambda folder: tracking.write(
                    folder, results["config"], results, ctx.curves, experiment=name,
                    status="failed" if plot_errors or not_written else "ok")))
            process.raise_if_interrupted()
            if plot_errors or not_written:  # inside the try: a signal while the final record is written is recorded
                message = "; ".join(not_written + (["figures not drawn: " + "; ".join(
                    f"{k}: {v}" for k, v in plot_errors.items())] if plot_errors else []))
                print(f"gradlab: {name} failed: {message}", file=sys.stderr)
                record.write("failed", message, {**so_far(), "plots": plots, "plot_errors": plot_errors})
                return EXIT_FAILED
            record.write("ok", None, {**so_far(), "plots": plots})
        except Interrupted as err:
            print(f"gradlab: {name} interrupted by {err}; partial results in {record.path}", file=sys.stderr)
            record.write("interrupted", f"interrupted by {err}", so_far(), signal=str(err))
            keep_arrays("interrupted", f"interrupted by {err}", {"signal": str(err)})
            return EXIT_SIGNAL[err.signum]
        except ConfigError as err:  # bad input found while running (a data file, a value out of range)
            code = config_failure(err, so_far())
            keep_arrays("failed", str(err), {})
            return code
        except Exception as err:  # noqa: BLE001 - every failure is recorded, then reported once
            if isinstance(err, OSError):  # a file the experiment wrote itself (data.csv, a table)
                err = ArtifactNotWritten(f"cannot write {'' if err.filename else 'a file: '}{os_error_line(err)}")
            known = isinstance(err, RunFailed | ArtifactNotWritten)
            message = str(err) if known else f"{type(err).__name__}: {err}"
            print(f"gradlab: {name} failed: {message.splitlines()[0] if message else ''}", file=sys.stderr)
            if not known:
                _log_to_file(ctx.log, traceback.format_exc())
            record.write("failed", message, {**so_far(), **(err.results if isinstance(err, RunFailed) else {})})
            if not isinstance(err, ArtifactNotWritten):
                keep_arrays("failed", message, {})
            return EXIT_FAILED
    ctx.log.info("%s finished: %s", name, record.path)
    return EXIT_OK


# --------------------------------------------------------------------------------------------------------
# The Hydra entry point


_exit_codes: list[int] = []


def record_exit_code(code: int) -> None:
    """Remember a run's outcome; `launch` exits with the worst one (a failed sweep job makes it non-zero)."""
    _exit_codes.append(code)


def exit_code() -> int:
    """The process exit code for all runs so far: an interruption (130/143) first, then the worst."""
    signalled = [c for c in _exit_codes if c in EXIT_SIGNAL.values()]
    return signalled[0] if signalled else max(_exit_codes, default=EXIT_OK)


def objective_value(out_dir: Path, objective: str | None) -> float | None:
    """The run's `objective` metric for a Hydra sweeper; None for a run that failed (a sweeper records a failed
    trial and goes on; Optuna refuses NaN)."""
    if objective is None:
        return None
    record = read_record(out_dir) or {}
    value = lookup(record, objective) if record.get("status") == "ok" else None
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if number else None


def experiment_module(name: str) -> ModuleType:
    """The experiment `gradlab.experiments.<name>`: its schema `Config` and its `main(cfg, ctx)`."""
    return importlib.import_module(f"gradlab.experiments.{name}")


def launch(name: str) -> None:
    """Run the experiment `name` as the Hydra app `configs/<name>.yaml`; exit non-zero if any run failed.

    The task function names the experiment module by its import path, so process-based launchers (joblib,
    submitit) import it by reference in their workers. Hydra's own errors (an unknown key, a bad override)
    become one line and exit code 2; any other error one line saying what it is, exit code 1 (`report_error`).
    """
    import hydra
    from hydra.core.hydra_config import HydraConfig

    @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=name)
    def app(cfg: DictConfig) -> float | None:
        quiet_jax_logging()
        experiment = experiment_module(name)
        out_dir = Path(HydraConfig.get().runtime.output_dir)
        code = execute(name, experiment.Config, experiment.main, cfg, out_dir, module=experiment, isolate=True)
        record_exit_code(code)
        return objective_value(out_dir, cfg.get("objective"))

    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"  # the user's: the traceback too
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises; we print one line
    _exit_codes.clear()  # this launch's runs only (the command line may call launch again in one process)
    process.SWEEP_STOP.signum = None
    try:
        app()
    except Exception as err:  # noqa: BLE001 - reported once: a config error (exit 2) or what it is (exit 1)
        from gradlab.runner.sweep_summary import sweep_error  # a sweep ended early: its summary first

        sys.exit(sweep_error(err, full_error) or report_error(err, name, full_error))
    sys.exit(exit_code())


def quiet_jax_logging() -> None:
    """JAX's INFO records (its backend search: "Unable to initialize backend 'tpu'") stay out of a run's log; its
    warnings stay in."""
    logging.getLogger("jax").setLevel(logging.WARNING)


def is_config_error(err: BaseException) -> bool:
    """Bad input: a ConfigError, Hydra's override and composition errors (an unknown key, a missing config),
    OmegaConf's (a wrong type, an interpolation that does not resolve)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return isinstance(err, ConfigError | HydraException | OmegaConfBaseException)


def report_error(err: BaseException, name: str, full_error: bool = False) -> int:
    """Print one line for an error that ended a command, the traceback first with `full_error`; the exit code:
    `gradlab: config error: ...` and 2 for bad input, `gradlab: error: <Type>: <message>` and 1 for anything else."""
    if full_error:
        traceback.print_exception(err, file=sys.stderr)
    if isinstance(err, ConfigError):
        line, code = str(err), EXIT_CONFIG
    elif is_config_error(err):
        line, code = hydra_error_line(err, name), EXIT_CONFIG
    else:
        first = next((text for text in str(err).splitlines() if text.strip()), "")
        line, code = f"error: {type(err).__name__}" + (f": {first}" if first else ""), EXIT_FAILED
    print(f"gradlab: {line}" + ("" if full_error or code == EXIT_CONFIG else
                                " (HYDRA_FULL_ERROR=1 for the traceback)"), file=sys.stderr)
    return code


def hydra_error_line(err: Exception, name: str) -> str:
    """One line for a Hydra error: the key and value the user typed and what is allowed."""
    import re

    text = str(err)
    override = re.search(r"Could not override '([^']+)'", text)
    if override:
        key = override.group(1)
        typed = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.split("=", 1)[0] == key), "?")
        return (f"config error: {key}={typed!r} is not allowed: not a key of configs/{name}.yaml "
                f"(to add a new key, write +{key}={typed})")
    first = next((line for line in text.splitlines() if line.strip()), type(err).__name__)
    cause = str(err.__cause__).splitlines()[0] if err.__cause__ else ""
    hint = (" (an expression? quote it for Hydra: \"graph.nodes.f5='cos(f3)'\")"
            if "Unknown function" in text + cause else "")
    unquoted = next((a for a in sys.argv[1:] if "=" in a and not a.isascii() and "'" not in a and '"' not in a), None)
    if "LexerNoViableAlt" in text + cause and unquoted:  # Hydra's grammar reads unquoted values in ASCII only
        key, value = unquoted.split("=", 1)
        hint = f" (a value with non-ASCII characters must be quoted for Hydra: \"{key}='{value}'\")"
    return f"config error: {first}" + (f" ({cause})" if cause and cause not in first else "") + hint
