"""Markdown tables for the files a run writes (the benchmark's table.md, the verification report)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def markdown_cell(value: Any) -> str:
    """A cell: text as is (with `|` escaped), None as '-', floats to 3 significant digits."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value).replace("|", "\\|")


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table: one header row, a rule, one line per row; ends with a newline."""
    lines = ["| " + " | ".join(markdown_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(markdown_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
