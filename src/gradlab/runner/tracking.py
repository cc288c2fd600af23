"""TensorBoard tracking: every run's hyperparameters, final metrics and per-step curves as an event file.

Off by default; `tracking.tensorboard=true` (configs/base/run.yaml) turns it on and needs the `tracking` extra
(`pip install -e '.[tracking]'`: tensorboardX, no TensorFlow). The event file goes into the run directory, so

    python experiments/logreg.py -m optimizer.lr=0.01,0.1,1.0 tracking.tensorboard=true
    tensorboard --logdir outputs/logreg/multirun

shows, per run,
- HParams: the validated config flattened to dotted keys (`optimizer.lr`, lists as text; not the keys of
  NOT_HPARAMS, which only say where a run is kept), the experiment's name and the run's status (a failed run
  shows as failed); the dashboard builds its table from all runs under the log directory, so the jobs of a
  sweep are compared side by side; the run's `tags` as one text, `baseline,lr-study`, so the dashboard's
  regex filter on that column (`baseline`) picks the runs with a tag;
- Scalars `metrics/<dotted name>`: every numeric scalar the run returned (`metrics/fit.gap_to_newton`), and
  `objective`, the value a sweeper optimises; the HParams table shows each as a column;
- Scalars `<tag>`: the per-step series the experiment gave `ctx.curve(tag, values)` (`train/loss`), at most
  MAX_POINTS evenly spaced steps each (first and last kept; TensorBoard itself shows 1,000 per series).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gradlab.runner.config import checked
from gradlab.runner.records import to_jsonable

EXTRA = "pip install -e '.[tracking]'"
MAX_POINTS = 2000
PLUGIN = "hparams"
SESSION_START_TAG, SESSION_END_TAG = "_hparams_/session_start_info", "_hparams_/session_end_info"
# results that are not metrics: the config (written as hparams), the figures' names, the warnings' text
NOT_METRICS = ("config", "plots", "plot_errors", "warnings")
# config keys that say where and how a run is kept, not what it computes
NOT_HPARAMS = ("compile_cache", "memory_budget_gb", "tracking")


def available() -> bool:
    """Whether tensorboardX (the `tracking` extra) is installed."""
    return importlib.util.find_spec("tensorboardX") is not None


@dataclasses.dataclass
class TrackingConfig:
    """`tracking:` in configs/base/run.yaml."""

    tensorboard: bool = checked(lambda on: not on or available(),
                                f"false, unless the `tracking` extra is installed ({EXTRA}: tensorboardX)")


def flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists and other leaves are kept as they are."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def hparam_values(config: Mapping, experiment: str | None = None) -> dict[str, str | float | bool]:
    """The config as HParams values: numbers, booleans and text (a list becomes its JSON text; null is left out).

    The keys of NOT_HPARAMS (the compilation cache's path, the memory budget, tracking itself) are left out.
    """
    values: dict[str, str | float | bool] = {"experiment": experiment} if experiment else {}
    for key, value in flatten(config).items():
        if value is None or key.split(".")[0] in NOT_HPARAMS:
            continue
        if key == "tags":  # "baseline,lr-study": the dashboard's filter on a text column is a regex
            values[key] = ",".join(map(str, value))
        elif isinstance(value, bool | str):
            values[key] = value
        elif isinstance(value, int | float):
            values[key] = float(value)
        else:
            values[key] = json.dumps(value, default=str)
    return values


def final_metrics(results: Mapping, objective: str | None = None) -> dict[str, float]:
    """Every numeric scalar of a run's results as {"metrics/<dotted name>": value}, plus `objective` if it is one.

    Lists (per-layer values, arrays) are series, not final metrics, and are left out; booleans count as 0/1;
    NumPy and JAX scalars count as numbers.
    """
    flat = flatten(to_jsonable({k: v for k, v in results.items() if k not in NOT_METRICS}))
    metrics = {f"metrics/{k}": float(v) for k, v in flat.items() if isinstance(v, int | float)}
    if objective and isinstance(flat.get(objective), int | float):
        metrics["objective"] = float(flat[objective])
    return metrics


def thinned_steps(length: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """At most max_points step indices, evenly spread over 0..length-1, the first and last always included."""
    if length <= max_points:
        return np.arange(length)
    return np.unique(np.linspace(0, length - 1, max_points).round().astype(int))


def _hparams_summaries(hparams: Mapping[str, Any], status: str, started: float) -> tuple[Any, Any]:
    """The HParams plugin's session start (hyperparameters) and end (status) summaries, as TensorBoard reads them.

    No experiment summary is written: TensorBoard then builds the table from the sessions of all runs in the
    log directory, so the runs of different sweeps and experiments share one table.
    """
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionEndInfo, SessionStartInfo
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    def summary(tag: str, data: Any) -> Summary:
        plugin = SummaryMetadata.PluginData(plugin_name=PLUGIN, content=data.SerializeToString())
        return Summary(value=[Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))])

    start = SessionStartInfo(start_time_secs=started)
    for key, value in hparams.items():
        if isinstance(value, bool):
            start.hparams[key].bool_value = value
        elif isinstance(value, str):
            start.hparams[key].string_value = value
        else:
            start.hparams[key].number_value = value
    end = SessionEndInfo(status=Status.Value("STATUS_SUCCESS" if status == "ok" else "STATUS_FAILURE"),
                         end_time_secs=time.time())
    return (summary(SESSION_START_TAG, HParamsPluginData(session_start_info=start, version=0)),
            summary(SESSION_END_TAG, HParamsPluginData(session_end_info=end, version=0)))


def write(out_dir: Path, config: Mapping, results: Mapping, curves: Mapping[str, Any], *,
          experiment: str | None = None, status: str = "ok") -> Path:
    """Write one run to a TensorBoard event file in `out_dir`; return the file's path.

    `config`: the validated config (a dict); `results`: what the run returned (its `config` key is ignored);
    `curves`: {tag: per-step values} (a 2-D array is one series per column, `tag/0`, `tag/1`, ...);
    `status`: the run's status, shown by the HParams dashboard (anything but `ok` shows as failed).
    """
    from tensorboardX import FileWriter
    from tensorboardX.summary import scalar

    series = {}
    for tag, values in curves.items():
        array = np.asarray(values, dtype=float)
        columns = array.reshape(len(array), -1) if array.ndim > 1 else array.reshape(-1, 1)
        for j in range(columns.shape[1]):
            series[tag if columns.shape[1] == 1 else f"{tag}/{j}"] = columns[:, j]
    last_step = max((len(v) - 1 for v in series.values()), default=0)
    started = time.time()
    writer = FileWriter(str(out_dir), max_queue=1000, flush_secs=3600)
    try:
        start, end = _hparams_summaries(hparam_values(config, experiment), status, started)
        writer.add_summary(start, 0, started)
        for tag, values in series.items():
            for step in thinned_steps(len(values)):
                writer.add_summary(scalar(tag, float(values[step])), int(step), started)
        for tag, value in final_metrics(results, config.get("objective")).items():
            writer.add_summary(scalar(tag, value), last_step, started)
        writer.add_summary(end, last_step, started)
    finally:
        writer.close()
    return max(Path(out_dir).glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime_ns)
