"""Problem 1 through the real CLI: a default run with its figure, the same numbers twice, a one-line error."""

from __future__ import annotations

import json


def test_cli_default_run_and_reproducible(cli):
    proc, first = cli("softmax_jacobian")
    assert proc.returncode == 0, proc.stderr
    assert first["status"] == "ok" and "softmax_jacobian.png" in first["plots"]
    proc, second = cli("softmax_jacobian")
    assert proc.returncode == 0, proc.stderr
    assert json.dumps(second["jacobian"]) == json.dumps(first["jacobian"])
    assert second["logits"] == first["logits"]
