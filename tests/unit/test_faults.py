"""Faults of the disk, in this process (issue 23 item 3): the numbers are written first, every file goes through a
temporary name, and a file that cannot be written fails the run (exit 1, one line naming the file and the OSError)
without costing a number or leaving a truncated file. The real `ulimit -f` case is in tests/e2e/test_faults.py."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from gradlab.runner import records
from gradlab.runner.records import atomic_open, os_error_line, write_json_atomic
from gradlab.runner.run import CONFIG_DIR, BaseConfig, RunContext, execute

BASE = {k: v for k, v in OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "base" / "run.yaml")).items()
        if k not in ("defaults", "hydra")} | {"scale": "main", "compile_cache": None, "figures": False}


@dataclasses.dataclass
class StandIn(BaseConfig):
    """A stand-in experiment: the run contract's keys only."""


def _execute(tmp_path: Path, main, **overrides) -> tuple[int, dict, Path]:
    out = tmp_path / "run"
    code = execute("stand_in", StandIn, main, {**BASE, **overrides}, out)
    return code, json.loads((out / "metrics.json").read_text()), out


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != ".gradlab-claim")


def test_atomic_open_leaves_the_old_file_and_no_temporary_one_when_the_write_fails(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with pytest.raises(OSError), atomic_open(target) as handle:
        handle.write("half of the new")
        raise OSError(errno.EFBIG, "File too large")
    assert target.read_text() == "old\n" and _files(tmp_path) == ["table.csv"]
    with atomic_open(target) as handle:
        handle.write("new\n")
    assert target.read_text() == "new\n" and _files(tmp_path) == ["table.csv"]


def test_an_os_error_names_the_final_file_not_the_temporary_one(tmp_path):
    err = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / ".plot_data.npz.k2j_x9ab.tmp"))
    assert os_error_line(err) == "plot_data.npz: [Errno 28] No space left on device"
    assert os_error_line(OSError(errno.EFBIG, "File too large")) == "[Errno 27] File too large"


def test_metrics_json_is_written_before_any_large_file(tmp_path, monkeypatch):
    """When plot_data.npz and the experiment's own files are written, metrics.json already holds every number."""
    seen = {}
    real = records.atomic_open

    def spy(path, *args, **kwargs):
        seen[Path(path).name] = json.loads((Path(path).parent / "metrics.json").read_text())
        return real(path, *args, **kwargs)

    monkeypatch.setattr("gradlab.runner.plotting.atomic_open", spy)

    def table(path: Path) -> None:
        seen[path.name] = json.loads((path.parent / "metrics.json").read_text())
        records.write_text_atomic(path, "a,b\n")

    def main(cfg, ctx: RunContext) -> dict:
        ctx.keep(curve=np.arange(10.0))
        ctx.save_later("table.csv", table)
        return {"fit": {"loss": 0.25}}

    code, record, out = _execute(tmp_path, main)
    assert code == 0 and record["status"] == "ok"
    assert seen["plot_data.npz"]["fit"] == {"loss": 0.25} and seen["plot_data.npz"]["phase"] == "artifacts"
    assert seen["table.csv"]["fit"] == {"loss": 0.25}


def _too_large():
    """A writer that fails as `ulimit -f` makes it fail: part of the file written, then EFBIG."""
    def write(path: Path) -> None:
        with atomic_open(path) as handle:
            handle.write("x" * 100)
            raise OSError(errno.EFBIG, "File too large")
    return write


def test_a_file_that_cannot_be_written_fails_the_run_keeping_every_number(tmp_path, capsys):
    def main(cfg, ctx: RunContext) -> dict:
        ctx.keep(curve=np.arange(10.0))
        ctx.save_later("grid_errors.csv", _too_large())
        ctx.save_later("small.txt", lambda path: records.write_text_atomic(path, "kept\n"))
        return {"fit": {"loss": 0.25}}

    code, record, out = _execute(tmp_path, main)
    assert code == 1  # a runtime failure, not bad input (2)
    assert record["status"] == "failed" and record["fit"] == {"loss": 0.25}
    assert record["error"] == "cannot write grid_errors.csv: [Errno 27] File too large"
    # no truncated grid_errors.csv, and the files after it still written
    assert _files(out) == ["metrics.json", "plot_data.npz", "small.txt"]
    err = capsys.readouterr().err
    assert err.splitlines() == ["gradlab: stand_in failed: cannot write grid_errors.csv: [Errno 27] File too large"]
    assert "config error" not in err and "Traceback" not in err


