"""Faults a user meets as a process (issue 23 item 3): a file-size limit (`ulimit -f`) that plot_data.npz exceeds
while the numbers fit. No number is lost, no record says `running`, no traceback, never "config error". (The
in-process cases, a read-only run dir and TensorBoard's event file among them, are in tests/unit/test_faults.py.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import CLI_ENV, REPO

FILE_SIZE_LIMIT = 50 * 1024  # `ulimit -f 50`: metrics.json (~5 KB) fits, plot_data.npz of a 101 x 101 grid does not


# the limit set in the child itself, which then execs the command (a preexec_fn would run Python between fork and
# exec in this process, where JAX's threads make fork unsafe); SIGXFSZ ignored, so a write past the limit fails
# with EFBIG instead of killing, as under a shell's `ulimit -f`
LIMITED = ("import os, resource, signal, sys; "
           f"resource.setrlimit(resource.RLIMIT_FSIZE, ({FILE_SIZE_LIMIT}, {FILE_SIZE_LIMIT})); "
           "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")


@pytest.mark.slow
def test_under_ulimit_f_the_numbers_are_kept_and_no_truncated_file_is_left(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", LIMITED, str(REPO / "experiments" / "logreg.py"), f"hydra.run.dir={run_dir}",
         "grid.resolution=101", "figures=false", "compile_cache=null"],
        cwd=tmp_path, env=CLI_ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr  # a runtime failure, never "config error" (2)
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "failed"
    assert record["error"].startswith("cannot write plot_data.npz: [Errno 27] File too large")
    assert "grid_errors.csv: [Errno 27]" in record["error"]  # tried too, after the numbers
    assert isinstance(record["fit"]["loss"], float) and record["newton"]["converged"] is True
    files = {path.name for path in run_dir.iterdir()}
    assert "plot_data.npz" not in files and "grid_errors.csv" not in files and "data.csv" in files
    assert not [name for name in files if name.endswith(".tmp")]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("gradlab")]
    assert lines == [f"gradlab: logreg failed: {record['error']}"]
    assert "Traceback" not in proc.stderr and "config error" not in proc.stderr
