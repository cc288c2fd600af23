"""Problem 1 through the real CLI: a default run with its figure, the same numbers as a run in another process."""

from __future__ import annotations

import json


def test_cli_default_run_and_reproducible(cli, run_experiment):
    proc, first = cli("softmax_jacobian")
    assert proc.returncode == 0, proc.stderr
    assert first["status"] == "ok" and "softmax_jacobian.png" in first["plots"]
    _, second, _ = run_experiment("softmax_jacobian")
    assert json.dumps(second["jacobian"]) == json.dumps(first["jacobian"])
    assert second["logits"] == first["logits"]
