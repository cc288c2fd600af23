"""The run contract shared by every experiment.

An experiment is a thin Hydra app:

    @dataclass
    class MyConfig(BaseConfig):          # schema: types, defaults and allowed ranges
        lr: float = positive(0.1)

    def main(cfg: MyConfig, ctx: RunContext) -> dict:
        ...                              # call the library, save plots with ctx.save_figure
        return {"fit": {"loss": 0.12}}   # results, merged into metrics.json

    if __name__ == "__main__":
        launch(__file__, MyConfig, main)

`launch` runs `configs/<name>.yaml` through Hydra (overrides, `-m`, `hydra.run.dir=...` all work), then
`execute` does the rest, once for every experiment:

1. validate the config against the schema (one-line `ConfigError`, exit code 2, before any JAX work);
2. set the precision (`jax_enable_x64`) before any array exists;
3. mark the run `running` in metrics.json, call `main`, time it (wall and XLA compile time);
4. write metrics.json atomically: `status` ("ok" or "failed" with `error`), `experiment`, `meta`
   (versions, device, precision, seed, git commit, times) and the results; exit code 1 on failure.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata
import importlib
import json
import logging
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from omegaconf import DictConfig, OmegaConf

import numpy as np

from gradlab.runner.config import ConfigError, one_of, to_dict, validate
from gradlab.runner.plotting import figures_of, save_plot_data
from gradlab.runner.records import METRICS_FILE, PLOT_DATA_FILE

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
REPO_ROOT = Path(__file__).resolve().parents[3]
CONFIG_DIR = REPO_ROOT / "configs"


@dataclasses.dataclass
class BaseConfig:
    """Keys every experiment has. `precision` is applied before any array is created."""

    precision: str = one_of("float64", "float32")


class RunFailed(RuntimeError):
    """Raised by an experiment for a result it must not report (NaN in training, overflow, ...).

    `results` (optional) is what the run did obtain; it goes into the failed run's metrics.json.
    """

    def __init__(self, message: str, results: dict | None = None):
        super().__init__(message)
        self.results = results or {}


# --------------------------------------------------------------------------------------------------------
# Output directories: unique per run, never reused


def unique_dir(base: str) -> str:
    """Create and return `base`, or `base-1`, `base-2`, ... if taken: two runs never share a directory.

    `os.makedirs(exist_ok=False)` is atomic, so two processes started in the same second get two dirs.
    Registered as the OmegaConf resolver `gradlab_unique_dir` (cached, so Hydra resolves it once per run
    and its sweep jobs, which copy the cache, see the same sweep directory).
    """
    parent = Path(base).parent
    parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(10_000):
        candidate = base if attempt == 0 else f"{base}-{attempt}"
        try:
            os.mkdir(candidate)
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a fresh directory next to {base}")


if not OmegaConf.has_resolver("gradlab_unique_dir"):
    OmegaConf.register_new_resolver("gradlab_unique_dir", unique_dir, use_cache=True)


def _refuse_finished(directory: Path) -> None:
    """Exit (code 2, one line) rather than write into a directory that holds a finished run."""
    finished = sorted(directory.glob(f"**/{METRICS_FILE}")) if directory.is_dir() else []
    if finished:
        print(
            f"gradlab: error: hydra output dir {str(directory)!r} already holds a run ({finished[0]}); "
            "pick a new directory, earlier outputs are never overwritten",
            file=sys.stderr,
        )
        sys.exit(EXIT_CONFIG)


try:  # the callback is configured in configs/base/run.yaml
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover
    Callback = object  # type: ignore[assignment,misc]


class GuardExistingRun(Callback):
    """Hydra callback: refuse to start in an output directory that already holds a run."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _refuse_finished(Path(str(OmegaConf.select(config, "hydra.run.dir"))))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _refuse_finished(Path(str(OmegaConf.select(config, "hydra.sweep.dir"))))


# --------------------------------------------------------------------------------------------------------
# Metrics: JSON-ready values, written atomically


