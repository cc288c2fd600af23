"""TensorBoard tracking: the event file a run writes holds its hparams, final metrics and per-step curves.

The file is read back with tensorboardX's protobufs (a TFRecord reader of a few lines), and with TensorBoard's
own EventAccumulator where TensorBoard is installed.
"""

from __future__ import annotations

import math
import struct

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import validated_config

from gradlab.runner import tracking
from gradlab.runner.config import ConfigError, validate
from gradlab.runner.tracking import TrackingConfig, thinned_steps

needs_tensorboardx = pytest.mark.skipif(not tracking.available(),
                                        reason="the `tracking` extra (tensorboardX) is not installed")

CONFIG = {"precision": "float64", "compile_cache": "/somewhere", "memory_budget_gb": None,
          "objective": "fit.gap_to_newton", "tracking": {"tensorboard": True}, "tags": ["baseline", "lr-study"],
          "optimizer": {"name": "momentum", "lr": 0.05, "momentum": 0.9, "nesterov": False},
          "train": {"steps": 5000, "init": [0.0, 0.0]}}
RESULTS = {"config": CONFIG, "fit": {"loss": 7.5, "gap_to_newton": jnp.asarray(1e-6), "converged": True,
                                     "phi": np.array([0.1, 1.2])},
           "newton": {"iterations": np.int64(6)}, "plots": {"a.png": "a claim"}, "warnings": ["a warning"]}


def read_events(path):
    """Every Event in a TFRecord file: (uint64 length, uint32 crc, payload, uint32 crc) records."""
    from tensorboardX.proto.event_pb2 import Event

    data, events, at = path.read_bytes(), [], 0
    while at < len(data):
        (length,) = struct.unpack("<Q", data[at:at + 8])
        event = Event()
        event.ParseFromString(data[at + 12:at + 12 + length])
        events.append(event)
        at += 12 + length + 4
    return events


def contents(path):
    """(hparams {name: value}, session status, scalars {tag: [(step, value)]}) of an event file."""
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    hparams, status, scalars = {}, None, {}
    for event in read_events(path):
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == "hparams":
                data = HParamsPluginData.FromString(value.metadata.plugin_data.content)
                if data.HasField("session_start_info"):
                    for name, v in data.session_start_info.hparams.items():
                        hparams[name] = getattr(v, v.WhichOneof("kind"))
                if data.HasField("session_end_info"):
                    status = Status.Name(data.session_end_info.status)
            elif value.WhichOneof("value") == "simple_value":
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return hparams, status, scalars


@pytest.mark.slow
@needs_tensorboardx
def test_the_event_file_holds_the_hparams_final_metrics_and_thinned_curves(tmp_path):
    loss = np.linspace(10.0, 7.5, 5000)
    path = tracking.write(tmp_path, CONFIG, RESULTS, {"train/loss": loss, "weights": np.ones((5000, 2))},
                          experiment="logreg")
    assert path.parent == tmp_path and path.name.startswith("events.out.tfevents.")
    hparams, status, scalars = contents(path)
    assert hparams == {"experiment": "logreg", "precision": "float64", "objective": "fit.gap_to_newton",
                       "optimizer.name": "momentum", "optimizer.lr": 0.05, "optimizer.momentum": 0.9,
                       "optimizer.nesterov": False, "train.steps": 5000.0, "train.init": "[0.0, 0.0]",
                       "tags": "baseline,lr-study"}  # one text: the dashboard filters a column by regex
    assert status == "STATUS_SUCCESS"
    assert {tag: v for tag, v in scalars.items() if not tag.startswith("train/") and tag != "weights/0"} == {
        "metrics/fit.loss": [(4999, 7.5)], "metrics/fit.gap_to_newton": [(4999, pytest.approx(1e-6))],
        "metrics/fit.converged": [(4999, 1.0)], "metrics/newton.iterations": [(4999, 6.0)],
        "objective": [(4999, pytest.approx(1e-6))], "weights/1": scalars["weights/1"]}
    steps = [s for s, _ in scalars["train/loss"]]
    assert len(steps) == tracking.MAX_POINTS and steps[0] == 0 and steps[-1] == 4999
    np.testing.assert_allclose([v for _, v in scalars["train/loss"]], loss[steps], rtol=1e-6)  # float32 in the file
    assert len(scalars["weights/0"]) == len(scalars["weights/1"]) == tracking.MAX_POINTS


