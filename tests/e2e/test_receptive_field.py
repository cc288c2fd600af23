"""Problems 4-6 through the real CLI: a preset run with its figure, the same numbers twice, a one-line error."""

from __future__ import annotations


def test_cli_preset_and_reproducible(cli):
    proc, first = cli("receptive_field", "preset=problem4")
    assert proc.returncode == 0, proc.stderr
    assert first["receptive_field"]["analytic"] == first["receptive_field"]["measured"] == [3, 5, 7]
    assert "receptive_field.png" in first["plots"]
    proc, second = cli("receptive_field", "preset=problem4")
    assert proc.returncode == 0, proc.stderr
    assert second["receptive_field"] == first["receptive_field"]


def test_cli_config_error_is_one_line_exit_2(cli):
    proc, _ = cli("receptive_field", "layers.0.kernel=0")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "layers[0].kernel" in lines[0], proc.stderr
