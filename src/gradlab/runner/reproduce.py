"""Reproduce a run: run it again and compare the numbers (`rerun`), or redraw its figures from saved arrays (`replot`).

    gradlab rerun DIR [--out NEW] [--ignore 'bench.*']   # same overrides, same seed -> identical metrics?
    gradlab replot DIR [--out NEW]                        # every figure again from plot_data.npz, no JAX

`rerun` starts the experiment as a fresh process with the run's saved overrides (.hydra/overrides.yaml), so the
shared run settings and the defaults come from configs/ as for any run; a default changed since shows up as a
config difference. It then compares every metric bit for bit (JSON floats are written with their shortest exact
repr, so equal text is equal bits) and lists the versions that differ (`meta`: python, jax, jaxlib, numpy,
platform, device, git commit). Exit code 0 only if every metric is identical.

`replot` imports numpy, matplotlib and the experiment's `gradlab.figures.<experiment>` only, never JAX.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib.util
import io
import re
import shlex
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from gradlab.runner.records import METRICS_FILE, PLOT_DATA_FILE, lookup, read_record, status_of
from gradlab.runner.runs import (
    RunError,
    differing,
    display_path,
    flatten,
    fmt,
    hydra_quoted,
    max_differences,
    metrics_of,
    read_yaml,
    render_table,
    versions_of,
)

VERSION_SUMMARY = ("python", "jax", "jaxlib", "numpy", "platform", "device", "git_commit")


def _record(run_dir: Path) -> dict:
    record = read_record(run_dir)
    if not isinstance(record, dict):  # None: missing or not JSON; a list or a number: JSON, but not a record
        exists = (run_dir / METRICS_FILE).exists()
        raise RunError(run_dir, "metrics.json cannot be read" if exists else "no metrics.json (not a run directory)")
    if not record.get("experiment"):
        raise RunError(run_dir / METRICS_FILE, "names no experiment")
    return record


def _empty_out(out: Path, command: str) -> Path:
    """`out`, created if missing; refused if it exists and holds anything (nothing is ever overwritten)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunError(out, f"exists and is not empty; {command} never overwrites, pick a new --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


# --------------------------------------------------------------------------------------------------------
# rerun


@dataclasses.dataclass
class MetricDiff:
    key: str
    old: Any
    new: Any
    abs_diff: float | None  # None where the values are not numbers of the same shape
    rel_diff: float | None


def compare_metrics(old: dict, new: dict, ignore: Sequence[str] = ()) -> tuple[int, list[MetricDiff], list[str]]:
    """(number of identical metrics, the differing ones, the ignored keys) of two metrics.json records."""
    old_metrics, new_metrics = metrics_of(old), metrics_of(new)
    keys = list(dict.fromkeys([*old_metrics, *new_metrics]))
    ignored = [k for k in keys if any(fnmatch.fnmatchcase(k, pattern) for pattern in ignore)]
    kept = [{k: v for k, v in tree.items() if k not in ignored} for tree in (old_metrics, new_metrics)]
    diffs = []
    for key, (a, b) in differing(kept):
        spread = max_differences(a, b)
        diffs.append(MetricDiff(key, a, b, *(spread or (None, None))))
    return len(keys) - len(ignored) - len(diffs), diffs, ignored


def _hydra_arg(key: str, value: str) -> str:
    """`key=value` for the Hydra command line, quoted where the value holds characters Hydra would parse."""
    if re.fullmatch(r"[\w/.:+@-]+", value):
        return f"{key}={value}"
    return f"{key}={hydra_quoted(value)}"


def saved_overrides(run_dir: Path) -> list[str]:
    """The overrides the run was started with, from .hydra/overrides.yaml; RunError if that file is missing or
    cannot be read as Hydra writes it (a YAML list of strings): a rerun without them would be another run, and
    its config differences would be blamed on the defaults."""
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    if not overrides_file.is_file():
        raise RunError(overrides_file, "missing: the run was not started by Hydra, so its overrides are unknown")
    try:
        overrides = yaml.safe_load(overrides_file.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        problem = err.strerror if isinstance(err, OSError) else f"not YAML ({type(err).__name__})"
        raise RunError(overrides_file, f"cannot be read ({problem}), so the run's overrides are unknown") from None
    if not isinstance(overrides, list) or not all(isinstance(item, str) for item in overrides):
        what = "empty" if overrides is None else f"a {type(overrides).__name__}, not a list of key=value strings"
        raise RunError(overrides_file, f"cannot be read ({what}), so the run's overrides are unknown")
    return overrides


def is_hydra_override(item: str) -> bool:
    """Whether an override sets Hydra itself (`hydra.run.dir=...`, `hydra/launcher=joblib`, `+hydra.x=1`): where
    and how the original ran, never passed to a rerun, which runs into its own new directory."""
    key = item.split("=", 1)[0].lstrip("+~")
    return key == "hydra" or key.startswith(("hydra.", "hydra/"))


def rerun_command(run_dir: Path, record: dict, new_dir: Path) -> tuple[list[str], Path, list[str]]:
    """(argv, working directory, the saved overrides left out) that run the experiment of `run_dir` again into
    `new_dir`: the run's overrides less its Hydra settings (`is_hydra_override`)."""
    experiment = str(record["experiment"])
    if importlib.util.find_spec(f"gradlab.experiments.{experiment}") is None:
        raise RunError(run_dir / METRICS_FILE, f"experiment {experiment!r} is not a module of gradlab.experiments")
    overrides = saved_overrides(run_dir)
    left_out = [item for item in overrides if is_hydra_override(item)]
    cwd = lookup(read_yaml(run_dir / ".hydra" / "hydra.yaml") or {}, "hydra.runtime.cwd")  # where relative paths
    cwd = Path(cwd) if isinstance(cwd, str) and Path(cwd).is_dir() else Path.cwd()  # in overrides mean the same
    argv = [sys.executable, "-m", f"gradlab.experiments.{experiment}",
            _hydra_arg("hydra.run.dir", str(new_dir.resolve())), *(o for o in overrides if o not in left_out)]
    return argv, cwd, left_out


def _stderr_fd() -> int | None:
    """The child's output goes to our stderr, so stdout holds the report alone."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return None


def _versions_line(versions: dict) -> str:
    return ", ".join(f"{k} {versions[k]}" for k in VERSION_SUMMARY if versions.get(k) is not None)


def _lock_line(lock: dict | str | None) -> str:
    """Whether the environment the rerun ran in is the locked one (uv.lock): only then is "identical" expected."""
    if isinstance(lock, str):
        return f"environment: {lock}"
    if lock is None:
        return "environment: no uv.lock here (an installed package): versions are as listed"
    if not lock["differs"]:
        return f"environment: as locked (uv.lock {lock['sha256']})"
    packages = "; ".join(f"{name} {what}" for name, what in lock["differs"].items())
    return (f"environment: differs from uv.lock {lock['sha256']} in {len(lock['differs'])} packages ({packages}): "
            "`make setup` installs the locked versions")


def rerun_report(old: dict, new: dict, ignore: Sequence[str] = ()) -> tuple[list[str], bool]:
    """The lines that say how far the rerun `new` reproduces `old`, and whether it does (every metric identical)."""
    lines = [f"status: {status_of(new)} (original: {status_of(old)})"]
    config_rows = differing([flatten(old.get("config") or {}), flatten(new.get("config") or {})])
    if config_rows:
        lines.append(f"config: {len(config_rows)} keys differ (a default in configs/ changed since the run):")
        table = render_table(["key", "original", "rerun"], [[k, fmt(a), fmt(b)] for k, (a, b) in config_rows])
        lines += ["  " + line for line in table.splitlines()]
    else:
        lines.append("config: identical")
    same, diffs, ignored = compare_metrics(old, new, ignore)
    if diffs:
        lines.append(f"metrics: {len(diffs)} of {same + len(diffs)} differ ({same} identical bit for bit):")
        rows = [[d.key, fmt(d.old, 24), fmt(d.new, 24), "-" if d.abs_diff is None else f"{d.abs_diff:.3g}",
                 "-" if d.rel_diff is None else f"{d.rel_diff:.3g}"] for d in diffs]
        table = render_table(["metric", "original", "rerun", "max abs diff", "max rel diff"], rows)
        lines += ["  " + line for line in table.splitlines()]
    else:
        lines.append(f"metrics: all {same} identical bit for bit")
    if ignored:
        lines.append(f"ignored ({len(ignored)}): {', '.join(ignored)}")
    lines.append(_lock_line((new.get("meta") or {}).get("lock", "not recorded")))
    old_versions, new_versions = versions_of(old), versions_of(new)
    version_rows = differing([old_versions, new_versions])
    if version_rows:
        lines.append(f"versions: {len(version_rows)} differ:")
        table = render_table(["key", "original", "rerun"], [[k, fmt(a, 60), fmt(b, 60)] for k, (a, b) in version_rows])
        lines += ["  " + line for line in table.splitlines()]
    else:
        lines.append(f"versions: identical ({_versions_line(new_versions)})")
    if "-dirty" in str(old_versions.get("git_commit", "")):
        lines.append("note: the original ran from a working tree with uncommitted changes (its git_commit ends in "
                     "the hash of that diff): the same hash is the same code")
    reproduced = not diffs and status_of(new) == status_of(old)
    return lines, reproduced


def rerun(run_dir: Path, out: Path | None = None, ignore: Sequence[str] = ()) -> int:
    """Run `run_dir`'s experiment again with its overrides into a new directory; print how far it reproduces.

    Exit code 0 if every metric is identical bit for bit (and the status is the same), 1 otherwise.
    """
    from gradlab.runner.dirs import unique_dir

    run_dir = Path(run_dir)
    old = _record(run_dir)
    rerun_command(run_dir, old, run_dir)  # every check before a directory is made
    new_dir = _empty_out(Path(out), "rerun") if out is not None else Path(unique_dir(f"{run_dir}-rerun"))
    argv, cwd, left_out = rerun_command(run_dir, old, new_dir)
    print(f"rerun of {display_path(run_dir)} into {display_path(new_dir)}", flush=True)
    if left_out:
        print(f"not passed on (Hydra's own settings, where the original ran): {' '.join(left_out)}", flush=True)
    print("$ " + shlex.join(["python", *argv[1:]]), flush=True)
    started = time.perf_counter()
    code = subprocess.run(argv, cwd=cwd, stdout=_stderr_fd(), check=False).returncode
    new = read_record(new_dir)
    if new is None:
        print(f"gradlab: error: {new_dir}: the rerun wrote no metrics.json (exit code {code})", file=sys.stderr)
        return 1
    lines, reproduced = rerun_report(old, new, ignore)
    print(f"finished in {time.perf_counter() - started:.1f} s (exit code {code})")
    print("\n".join(lines))
    print("reproduced: every metric identical" if reproduced else "NOT reproduced")
    return 0 if reproduced else 1


# --------------------------------------------------------------------------------------------------------
# replot


def _fresh_subdir(run_dir: Path, name: str) -> Path:
    """run_dir/name, or name-1, name-2, ... where that exists and is not empty; created."""
    for attempt in range(10_000):
        candidate = run_dir / (name if attempt == 0 else f"{name}-{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            if candidate.is_dir() and not any(candidate.iterdir()):
                return candidate
    raise RunError(run_dir, f"no fresh {name}/ directory left")


def same_image(first: Path, second: Path) -> bool | None:
    """Whether two PNGs show the same pixels (None if either is missing)."""
    if not (first.is_file() and second.is_file()):
        return None
    if first.read_bytes() == second.read_bytes():
        return True
    import matplotlib.image
    import numpy as np

    a, b = matplotlib.image.imread(first), matplotlib.image.imread(second)
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _plot_data(path: Path) -> dict:
    """The arrays of plot_data.npz; RunError, one line, for a file that is damaged (truncated by a full disk,
    cut short by a kill): np.load and zipfile raise a different error for each kind of damage."""
    from gradlab.runner.plotting import load_plot_data

    try:
        return load_plot_data(path)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as err:
        why = str(err).splitlines()[0] if str(err).strip() else "no data"
        raise RunError(path, f"damaged ({type(err).__name__}: {why}), so its figures cannot be drawn; "
                       "`gradlab rerun` computes them again") from None


def replot(run_dir: Path, out: Path | None = None) -> int:
    """Redraw every figure of `run_dir` from its plot_data.npz and config; print what was drawn.

    Exit code 0 if every figure was drawn, 1 if one failed (its error goes to stderr).
    """
    from omegaconf import OmegaConf

    from gradlab.runner.plotting import figures_of

    run_dir = Path(run_dir)
    record = _record(run_dir)
    experiment = str(record["experiment"])
    if not isinstance(record.get("config"), dict):
        raise RunError(run_dir / METRICS_FILE, "holds no config (the run stopped before its config was valid)")
    data_path = run_dir / PLOT_DATA_FILE
    if not data_path.is_file():
        raise RunError(data_path, "missing: the run saved no arrays for its figures")
    figures = figures_of(experiment)
    if not figures.figures:
        raise RunError(run_dir, f"experiment {experiment!r} has no figures (no gradlab.figures.{experiment})")
    data = _plot_data(data_path)
    target = _empty_out(Path(out), "replot") if out is not None else _fresh_subdir(run_dir, "replot")
    started = time.perf_counter()
    saved, errors = figures.draw_all(data, OmegaConf.create(record["config"]), target)
    seconds = time.perf_counter() - started
    print(f"replot of {display_path(run_dir)} ({experiment}) into {display_path(target)}")
    rows = []
    for name in saved:
        same = same_image(run_dir / name, target / name)
        rows.append([name, {True: "same pixels", False: "changed", None: "new"}[same]])
    if rows:
        print("\n".join("  " + line for line in render_table(["figure", "vs the run's own"], rows).splitlines()))
    for name, error in errors.items():
        print(f"gradlab: error: {target / name}: {error}", file=sys.stderr)
    print(f"{len(saved)} of {len(figures.figures)} figures drawn in {seconds:.2f} s")
    return 1 if errors else 0

