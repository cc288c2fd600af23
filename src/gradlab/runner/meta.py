"""What every run records about itself: versions, platform, device, precision, seeds, commit, compile time.

Also the two process-wide JAX settings a run applies before any array exists: the precision and the persistent
compilation cache.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import importlib.metadata
import logging
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from gradlab.runner.records import process_start_time

REPO_ROOT = Path(__file__).resolve().parents[3]  # the checkout (src/gradlab/runner/meta.py); unused when installed
LOCK_FILE = REPO_ROOT / "uv.lock"


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, timeout=5)


def _git_commit() -> str | None:
    """HEAD, with `-dirty+<hash of the uncommitted diff>` when tracked files differ: two runs from the same dirty
    tree name the same code only if the hashes match."""
    try:
        head, diff = _git("rev-parse", "HEAD"), _git("diff", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    commit = head.stdout.decode().strip()
    return commit + (f"-dirty+{hashlib.sha256(diff.stdout).hexdigest()[:12]}" if diff.stdout.strip() else "")


# a package's first lines in uv.lock (uv writes them in this form): [[package]] / name = "..." / version = "..."
LOCKED_PACKAGE = re.compile(r'^\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"', re.MULTILINE)


def locked_versions(text: str) -> dict[str, set[str]]:
    """{package: its versions in the lock} (a package may be locked at one version per platform or Python)."""
    locked: dict[str, set[str]] = {}
    for name, version in LOCKED_PACKAGE.findall(text):
        locked.setdefault(name, set()).add(version)
    return locked


def lock_status(lock_file: Path = LOCK_FILE) -> dict | None:
    """How this environment stands against the lock: {"sha256": <first 12 hex of uv.lock>, "differs": {package:
    "installed <v>, locked <v>"}} for every locked package that is installed at another version (extras that are
    not installed are not counted). None where there is no lock (an installed wheel outside a checkout).

    Worked out once per process and lock file version (every run in a test session or a sweep records it)."""
    try:
        stat = lock_file.stat()
    except OSError:
        return None
    status = _lock_status(lock_file, stat.st_mtime_ns, stat.st_size)
    return None if status is None else {"sha256": status["sha256"], "differs": dict(status["differs"])}


@functools.lru_cache(maxsize=4)
def _lock_status(lock_file: Path, mtime_ns: int, size: int) -> dict | None:
    try:
        text = lock_file.read_bytes()
    except OSError:
        return None
    differs = {}
    for name, versions in sorted(locked_versions(text.decode()).items()):
        installed = _version(name)
        if installed is not None and installed not in versions and name != "gradlab":
            differs[name] = f"installed {installed}, locked {' or '.join(sorted(versions))}"
    return {"sha256": hashlib.sha256(text).hexdigest()[:12], "differs": differs}


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
        "lock": lock_status(),
        "started_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        **process_identity(),
    }


def process_identity() -> dict:
    """host, pid and the process start time: enough for any reader to tell a crashed run from a running one."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_started": process_start_time(os.getpid())}


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
    """float64 enables jax_enable_x64; float32 disables it. Call before creating any array.

    Matrix products run at full precision in either: a GPU (Ampere and later) otherwise computes float32 ones in
    TF32 (a 10-bit mantissa, relative error ~1e-3), far above the float32 tolerances the claims are checked at.
    """
    import jax

    jax.config.update("jax_enable_x64", precision == "float64")
    jax.config.update("jax_default_matmul_precision", "highest")


def set_compile_cache(directory: str | None) -> str | None:
    """Use JAX's persistent compilation cache in `directory` (`~` expanded; None disables it); return the path.

    A second run of the same experiment then loads its XLA executables instead of compiling them again. The cache
    only saves time, so a directory that cannot be created or written (a read-only home, a full disk) costs the run
    nothing: one warning, no cache, and None returned (recorded as the run's `meta.compile_cache`).
    """
    import jax

    path = None if directory is None else Path(directory).expanduser()
    if path is not None:
        problem = _unwritable(path)
        if problem:
            logging.getLogger("gradlab").warning(
                "compile_cache=%s cannot be used (%s): this run compiles without a persistent cache", directory,
                problem)
            path = None
    if path is None:
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return str(path)


def _unwritable(path: Path) -> str | None:
    """Why files cannot be written in `path` (created if missing), or None: the reason a write would fail, found by
    creating and removing one empty file (permission bits alone miss a read-only mount)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        return err.strerror or type(err).__name__
    return None
