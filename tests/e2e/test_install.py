"""The package as a user installs it: the wheel built from this checkout, installed with the locked dependencies
into a fresh environment, runs an experiment from an empty folder and writes outputs/ there."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import CLI_ENV, REPO

UV = Path(sys.executable).parent / "uv"  # bootstrapped into the environment by `make setup`

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not UV.exists(), reason="uv is not installed next to this Python (make setup)")]


def _uv(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(UV), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**CLI_ENV, "UV_NO_PROGRESS": "1"})
    assert proc.returncode == 0, proc.stderr
    return proc


def test_the_wheel_installed_elsewhere_runs_an_experiment_from_an_empty_folder(tmp_path):
    _uv("build", "--wheel", "--out-dir", str(tmp_path / "dist"), cwd=REPO)
    (wheel,) = (tmp_path / "dist").glob("gradlab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    configs = {Path(name).relative_to("gradlab/configs").as_posix() for name in names
               if name.startswith("gradlab/configs/") and name.endswith(".yaml")}
    in_checkout = {p.relative_to(REPO / "src/gradlab/configs").as_posix()
                   for p in (REPO / "src/gradlab/configs").rglob("*.yaml")}
    assert configs == in_checkout  # every default travels with the package

    locked = _uv("export", "--frozen", "--no-hashes", "--no-emit-project", "--no-dev", cwd=REPO).stdout
    (tmp_path / "locked.txt").write_text(locked)
    env_python = tmp_path / "env" / "bin" / "python"
    _uv("venv", "--quiet", "--python", sys.executable, str(tmp_path / "env"), cwd=tmp_path)
    _uv("pip", "install", "--quiet", "--python", str(env_python), "-r", str(tmp_path / "locked.txt"), str(wheel),
        cwd=tmp_path)

    empty = tmp_path / "somewhere"
    empty.mkdir()
    run = subprocess.run([str(tmp_path / "env" / "bin" / "gradlab"), "softmax_jacobian", "figures=false"], cwd=empty,
                         capture_output=True, text=True, timeout=300, env={**CLI_ENV, "PYTHONPATH": ""})
    assert run.returncode == 0, run.stderr
    (metrics,) = (empty / "outputs" / "softmax_jacobian").glob("*/*/metrics.json")
    record = json.loads(metrics.read_text())
    assert record["status"] == "ok"
    imported_from = subprocess.run([str(env_python), "-c", "import gradlab; print(gradlab.__file__)"], cwd=empty,
                                   capture_output=True, text=True, timeout=60, env={**CLI_ENV, "PYTHONPATH": ""})
    assert str(tmp_path / "env") in imported_from.stdout  # the installed copy ran, not this checkout
