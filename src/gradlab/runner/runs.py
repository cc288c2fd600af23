"""Many runs at once: find every run under a directory, list them as a table, compare them side by side.

A run is a directory holding `metrics.json` (see `gradlab.runner.records`), wherever Hydra put it: single runs
in outputs/<experiment>/<date>/<time>/, sweep jobs in outputs/<experiment>/multirun/<date>/<time>/<job>/,
run_all's children in outputs/run_all/<date>/<time>/<run id>/. So runs are found by walking for metrics.json.

    gradlab runs [ROOT] --experiment logreg --status ok --override optimizer.lr=0.1 [--json | --csv]
    gradlab compare DIR DIR [DIR ...]

A run's key metrics are the ones its experiment summarises after a sweep (`hydra.callbacks.sweep_summary.metrics`
in the run's .hydra/hydra.yaml, else in configs/<experiment>.yaml), or its first few numbers.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import functools
import io
import json
import math
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from gradlab.runner.records import METRICS_FILE, lookup, read_record, status_of

# the parts of metrics.json that are not results: how the run went, its config and its figures
NOT_METRICS = ("status", "experiment", "error", "signal", "warnings", "phase", "meta", "config", "plots",
               "plot_errors")
# the parts of `meta` that differ between any two runs; the rest (versions, platform, device, precision, seed,
# commit, host) says what a run ran on
VOLATILE_META = ("started_at", "wall_time_s", "compile_time_s", "argv", "pid", "pid_started", "worker_pid",
                 "compile_cache")
UNREADABLE = "unreadable"  # the status of a run whose metrics.json cannot be read
DEFAULT_KEY_METRICS = 3  # numbers shown for an experiment that names no summary metrics


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


ABSENT = _Absent()  # the value of a key that one of the compared runs lacks


class RunError(Exception):
    """A path that is not what a command needs; reported as one line `<path>: <problem>`, exit code 2."""

    def __init__(self, path: Path | str, problem: str):
        super().__init__(f"{path}: {problem}")


# --------------------------------------------------------------------------------------------------------
# Reading one run


@functools.cache
def _override_parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def parse_override(item: str) -> tuple[str, Any]:
    """(key, value) of an override as Hydra reads it: "optimizer.lr=1e1" -> ("optimizer.lr", 10.0)."""
    try:
        override = _override_parser().parse_override(item)
    except Exception:  # noqa: BLE001 - not Hydra's grammar: the text after "=" as YAML, else as it is
        key, _, text = item.partition("=")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        return key.lstrip("+~"), value
    return override.key_or_group, override.value()


def hydra_quoted(text: str) -> str:
    """`text` as a quoted value of Hydra's override grammar, read back as `text` exactly: `'` becomes `\\'`, and a
    run of backslashes is doubled where it precedes a quote (elsewhere a backslash is literal in Hydra 1.3)."""
    return "'" + re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), text) + "'"


def tags_override(tags: Sequence[str]) -> str:
    """The override that gives a run these tags (configs/base/run.yaml), e.g. `tags=['baseline','lr study']`."""
    return "tags=[" + ",".join(hydra_quoted(tag) for tag in tags) + "]"


def read_yaml(path: Path) -> Any:
    """The YAML file's content; None if it is missing or cannot be read (not UTF-8 text, not YAML)."""
    try:
        return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def read_overrides(run_dir: Path) -> list[str]:
    """The overrides the run was started with (.hydra/overrides.yaml); [] if it has none or no .hydra."""
    overrides = read_yaml(Path(run_dir) / ".hydra" / "overrides.yaml")
    return [str(item) for item in overrides] if isinstance(overrides, list) else []


