"""The run record, metrics.json: written atomically by the run layer, read back with its true status.

Every reader (sweep summary, report, `gradlab runs`) asks `status_of` rather than reading `status` itself: a
record still saying `running` whose process is gone (SIGKILL, the OOM killer, a native abort, a full disk) is
`crashed`. The run layer writes `meta.host`, `meta.pid` and `meta.pid_started` (the process start time, so a
recycled pid is not taken for the run) when it marks a run `running`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

METRICS_FILE = "metrics.json"
PLOT_DATA_FILE = "plot_data.npz"
FINAL_STATUSES = ("ok", "failed", "interrupted", "crashed")
_UMASK = os.umask(0)
os.umask(_UMASK)


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


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file next to `path` for writing; rename it to `path` when the block ends without error.

    A write that fails (a full disk, `ulimit -f`, a read-only folder) or is interrupted leaves `path` as it was,
    never a truncated file: the temporary file is removed and the error goes on. The file is synced before the
    rename, so a crash just after it cannot leave an empty file under the final name.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # readable like every other output (mkstemp makes 0600)
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and not err.filename:  # a write's error names no file: name the one meant
            err.filename = str(path)
        raise


def os_error_line(err: OSError, *, with_name: bool = True) -> str:
    """An OSError in one line, naming the file it was writing by its final name (not `atomic_open`'s temporary
    one): `plot_data.npz: [Errno 27] File too large` (without the name: `[Errno 27] File too large`)."""
    text = f"[Errno {err.errno}] {err.strerror}" if err.errno else (str(err).splitlines() or [type(err).__name__])[0]
    if not err.filename or not with_name:
        return text
    name = Path(str(err.filename)).name
    temporary = re.fullmatch(r"\.(.+)\.[^.]+\.tmp", name)
    return f"{temporary.group(1) if temporary else name}: {text}"


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON to a temporary file in the same directory, then rename: never a truncated file."""
    text = json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n"
    with atomic_open(path) as handle:
        handle.write(text)


def rewrite_in_place(path: Path, payload: dict) -> None:
    """Rewrite an existing JSON file in place, for a folder that became read-only (a file of its own can still be
    written where no new file can be created): the text is written over the old one, then cut to its length."""
    text = json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n"
    with open(path, "r+") as handle:
        handle.write(text)
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())


def write_text_atomic(path: Path, text: str) -> Path:
    """`path.write_text(text)`, through a temporary file and a rename (`atomic_open`)."""
    with atomic_open(path) as handle:
        handle.write(text)
    return Path(path)


def lookup(metrics: dict, dotted: str) -> Any:
    """metrics["a"]["b"] for "a.b" (a number indexes a list: "points.4.x"); None where absent."""
    value: Any = metrics
    for part in dotted.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def read_record(run_dir: Path) -> dict | None:
    """The run's metrics.json, or None if there is none (or it cannot be read)."""
    try:
        return json.loads((Path(run_dir) / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return None


def process_start_time(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot, from /proc), or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def process_alive(host: str | None, pid: int | None, started: str | None) -> bool | None:
    """Whether the process that wrote a record still runs: True/False on this host, None if it cannot be told."""
    if host != socket.gethostname() or not isinstance(pid, int):
        return None
    if Path("/proc").is_dir():
        now = process_start_time(pid)
        return now is not None and (started is None or now == started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status_of(record: dict | None) -> str:
    """The run's true status: ok, failed, interrupted, crashed, running, or missing (no record)."""
    if record is None:
        return "missing"
    status = record.get("status", "missing")
    if status != "running":
        return status
    meta = record.get("meta") or {}
    alive = process_alive(meta.get("host"), meta.get("pid"), meta.get("pid_started"))
    return "crashed" if alive is False else "running"
