"""Reading and writing (x, y) data as CSV, with one-line errors that name the key, the file and the fault."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from gradlab.runner.config import ConfigError
from gradlab.runner.records import atomic_open


def save_xy_csv(path: Path, x, y) -> None:
    """Write columns x,y with full float precision (repr round-trips), through a temporary file (`atomic_open`)."""
    with atomic_open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x", "y"])
        for xi, yi in zip(np.asarray(x).tolist(), np.asarray(y).tolist(), strict=True):
            writer.writerow([repr(float(xi)), repr(float(yi))])


# Reading a CSV costs, at its peak, the file's text twice (the bytes read and the decoded str) and per row two Python
# floats (24 bytes each) in two lists (8 bytes a slot) plus the row's transient dict: about 96 bytes a row.
CSV_PARSE_BYTES_PER_ROW = 96


def csv_rows_bound(path: str | None) -> int:
    """At most how many data rows the CSV file at `path` holds: its newline count (the header's included, for a
    last line without one), read as bytes and never parsed, so a config can be sized before its data is read.
    0 for a path that is not a readable file (the loader then says why, naming the key)."""
    try:
        with open(path, "rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) + 1
    except (OSError, TypeError):
        return 0


def csv_parse_bytes(path: str | None) -> float:
    """The peak memory of reading the CSV at `path` (`load_xy_csv`): its text twice and CSV_PARSE_BYTES_PER_ROW a
    row, from its size and line count; 0 for a path that is not a readable file."""
    try:
        size = Path(path).stat().st_size
    except (OSError, TypeError):
        return 0.0
    return 2.0 * size + CSV_PARSE_BYTES_PER_ROW * csv_rows_bound(path)


def load_xy_csv(path: str, *, key: str, binary_labels: bool) -> tuple[np.ndarray, np.ndarray]:
    """Read a CSV with a header holding columns x and y; every value finite, y in {0, 1} if binary_labels.

    Any fault raises ConfigError naming `key`, the file, the line and column, and what is wrong and allowed; never
    the file's text (`data.path=/etc/shadow` must not print its first line).
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(key, path, "an existing CSV file with columns x,y (file not found)")
    try:
        text = file.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark (spreadsheet programs) is dropped
    except UnicodeDecodeError as err:
        raise ConfigError(key, path, f"a UTF-8 text CSV file (byte {err.start} is not UTF-8: binary?)") from None
    except OSError as err:
        raise ConfigError(key, path, f"a readable CSV file ({err.strerror})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip() for c in (reader.fieldnames or [])]
    if "x" not in columns or "y" not in columns:
        missing = " and ".join(c for c in ("x", "y") if c not in columns)  # never the line: the file may be anything
        raise ConfigError(key, path, f"a CSV whose first line (its header) names columns x and y (no column {missing}; "
                          f"{len(columns)} column{'s' if len(columns) != 1 else ''})")
    reader.fieldnames = columns
    xs, ys = [], []
    for line, row in enumerate(reader, start=2):
        for column, values in (("x", xs), ("y", ys)):
            cell = (row.get(column) or "").strip()
            try:
                value = float(cell)
            except ValueError:
                raise ConfigError(key, path, f"numeric values (line {line}, column {column}: not a number)") from None
            if not math.isfinite(value):
                raise ConfigError(key, path, f"finite values (line {line}, column {column}: {value})")
            values.append(value)
        if binary_labels and ys[-1] not in (0.0, 1.0):
            raise ConfigError(key, path, f"labels y in {{0, 1}} (line {line}: y={ys[-1]:g})")
    if not xs:
        raise ConfigError(key, path, "at least one data row (the file has none)")
    return np.asarray(xs), np.asarray(ys)