def override_map(overrides: Iterable[str]) -> dict[str, Any]:
    """{"optimizer.lr": 0.1} for ["optimizer.lr=0.1"] (the +/++/~ prefixes dropped)."""
    return dict(parse_override(item) for item in overrides)


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{"fit.loss": 0.1, ...} for {"fit": {"loss": 0.1}}: dotted keys, lists kept whole."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def metrics_of(record: dict) -> dict[str, Any]:
    """A run's results as dotted keys: metrics.json less the status, meta, config and figure list."""
    return flatten({key: value for key, value in record.items() if key not in NOT_METRICS})


def versions_of(record: dict) -> dict[str, Any]:
    """What a run ran on (`meta` less its times, argv and pid): python, jax, jaxlib, numpy, platform, commit..."""
    return {key: value for key, value in (record.get("meta") or {}).items() if key not in VOLATILE_META}


@functools.cache
def _configured_key_metrics(experiment: str) -> tuple[str, ...] | None:
    from gradlab.runner.run import CONFIG_DIR

    return _summary_metrics(read_yaml(CONFIG_DIR / f"{experiment}.yaml"))


def _summary_metrics(cfg: Any) -> tuple[str, ...] | None:
    names = lookup(cfg, "hydra.callbacks.sweep_summary.metrics") if isinstance(cfg, dict) else None
    return tuple(str(name) for name in names) if isinstance(names, list) and names else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def key_metrics(run_dir: Path, record: dict) -> dict[str, Any]:
    """The run's summary metrics with their values (see the module docstring for which)."""
    names = _summary_metrics(read_yaml(Path(run_dir) / ".hydra" / "hydra.yaml"))
    if names is None and record.get("experiment"):
        names = _configured_key_metrics(str(record["experiment"]))
    if names is None:
        numbers = [key for key, value in metrics_of(record).items() if _is_number(value)]
        names = tuple(numbers[:DEFAULT_KEY_METRICS])
    return {name: lookup(record, name) for name in names}


@dataclasses.dataclass
class Run:
    """One row of `gradlab runs`."""

    path: Path
    experiment: str
    status: str
    started_at: str | None
    wall_time_s: float | None
    overrides: list[str]
    metrics: dict[str, Any]
    git_commit: str | None
    error: str | None
    record: dict = dataclasses.field(repr=False)
    tags: list[str] = dataclasses.field(default_factory=list)
    replaced_by: Path | None = None  # the later attempt of the same sweep job (`gradlab resume`), if any

    def as_json(self) -> dict:
        row = dataclasses.asdict(self)
        row.pop("record")
        row["path"] = str(self.path)
        row["replaced_by"] = None if self.replaced_by is None else str(self.replaced_by)
        return row


def load_run(run_dir: Path) -> Run:
    """The run in `run_dir`; RunError if there is no readable metrics.json."""
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    if record is None:
        problem = "no metrics.json (not a run directory)" if not (run_dir / METRICS_FILE).exists() else \
            "metrics.json cannot be read"
        raise RunError(run_dir, problem)
    if not isinstance(record, dict):
        raise RunError(run_dir, f"metrics.json cannot be read (a JSON {type(record).__name__}, not a record)")
    meta = record.get("meta") or {}
    overrides = read_overrides(run_dir)
    return Run(
        path=run_dir,
        experiment=str(record.get("experiment", "?")),
        status=status_of(record),
        started_at=meta.get("started_at"),
        wall_time_s=meta.get("wall_time_s"),
        overrides=overrides,
        metrics=key_metrics(run_dir, record),
        git_commit=meta.get("git_commit"),
        error=record.get("error"),
        record=record,
        tags=tags_of(record, overrides),
    )


# --------------------------------------------------------------------------------------------------------
# Finding and filtering runs


def find_runs(root: Path) -> list[Run]:
    """Every run under `root` (itself included), oldest first."""
    root = Path(root)
    if not root.is_dir():
        raise RunError(root, "no such directory")
    runs = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))  # .hydra holds no runs
        if METRICS_FILE in files:
            try:
                runs.append(load_run(Path(directory)))
            except RunError:  # metrics.json is replaced atomically, so this one is damaged (a full disk, a copy)
                runs.append(unreadable_run(Path(directory)))
    mark_replaced(runs)
    return sorted(runs, key=lambda r: (r.started_at or "", str(r.path)))


