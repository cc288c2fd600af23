"""The Makefile's choice of interpreter: `make test PYTHON=...` on an environment made by another interpreter is
refused in one line before anything runs (`make -n`: the commands are only printed, so nothing is installed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
VENV = Path(sys.prefix)  # the environment running the tests stands in for .venv (VENV= overrides the Makefile's)
BASE_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"


def make_dry_run(*variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-n", "--no-print-directory", "test", f"VENV={VENV}", *variables], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("named", ["fake", "missing"])
def test_a_named_python_other_than_the_environments_is_refused_in_one_line(tmp_path, named):
    python = tmp_path / "python3"
    if named == "fake":
        python.write_text("#!/bin/sh\necho 3.99.0 /elsewhere\n")  # what the Makefile asks: version, base prefix
        python.chmod(0o755)
    proc = make_dry_run(f"PYTHON={python}")
    said = f"({'3.99.0 /elsewhere' if named == 'fake' else 'cannot be run'})"
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert f"{VENV} runs Python {sys.version.split()[0]} {sys.base_prefix}, not PYTHON={python} {said}" in line
    assert f"rm -rf {VENV}, then make again" in line


@pytest.mark.skipif(not BASE_PYTHON.exists(), reason=f"no {BASE_PYTHON.name} in {sys.base_prefix}/bin")
def test_the_environments_own_interpreter_or_none_named_goes_on():
    for variables in ([f"PYTHON={BASE_PYTHON}"], []):
        proc = make_dry_run(*variables)
        assert proc.returncode == 0, proc.stderr
        assert "-m pytest" in proc.stdout  # the suite's command, printed only
