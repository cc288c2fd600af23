"""The run record, metrics.json: written atomically by the run layer, read back with its true status.

Every reader (sweep summary, report, `gradlab runs`) asks `status_of` rather than reading `status` itself: a
record still saying `running` whose process is gone (SIGKILL, the OOM killer, a native abort, a full disk) is
`crashed`. The run layer writes `meta.host`, `meta.pid` and `meta.pid_started` (the process start time, so a
recycled pid is not taken for the run) when it marks a run `running`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

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


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON to a temporary file in the same directory, then rename: never a truncated file."""
    text = json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # readable like every other output (mkstemp makes 0600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