def tags_of(record: dict, overrides: Sequence[str]) -> list[str]:
    """The run's `tags` (configs/base/run.yaml): from the config it ran with, else (a run refused before its
    config was valid) from its overrides."""
    tags = lookup(record.get("config") or {}, "tags")
    if tags is None:
        tags = override_map(overrides).get("tags")
    return [str(tag) for tag in tags] if isinstance(tags, list) else []


def unreadable_run(run_dir: Path) -> Run:
    """A run whose metrics.json cannot be read, listed with status `unreadable` rather than left out: its
    experiment from .hydra/hydra.yaml, its start time from .hydra/ (made when it started), its overrides."""
    name = lookup(read_yaml(run_dir / ".hydra" / "hydra.yaml") or {}, "hydra.job.config_name")
    try:
        started = datetime.datetime.fromtimestamp((run_dir / ".hydra").stat().st_mtime).astimezone().isoformat()
    except OSError:
        started = None
    return Run(path=run_dir, experiment=str(name or "?"), status=UNREADABLE, started_at=started, wall_time_s=None,
               overrides=read_overrides(run_dir), metrics={}, git_commit=None,
               error=f"{METRICS_FILE} cannot be read (damaged or cut short)", record={},
               tags=tags_of({}, read_overrides(run_dir)))


def mark_replaced(runs: Sequence[Run]) -> None:
    """Set `replaced_by` on every sweep job attempt that a later one replaced.

    `gradlab resume` runs job n of a sweep again into `<sweep>/resume-<k>/<n>`; the job's latest attempt is the
    one `latest_attempts` (the sweep summary's rule) names, and every other attempt of job n is replaced by it.
    A sweep directory is one holding multirun.yaml.
    """
    latest: dict[Path, dict[int, Path]] = {}
    for run in runs:
        if not run.path.name.isdigit():
            continue
        sweep = run.path.parent.parent if re.fullmatch(r"resume-\d+", run.path.parent.name) else run.path.parent
        if sweep not in latest:
            if not (sweep / "multirun.yaml").is_file():
                latest[sweep] = {}
            else:
                from gradlab.runner.sweep_summary import latest_attempts  # Hydra's import: only where there are sweeps

                latest[sweep] = latest_attempts(sweep)
        newest = latest[sweep].get(int(run.path.name))
        if newest is not None and newest != run.path:
            run.replaced_by = newest


def has_value(run: Run, key: str, value: Any) -> bool:
    """Whether the run's `key` is `value`: as overridden, or else in the config it ran with."""
    overridden = override_map(run.overrides)
    actual = overridden[key] if key in overridden else lookup(run.record.get("config") or {}, key)
    return actual == value


def select(runs: Iterable[Run], experiments: Sequence[str] = (), statuses: Sequence[str] = (),
           values: Sequence[str] = (), tags: Sequence[str] = (), replaced: bool = False) -> list[Run]:
    """The runs of any of `experiments`, with any of `statuses`, every `key=value` of `values` and any of `tags`;
    the attempts a later `gradlab resume` replaced only with `replaced`."""
    wanted = []
    for item in values:
        if "=" not in item or item.startswith("="):
            raise RunError(item, "an override filter is key=value, e.g. optimizer.lr=0.1")
        wanted.append(parse_override(item))
    return [
        run for run in runs
        if (not experiments or run.experiment in experiments)
        and (not statuses or run.status in statuses)
        and all(has_value(run, key, value) for key, value in wanted)
        and (not tags or any(tag in run.tags for tag in tags))
        and (replaced or run.replaced_by is None)
    ]


# --------------------------------------------------------------------------------------------------------
# Showing runs: a text table, JSON, CSV