@needs_tensorboardx
def test_a_failed_run_is_a_failed_session_with_what_it_has(tmp_path):
    path = tracking.write(tmp_path, CONFIG, {"config": CONFIG}, {"train/loss": [1.0, math.nan]}, status="failed")
    hparams, status, scalars = contents(path)
    assert status == "STATUS_FAILURE" and hparams["optimizer.lr"] == 0.05
    assert scalars["train/loss"][0] == (0, 1.0) and math.isnan(scalars["train/loss"][1][1])
    assert "objective" not in scalars


@needs_tensorboardx
def test_tensorboard_reads_the_file_where_it_is_installed(tmp_path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                      reason="TensorBoard is not installed (the test reads the file itself too)")
    tracking.write(tmp_path, CONFIG, RESULTS, {"train/loss": np.linspace(1, 0, 10)})
    events = accumulator.EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    events.Reload()
    assert {"train/loss", "objective", "metrics/fit.loss"} <= set(events.Tags()["scalars"])
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx(np.linspace(1, 0, 10))
    assert events.SummaryMetadata(tracking.SESSION_START_TAG).plugin_data.plugin_name == "hparams"


@pytest.mark.parametrize("length", [0, 1, 2, 1999, 2000, 2001, 10**7 + 3])
def test_thinned_steps_keep_first_and_last_and_at_most_max_points(length):
    steps = thinned_steps(length)
    assert len(steps) == min(length, tracking.MAX_POINTS)
    if length:
        assert steps[0] == 0 and steps[-1] == length - 1 and np.all(np.diff(steps) > 0)


def test_tracking_on_without_the_extra_is_a_one_line_config_error_naming_the_extra(monkeypatch):
    monkeypatch.setattr(tracking, "available", lambda: False)
    with pytest.raises(ConfigError) as err:
        validate({"tensorboard": True}, TrackingConfig)
    assert str(err.value) == ("config error: tensorboard=True is not allowed: false, unless the `tracking` extra "
                              "is installed (pip install -e '.[tracking]': tensorboardX)")
    assert validate({"tensorboard": False}, TrackingConfig).tensorboard is False


def test_every_experiment_config_has_tracking_off_and_logreg_refuses_it_without_the_extra(monkeypatch):
    assert validated_config("logreg").tracking.tensorboard is False
    monkeypatch.setattr(tracking, "available", lambda: False)
    with pytest.raises(ConfigError, match=r"tracking\.tensorboard=True .*\[tracking\]"):
        validated_config("logreg", "tracking.tensorboard=true")


@needs_tensorboardx
def test_a_logreg_run_with_tracking_writes_its_loss_curve_and_hparams(run_experiment):
    code, metrics, run_dir = run_experiment("logreg", "tracking.tensorboard=true", "grid.resolution=11",
                                            "train.steps=30", "optimizer.lr=0.1", "tags=[lr-study]")
    assert code == 0, metrics.get("error")
    (path,) = run_dir.glob("events.out.tfevents.*")
    hparams, status, scalars = contents(path)
    assert status == "STATUS_SUCCESS" and hparams["optimizer.lr"] == 0.1 and hparams["experiment"] == "logreg"
    assert hparams["tags"] == "lr-study" and metrics["config"]["tags"] == ["lr-study"]  # in the record, in the hparams
    assert len(scalars["train/loss"]) == 30
    assert scalars["objective"][0][1] == pytest.approx(metrics["fit"]["gap_to_newton"], rel=1e-6)