def to_jsonable(value: Any) -> Any:
    """Arrays to lists, numpy/JAX scalars to Python, non-finite floats to the strings 'NaN'/'Infinity'."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if hasattr(value, "tolist"):  # numpy and JAX arrays and scalars
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Path):
        return str(value)
    return value


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON to a temporary file in the same directory, then rename: never a truncated file."""
    text = json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------------------
# Metadata: versions, device, precision, seed, commit, times


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _seeds(cfg: dict, prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in cfg.items():
        if isinstance(value, dict):
            found.update(_seeds(value, f"{prefix}{key}."))
        elif key == "seed" or key.endswith("_seed"):
            found[f"{prefix}{key}"] = value
    return found


def static_metadata(cfg: dict) -> dict:
    """What can be recorded before any JAX work: versions, platform, precision, seed, commit."""
    seeds = _seeds(cfg)
    return {
        "python": platform.python_version(),
        "jax": _version("jax"),
        "jaxlib": _version("jaxlib"),
        "optax": _version("optax"),
        "hydra": _version("hydra-core"),
        "numpy": _version("numpy"),
        "platform": platform.platform(),
        "precision": cfg.get("precision"),
        "seed": next(iter(seeds.values())) if len(seeds) == 1 else (seeds or None),
        "git_commit": _git_commit(),
        "started_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
    }


def device_metadata() -> dict:
    import jax

    devices = jax.devices()
    return {
        "backend": jax.default_backend(),
        "device": str(devices[0]),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "x64_enabled": bool(jax.config.jax_enable_x64),
    }


class _CompileClock:
    """Sums JAX's tracing, lowering and XLA compilation time reported through jax.monitoring."""

    EVENTS = (
        "/jax/core/compile/jaxpr_trace_duration",
        "/jax/core/compile/jaxpr_to_mlir_module_duration",
        "/jax/core/compile/backend_compile_duration",
    )

    def __init__(self) -> None:
        self.seconds = 0.0
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            import jax

            jax.monitoring.register_event_duration_secs_listener(self._listen)
            self._installed = True

    def _listen(self, event: str, duration: float, **kwargs: Any) -> None:
        if event in self.EVENTS:
            self.seconds += duration


COMPILE_CLOCK = _CompileClock()


def set_precision(precision: str) -> None:
    """float64 enables jax_enable_x64; float32 disables it. Call before creating any array."""
    import jax

    jax.config.update("jax_enable_x64", precision == "float64")


# --------------------------------------------------------------------------------------------------------
# The run context handed to an experiment


@dataclasses.dataclass
class RunContext:
    """Where an experiment writes: the arrays behind its figures (`keep`), text files, CSV tables."""

    out_dir: Path
    log: logging.Logger
    plot_data: dict[str, Any] = dataclasses.field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.out_dir / name

    def keep(self, **arrays: Any) -> None:
        """Keep arrays for the figures: saved to plot_data.npz, drawn by `gradlab.figures.<experiment>`."""
        self.plot_data.update({key: np.asarray(value) for key, value in arrays.items()})

    def save_text(self, name: str, text: str) -> Path:
        target = self.path(name)
        target.write_text(text)
        return target


# --------------------------------------------------------------------------------------------------------
# Executing one run


Main = Callable[[Any, RunContext], dict]


def _log_to_file(logger: logging.Logger, message: str) -> None:
    """Record a message in the run's log file only (the console gets it once, on stderr)."""
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def execute(name: str, schema: type, main: Main, raw_cfg: DictConfig | dict, out_dir: Path) -> int:
    """Validate, run and record one experiment into `out_dir`; return the process exit code."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / METRICS_FILE
    log = logging.getLogger(name)
    raw = OmegaConf.to_container(raw_cfg, resolve=True) if isinstance(raw_cfg, DictConfig) else raw_cfg
    meta = static_metadata(raw)
    started, compile_before = time.perf_counter(), COMPILE_CLOCK.seconds

    def finish(status: str, error: str | None, results: dict | None = None) -> None:
        meta["wall_time_s"] = time.perf_counter() - started
        meta["compile_time_s"] = COMPILE_CLOCK.seconds - compile_before
        final = {"status": status, "experiment": name}
        if error is not None:
            final["error"] = error
        final["meta"] = meta
        final.update(results or {})
        write_json_atomic(metrics_path, final)

    def config_failure(err: ConfigError, results: dict | None = None) -> int:
        print(f"gradlab: {err}", file=sys.stderr)
        _log_to_file(log, str(err))
        finish("failed", str(err), results)
        return EXIT_CONFIG

    try:
        cfg = validate(raw, schema)
    except ConfigError as err:
        return config_failure(err)

    write_json_atomic(metrics_path, {"status": "running", "experiment": name, "meta": meta})
    ctx = RunContext(out_dir=out_dir, log=log)
    try:
        set_precision(cfg.precision)
        COMPILE_CLOCK.install()
        meta.update(device_metadata())
        results = main(cfg, ctx)
    except ConfigError as err:  # bad input found while running (a data file, a value out of range)
        return config_failure(err, {"config": to_dict(cfg)})
    except Exception as err:  # noqa: BLE001 - every failure is recorded, then reported once
        message = f"{type(err).__name__}: {err}" if not isinstance(err, RunFailed) else str(err)
        print(f"gradlab: {name} failed: {message}", file=sys.stderr)
        _log_to_file(log, traceback.format_exc())
        partial = err.results if isinstance(err, RunFailed) else {}
        finish("failed", message, {"config": to_dict(cfg), **partial})
        return EXIT_FAILED
    # the numbers first, then the figures: a figure that cannot be drawn never costs the results
    results = {"config": to_dict(cfg), **results}
    write_json_atomic(metrics_path, {"status": "running", "phase": "plots", "experiment": name, "meta": meta, **results})
    plots, plot_errors = {}, {}
    if ctx.plot_data:
        save_plot_data(ctx.path(PLOT_DATA_FILE), ctx.plot_data)
        plots, plot_errors = figures_of(name).draw_all(ctx.plot_data, OmegaConf.create(results["config"]), out_dir)
    if plot_errors:
        message = "figures not drawn: " + "; ".join(f"{k}: {v}" for k, v in plot_errors.items())
        print(f"gradlab: {name} failed: {message}", file=sys.stderr)
        finish("failed", message, {**results, "plots": plots, "plot_errors": plot_errors})
        return EXIT_FAILED
    finish("ok", None, {**results, "plots": plots})
    log.info("%s finished: %s", name, metrics_path)
    return EXIT_OK


# --------------------------------------------------------------------------------------------------------
# The Hydra entry point


_exit_codes: list[int] = []


def record_exit_code(code: int) -> None:
    """Remember a run's outcome; `launch` exits with the worst one (a failed sweep job makes it non-zero)."""
    _exit_codes.append(code)


def experiment_module(name: str) -> ModuleType:
    """The experiment `gradlab.experiments.<name>`: its schema `Config` and its `main(cfg, ctx)`."""
    return importlib.import_module(f"gradlab.experiments.{name}")


def launch(name: str) -> None:
    """Run the experiment `name` as the Hydra app `configs/<name>.yaml`; exit non-zero if any run failed.

    The task function names the experiment module by its import path, so process-based launchers (joblib,
    submitit) import it by reference in their workers.
    """
    import hydra
    from hydra.core.hydra_config import HydraConfig

    @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=name)
    def app(cfg: DictConfig) -> int:
        logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # no "no TPU here" noise
        experiment = experiment_module(name)
        code = execute(name, experiment.Config, experiment.main, cfg, Path(HydraConfig.get().runtime.output_dir))
        record_exit_code(code)
        return code

    app()
    sys.exit(max(_exit_codes, default=EXIT_OK))
