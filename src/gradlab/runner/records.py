"""Reading run records: a run directory's metrics.json, its true status, and dotted metric lookups.

Every reader (sweep summary, report, `gradlab runs`) asks `status_of` rather than reading `status` itself: a
record still saying `running` whose process is gone (SIGKILL, the OOM killer, a native abort, a full disk) is
`crashed`. The run layer writes `meta.host`, `meta.pid` and `meta.pid_started` (the process start time, so a
recycled pid is not taken for the run) when it marks a run `running`.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.json"
PLOT_DATA_FILE = "plot_data.npz"
FINAL_STATUSES = ("ok", "failed", "interrupted", "crashed")


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
