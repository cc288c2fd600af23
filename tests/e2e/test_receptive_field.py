"""Problems 4-6 through the real CLI: a preset run with its figure, the same numbers as a run in another process."""

from __future__ import annotations


def test_cli_preset_and_reproducible(cli, run_experiment):
    proc, first = cli("receptive_field", "preset=problem4")
    assert proc.returncode == 0, proc.stderr
    assert first["receptive_field"]["analytic"] == first["receptive_field"]["measured"] == [3, 5, 7]
    assert "receptive_field.png" in first["plots"]
    _, second, _ = run_experiment("receptive_field", "preset=problem4")
    assert second["receptive_field"] == first["receptive_field"]