def fmt(value: Any, width: int = 40) -> str:
    """A value for a table cell: numbers to 4 significant digits, lists as compact JSON (shortened)."""
    if value is None:
        return "-"
    if value is ABSENT:
        return "(absent)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 3] + "..."


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart, a rule under the header."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def display_path(path: Path) -> str:
    """`path` relative to the working directory where it lies below it, else as given."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _started(run: Run) -> str:
    return (run.started_at or "-").replace("T", " ")[:19]


def _wall(run: Run) -> str:
    return f"{run.wall_time_s:.1f} s" if _is_number(run.wall_time_s) else "-"


def _commit(run: Run) -> str:
    if not run.git_commit:
        return "-"
    commit, dirty, diff = run.git_commit.partition("-dirty")
    return commit[:8] + (dirty + diff[:7] if dirty else "")


def _status(run: Run) -> str:
    return run.status + (" (replaced)" if run.replaced_by is not None else "")


def _metrics_cell(run: Run) -> str:
    return " ".join(f"{k}={fmt(v)}" for k, v in run.metrics.items() if v is not None) or "-"


def shorten(text: str, width: int) -> str:
    """`text` cut to `width` characters, the cut marked with "..."."""
    return text if len(text) <= width else text[: max(width - 3, 0)] + "..."


MIN_CELL = 12  # the narrowest an overrides or metrics cell is cut to, however long the paths


def runs_table(runs: Sequence[Run], *, wide: bool = False, width: int | None = None) -> str:
    """The runs as a text table. By default it fits `width` columns (the terminal's; 100 when not a terminal):
    status, wall time, overrides and key metrics (cut with "..." to fit) and the path, which holds the experiment
    and start time for every run Hydra placed. `wide`: every column in full, with experiment, start time, tags
    and commit."""
    if wide:
        header = ["experiment", "started", "status", "wall", "overrides", "key metrics", "tags", "commit", "path"]
        rows = [[run.experiment, _started(run), _status(run), _wall(run), " ".join(run.overrides) or "-",
                 _metrics_cell(run), ",".join(run.tags) or "-", _commit(run), display_path(run.path)] for run in runs]
        return render_table(header, rows)
    width = width or shutil.get_terminal_size((100, 24)).columns
    header = ["status", "wall", "overrides", "key metrics", "path"]
    rows = [[_status(run), _wall(run), " ".join(run.overrides) or "-", _metrics_cell(run), display_path(run.path)]
            for run in runs]
    natural = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    room = width - natural[0] - natural[1] - natural[4] - 2 * (len(header) - 1)  # for overrides and metrics
    overrides_width = max(min(natural[2], max(room // 2, room - natural[3])), MIN_CELL)
    metrics_width = max(room - overrides_width, MIN_CELL)
    rows = [[status, wall, shorten(overrides, overrides_width), shorten(metrics, metrics_width), path]
            for status, wall, overrides, metrics, path in rows]
    return render_table(header, rows)


def runs_json(runs: Sequence[Run]) -> str:
    return json.dumps([run.as_json() for run in runs], indent=2)


def runs_csv(runs: Sequence[Run]) -> str:
    """One row per run; one column per key metric (the union over the runs), the overrides space-separated."""
    metric_names = list(dict.fromkeys(name for run in runs for name in run.metrics))
    header = ["experiment", "started_at", "status", "wall_time_s", "overrides", *metric_names, "tags", "git_commit",
              "path", "replaced_by"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for run in runs:
        writer.writerow([run.experiment, run.started_at, run.status, run.wall_time_s, " ".join(run.overrides),
                         *(json.dumps(run.metrics[m]) if isinstance(run.metrics.get(m), list) else run.metrics.get(m)
                           for m in metric_names),
                         ",".join(run.tags), run.git_commit, str(run.path),
                         "" if run.replaced_by is None else str(run.replaced_by)])
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------------
# Comparing runs: only what differs, side by side


def _same(values: Sequence[Any]) -> bool:
    """Equal bit for bit (JSON floats print their shortest exact repr, so equal text is equal bits)."""
    texts = {repr(v) if v is ABSENT else json.dumps(v, sort_keys=True) for v in values}
    return len(texts) == 1


def differing(trees: Sequence[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """[(key, [value in each tree])] for the keys whose values are not all equal; `ABSENT` where a tree lacks it."""
    keys = list(dict.fromkeys(key for tree in trees for key in tree))
    rows = []
    for key in keys:
        values = [tree.get(key, ABSENT) for tree in trees]
        if not _same(values):
            rows.append((key, values))
    return rows


def fmt_exact(values: Sequence[Any]) -> list[str]:
    """Cells for values that differ: 4 significant digits, or every digit where 4 would hide the difference."""
    cells = [fmt(v) for v in values]
    if len(set(cells)) < len({repr(v) for v in values}):
        cells = [fmt(repr(v) if isinstance(v, float) else v, 60) for v in values]
    return cells


def labels(paths: Sequence[Path]) -> list[str]:
    """Short names for runs: their paths below the deepest common directory."""
    resolved = [Path(p).resolve() for p in paths]
    common = Path(os.path.commonpath(resolved)) if len(resolved) > 1 else resolved[0].parent
    names = [str(p.relative_to(common)) if p != common else p.name for p in resolved]
    return names if len(set(names)) == len(names) else [str(p) for p in paths]


def section(title: str, rows: list[tuple[str, list[Any]]], names: Sequence[str], total: int) -> str:
    if not rows:
        return f"{title}: identical ({total} keys)"
    table = render_table(["key", *names], [[key, *fmt_exact(values)] for key, values in rows])
    return f"{title}: {len(rows)} of {total} keys differ\n" + "\n".join("  " + line for line in table.splitlines())


def compare(run_dirs: Sequence[Path]) -> str:
    """The run, config, metric and version differences of two or more runs, side by side."""
    runs = [load_run(Path(d)) for d in run_dirs]
    names = labels([run.path for run in runs])
    common = os.path.commonpath([str(run.path.resolve()) for run in runs])
    lines = [f"compare {len(runs)} runs under {display_path(Path(common))}:"]
    for name, run in zip(names, runs, strict=True):
        lines.append(f"  {name}: {run.experiment}, {run.status}, started {_started(run)}"
                     + (f", overrides: {' '.join(run.overrides)}" if run.overrides else ""))
    parts = {
        "run": [{"experiment": r.experiment, "status": r.status, "error": r.error, "signal": r.record.get("signal"),
                 "warnings": r.record.get("warnings") or None} for r in runs],
        "config": [flatten(r.record.get("config") or {}) for r in runs],
        "metrics": [metrics_of(r.record) for r in runs],
        "versions": [versions_of(r.record) for r in runs],
    }
    for title, trees in parts.items():
        rows = differing(trees)
        if title == "run" and not rows:
            continue
        lines.append(section(title, rows, names, len({k for tree in trees for k in tree})))
    return "\n".join(lines)


def as_float(value: Any) -> float | None:
    """A metric as a float: numbers, and the 'NaN' / 'Infinity' strings metrics.json writes for them."""
    if _is_number(value):
        return float(value)
    if value in ("NaN", "Infinity", "-Infinity"):
        return float(value.replace("Infinity", "inf"))
    return None


def max_differences(old: Any, new: Any) -> tuple[float, float] | None:
    """(max |new - old|, max |new - old| / |old|) over a number or equally shaped lists of numbers; else None."""
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return None
        pairs = [max_differences(a, b) for a, b in zip(old, new, strict=True)]
        if any(p is None for p in pairs):
            return None
        return max((p[0] for p in pairs), default=0.0), max((p[1] for p in pairs), default=0.0)  # type: ignore[index]
    a, b = as_float(old), as_float(new)
    if a is None or b is None:
        return None
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0, 0.0
    absolute = abs(b - a)
    relative = absolute / abs(a) if a != 0 else math.inf
    return absolute, relative