def test_a_file_written_by_main_that_fails_is_a_runtime_error_naming_it(tmp_path, capsys):
    def main(cfg, ctx: RunContext) -> dict:
        ctx.partial["first"] = {"loss": 0.5}
        with atomic_open(ctx.path("early.csv")) as handle:
            handle.write("x")
            raise OSError(errno.ENOSPC, "No space left on device")  # as write() raises it: no file name
        return {}

    code, record, out = _execute(tmp_path, main)
    assert code == 1 and record["status"] == "failed" and record["first"] == {"loss": 0.5}
    assert record["error"] == "cannot write early.csv: [Errno 28] No space left on device"
    assert "early.csv" not in _files(out) and not [f for f in _files(out) if f.endswith(".tmp")]
    assert "config error" not in capsys.readouterr().err


def test_a_run_dir_made_read_only_mid_run_records_failed_with_the_numbers(tmp_path, monkeypatch, capsys):
    """The folder turns read-only while the run computes: no new file can be made there, but metrics.json (a
    file of its own) is rewritten in place with the numbers and the OSError. As root, chmod does not stop a write,
    so creating a file in that folder is refused the way the kernel refuses it to a user."""
    out = tmp_path / "run"
    real_mkstemp = tempfile.mkstemp

    def refusing_mkstemp(*args, dir=None, **kwargs):  # noqa: A002 - tempfile's own name
        if Path(dir) == out and (out / "read-only").exists():
            raise PermissionError(errno.EACCES, "Permission denied", str(Path(dir) / ".x.tmp"))
        return real_mkstemp(*args, dir=dir, **kwargs)

    if os.geteuid() == 0:
        monkeypatch.setattr(records.tempfile, "mkstemp", refusing_mkstemp)

    def main(cfg, ctx: RunContext) -> dict:
        ctx.keep(curve=np.arange(10.0))
        (ctx.out_dir / "read-only").touch()
        os.chmod(ctx.out_dir, 0o555)
        return {"fit": {"loss": 0.25}}

    try:
        code, record, _ = _execute(tmp_path, main)
    finally:
        os.chmod(out, 0o755)
    assert code == 1 and record["status"] == "failed" and record["fit"] == {"loss": 0.25}
    assert record["error"] == "cannot write plot_data.npz: [Errno 13] Permission denied"
    assert "plot_data.npz" not in _files(out)
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_failed_write_of_the_record_leaves_no_truncated_record(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    write_json_atomic(path, {"status": "running"})

    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(records.os, "fsync", fail)
    with pytest.raises(OSError):
        write_json_atomic(path, {"status": "ok", "numbers": list(range(1000))})
    assert json.loads(path.read_text()) == {"status": "running"} and _files(tmp_path) == ["metrics.json"]


def test_tensorboard_event_file_that_cannot_be_written_fails_the_run_and_leaves_no_part(tmp_path, monkeypatch):
    pytest.importorskip("tensorboardX")

    def broken(folder, *args, **kwargs):
        (folder / "events.out.tfevents.1.host").write_text("half")
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr("gradlab.runner.run.tracking.write", broken)
    code, record, out = _execute(tmp_path, lambda cfg, ctx: {"fit": {"loss": 0.25}}, tracking={"tensorboard": True})
    assert code == 1 and record["fit"] == {"loss": 0.25}
    assert record["error"] == "cannot write the TensorBoard event file: [Errno 27] File too large"
    assert not [f for f in _files(out) if "tfevents" in f or f.startswith(".tensorboard")]



def test_a_record_too_large_to_write_still_ends_failed_not_running_or_crashed(tmp_path, monkeypatch, capsys):
    """`ulimit -f 4`: the record with the results does not fit; the record without them does, so the run ends
    `failed` with the OSError (one line, exit 1) instead of staying `running` (read as `crashed` later)."""
    real = records.write_json_atomic

    def limited(path, payload):
        if "fit" in payload:
            raise OSError(errno.EFBIG, "File too large")
        return real(path, payload)

    monkeypatch.setattr("gradlab.runner.run.write_json_atomic", limited)
    with pytest.raises(SystemExit) as ended:
        _execute(tmp_path, lambda cfg, ctx: {"fit": {"loss": 0.25}})
    assert ended.value.code == 1
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "failed"
    assert record["error"] == "cannot write metrics.json: [Errno 27] File too large (the results did not fit)"
    err = capsys.readouterr().err
    assert err.splitlines() == [f"gradlab: stand_in failed: cannot write metrics.json: [Errno 27] File too large "
                                f"({tmp_path / 'run' / 'metrics.json'})"]
