"""The verification report: one row per claim of the homework, built from each run's metrics.json.

A claim names where its numbers live in an experiment's metrics (dotted paths) and how it is judged:
`error <= tolerance`, a boolean metric that must be true, or two values that must be equal. Nothing in the
table is typed in: a metric that is missing makes the row "not measured" (with the reason), never "pass".

Every row shows the expected value (closed form, reference or exact value), the value computed by the other
route, the error with the statistic it is (`statistic`: "max abs error over the 201 x 201 grid", ...), the
tolerance with its derivation (`tolerance_why`: "n eps sum|x_i| (summation bound)", ...), and the verdict.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gradlab.runner.records import lookup, read_record, status_of
from gradlab.runner.tables import markdown_table


@dataclass(frozen=True)
class Claim:
    problem: str
    experiment: str
    quantity: str
    analytic: str | float | None  # metric path of the analytic / closed-form value, or the value itself
    computed: str | None  # metric path of the value computed by JAX (or None)
    error: str | None = None  # metric path of the absolute error (default: |analytic - computed| when numbers)
    tolerance: float | None = None  # pass if error <= tolerance
    tolerance_metric: str | None = None  # or: pass if error <= the value of this metric (a run-dependent bound)
    at_least: float | None = None  # pass if error >= at_least (a difference that must show)
    at_most: float | None = None  # pass if the computed value <= at_most (a bound the claim states)
    expect: tuple[str, Any] | None = None  # (metric path, value it must have)
    equal: bool = False  # analytic and computed must be equal
    # Added for issue 20; all default, so claims written before them keep working:
    statistic: str = ""  # what the error number is, e.g. "max abs error over the grid" (the array is in a CSV/PNG)
    tolerance_why: str = ""  # how the tolerance was derived, e.g. "n eps sum_i |x_i| (Higham's summation bound)"
    independent: bool | None = None  # True: the two routes share no code on the path checked; None: not assessed
    arrays: str = ""  # the run's file that holds the whole arrays compared (a CSV or PNG), shown when a row has none


@dataclass
class Row:
    claim: Claim
    analytic: Any
    computed: Any
    error: Any
    verdict: str  # "pass" | "FAIL" | "not measured"
    tolerance: Any = None  # the tolerance the error was judged against (a number, or the bound's value)
    reason: str = ""  # why a row is "not measured"
    expected_value: Any = None  # the value of the `expect` metric


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def evaluate(claim: Claim, metrics: dict | None) -> Row:
    """Read a claim's numbers from metrics and judge it; a metric that is absent makes the row 'not measured'."""
    if metrics is None:
        return Row(claim, None, None, None, "not measured", reason="the run did not happen")
    if metrics.get("status") != "ok":
        return Row(claim, None, None, None, "not measured", reason=f"the run ended {metrics.get('status')}")
    paths = {"analytic": claim.analytic, "computed": claim.computed, "error": claim.error}
    values = {k: lookup(metrics, p) if isinstance(p, str) else p for k, p in paths.items()}
    expected_value = lookup(metrics, claim.expect[0]) if claim.expect else None
    tolerance = lookup(metrics, claim.tolerance_metric) if claim.tolerance_metric else claim.tolerance
    absent = [p for k, p in paths.items() if isinstance(p, str) and values[k] is None]
    absent += [claim.expect[0]] if claim.expect and expected_value is None else []
    absent += [claim.tolerance_metric] if claim.tolerance_metric and tolerance is None else []
    if absent:
        return Row(claim, values["analytic"], values["computed"], values["error"], "not measured", tolerance,
                   reason="no metric " + ", ".join(absent))
    error = values["error"]
    if error is None and _number(values["analytic"]) and _number(values["computed"]):
        error = abs(values["analytic"] - values["computed"])
    ok = True
    if claim.expect:
        ok &= expected_value == claim.expect[1]
    if tolerance is not None:
        ok &= _number(error) and _number(tolerance) and abs(error) <= tolerance
    if claim.at_least is not None:
        ok &= _number(error) and abs(error) >= claim.at_least
    if claim.at_most is not None:
        ok &= _number(values["computed"]) and values["computed"] <= claim.at_most
    if claim.equal:
        ok &= values["analytic"] == values["computed"]
    return Row(claim, values["analytic"], values["computed"], error, "pass" if ok else "FAIL", tolerance,
               expected_value=expected_value)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}" if value != 0 else "0"
    if isinstance(value, list):
        flat = json.dumps(value, default=str)
        if len(flat) > 60:
            return flat[:57] + "..."
        return ", ".join(_fmt(v) for v in value) if all(not isinstance(v, list) for v in value) else flat
    return str(value)


HEADER = ["problem", "quantity", "statistic", "expected", "computed", "error", "tolerance", "verdict"]


def _criterion(row: Row) -> str:
    """The test the error must meet, with the tolerance's derivation."""
    c, parts = row.claim, []
    if row.tolerance is not None:
        parts.append(f"<= {_fmt(row.tolerance)}" + (f" ({c.tolerance_metric})" if c.tolerance_metric else ""))
    if c.at_least is not None:
        parts.append(f">= {c.at_least:g}")
    if c.at_most is not None:
        parts.append(f"computed <= {c.at_most:g}")
    if c.expect is not None:
        parts.append(f"{c.expect[0]} = {_fmt(c.expect[1])}")
    if c.equal:
        parts.append("equal")
    text = "; ".join(parts)
    return text + (f" [{c.tolerance_why}]" if c.tolerance_why else "")


def table_rows(rows: Sequence[Row]) -> list[list[str]]:
    """One line per claim: every column filled from the metrics, 'not measured: <reason>' when they are absent."""
    body = []
    for row in rows:
        c = row.claim
        verdict = row.verdict + (f": {row.reason}" if row.reason else "")
        statistic = c.statistic or ("|expected - computed|" if row.error is not None and c.error is None else "")
        if c.arrays:
            statistic += f" [array: {c.experiment}/{c.arrays}]"
        expected, computed = _fmt(row.analytic), _fmt(row.computed)
        if c.expect is not None and not expected:  # a property: the value it must have
            expected = f"{c.expect[0]} = {_fmt(c.expect[1])}"
            computed = computed or _fmt(row.expected_value)
        elif not expected and not computed and row.error is not None:  # an error statistic: 0 if the claim holds
            expected, computed = "0", _fmt(row.error)
        body.append([c.problem, c.quantity, statistic, expected, computed, _fmt(row.error), _criterion(row), verdict])
    return [HEADER, *body]


def environment(metrics_by_experiment: dict[str, dict | None]) -> dict:
    """Versions, device and precisions, from the runs' own metadata."""
    metas = [m["meta"] for m in metrics_by_experiment.values() if m and "meta" in m]
    if not metas:
        return {}
    first = metas[0]
    keys = ("python", "jax", "jaxlib", "optax", "hydra", "numpy", "platform", "backend", "device", "git_commit")
    env = {k: first.get(k) for k in keys}
    env["precision"] = ", ".join(sorted({str(m.get("precision")) for m in metas}))
    return env


def _table_lines(table: list[list[str]]) -> list[str]:
    return markdown_table(table[0], table[1:]).splitlines()


def _status_line(metrics: dict | None) -> str:
    if metrics is None:
        return "not run"
    return metrics["status"] + (f" ({metrics['note']})" if metrics.get("note") else "")


def _notes(metrics: dict | None) -> list[str]:
    """Warnings, and comparisons a run skipped (with how to get them)."""
    metrics = metrics or {}
    skipped = metrics.get("skipped") or {}
    if isinstance(skipped, list):  # parts left out, each with its reason (autodiff_scaling: sizes over budget)
        said = [str(s.get("detail", s)) if isinstance(s, dict) else str(s) for s in skipped]
        skipped = {f"{len(said)} parts": "; ".join(said[:3]) + ("; ..." if len(said) > 3 else "")}
    return [f"warning: {w}" for w in metrics.get("warnings") or []] + [f"skipped {k}: {v}" for k, v in skipped.items()]


def targets_table(metrics: dict | None) -> list[list[str]] | None:
    """A run's speed targets (bench_logreg's `targets`): measured value, goal, met or not, and what a number
    alone does not say (why it was not measured, why it falls short, or what it is)."""
    goals = (metrics or {}).get("targets")
    if not goals:
        return None
    verdict = {True: "met", False: "MISSED", None: "not measured"}

    def judged(goal: dict) -> str:  # met only because the timing spread allows it: said so
        noise = goal["met"] and goal["value"] is not None and goal["value"] < goal["target"]
        return f"met within noise ({_fmt(goal['value'])} >= {_fmt(goal['target'])} within the spread)" if noise \
            else verdict[goal["met"]]

    return [["target", "measured", "goal (>=)", "verdict", "note"]] + [
        [name, _fmt(goal["value"]) if goal["value"] is not None else "", _fmt(goal["target"]), judged(goal),
         goal.get("reason") or (not goal["met"] and goal.get("why")) or goal.get("note", "")]
        for name, goal in goals.items()]


def _independence(rows: Sequence[Row]) -> str:
    """How many claims compare two routes that share no code on the path checked (Claim.independent)."""
    said = [r.claim.independent for r in rows]
    unassessed = said.count(None)
    return (f"{said.count(True)} compare independent routes, {said.count(False)} do not"
            + (f", {unassessed} not assessed" if unassessed else "") + ".")


EXPERIMENT_TABLES = "report_tables.md"  # an experiment's own tables (markdown), included in its report section


def experiment_tables(run_dir: Path) -> str:
    """The markdown an experiment wrote for the report (`report_tables.md` in its run dir), or ''."""
    path = run_dir / EXPERIMENT_TABLES
    return path.read_text().strip() if path.is_file() else ""


def _markdown_to_html(text: str) -> str:
    """Pipe tables become HTML tables, '#' lines headings, other lines paragraphs (all escaped)."""
    esc, out, table = html.escape, [], []

    def flush():
        if table:
            cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table]
            body = [r for r in cells[1:] if not all(set(c) <= set("-: ") for c in r)]
            out.append(_html_table([cells[0], *body]))
            table.clear()

    for line in text.splitlines():
        if line.strip().startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("#"):
            out.append(f"<h4>{esc(line.lstrip('#').strip())}</h4>")
        elif line.strip():
            out.append(f"<p>{esc(line)}</p>")
    flush()
    return "\n".join(out)


def write_markdown(target: Path, rows: Sequence[Row], runs: dict[str, dict | None], env: dict) -> None:
    root = target.parent
    lines = ["# gradlab verification report", ""]
    passed = sum(r.verdict == "pass" for r in rows)
    lines += [f"**{passed} of {len(rows)} claims verified.** {_independence(rows)}", "", "## Claims", ""]
    table = table_rows(rows)
    lines += _table_lines(table)
    lines += ["", "## Run times", "", *_table_lines(run_times(runs)), "", "## Experiments", ""]
    for name, metrics in runs.items():
        lines.append(f"### {name}: {_status_line(metrics)}")
        if metrics and metrics.get("error"):
            lines.append(f"\nError: `{metrics['error']}`")
        for note in _notes(metrics):
            lines.append(f"\n- {note}")
        if targets := targets_table(metrics):
            lines += ["", *_table_lines(targets)]
        if extra := experiment_tables(root / name):
            lines += ["", extra]
        for plot, caption in (metrics or {}).get("plots", {}).items():
            lines += ["", f"![{caption}]({name}/{plot})", "", f"*{caption}*"]
        lines.append("")
    lines += ["## Environment", ""] + [f"- {k}: {v}" for k, v in env.items()]
    target.write_text("\n".join(lines) + "\n")


def _anchor(name: str) -> str:
    return "run-" + "".join(ch if ch.isalnum() else "-" for ch in name)


def write_html(target: Path, rows: Sequence[Row], runs: dict[str, dict | None], env: dict, root: Path) -> None:
    """A self-contained page: contents, the claims (each linked to its experiment's section), run times, each
    experiment's notes, tables and plots (embedded PNGs at full width), the environment."""
    esc = html.escape
    table = table_rows(rows)
    passed = sum(r.verdict == "pass" for r in rows)
    unmeasured = sum(r.verdict == "not measured" for r in rows)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>gradlab verification report</title><style>",
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto}table{border-collapse:collapse;font-size:13px}",
        "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}.pass{color:#070}",
        ".FAIL,.not{color:#b00;font-weight:bold}figure{display:block;width:100%;margin:1em 0}img{width:100%}",
        "figcaption{font-size:13px}nav li{margin:2px 0}</style></head>",
        f"<body><h1>gradlab verification report</h1><p><b>{passed} of {len(rows)} claims verified"
        + (f"; {unmeasured} not measured" if unmeasured else "") + f".</b> {esc(_independence(rows))}</p>",
        "<nav><h2>Contents</h2><ul><li><a href='#claims'>Claims</a></li><li><a href='#run-times'>Run times</a></li>"
        "<li>Experiments<ul>" + "".join(f"<li><a href='#{_anchor(n)}'>{esc(n)}</a></li>" for n in runs)
        + "</ul></li><li><a href='#environment'>Environment</a></li></ul></nav>",
        "<h2 id='claims'>Claims</h2><table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in table[0]) + "</tr>",
    ]
    for row, r in zip(rows, table[1:], strict=True):
        link = f"<a href='#{_anchor(row.claim.experiment)}'>{esc(r[1])}</a>"
        cells = f"<td>{esc(r[0])}</td><td>{link}</td>" + "".join(f"<td>{esc(c)}</td>" for c in r[2:-1])
        parts.append(f"<tr>{cells}<td class='{esc(row.verdict.split()[0])}'>{esc(r[-1])}</td></tr>")
    parts.append("</table>")
    parts.append("<h2 id='run-times'>Run times</h2>" + _html_table(run_times(runs)) + "<h2>Experiments</h2>")
    for name, metrics in runs.items():
        status = (metrics or {}).get("status")
        parts.append(f"<h3 id='{_anchor(name)}'>{esc(name)}: <span class='{'pass' if status == 'ok' else 'FAIL'}'>"
                     f"{esc(_status_line(metrics))}</span></h3>")
        if metrics and metrics.get("error"):
            parts.append(f"<p>Error: <code>{esc(metrics['error'])}</code></p>")
        parts += [f"<p>{esc(note)}</p>" for note in _notes(metrics)]
        if targets := targets_table(metrics):
            parts.append(_html_table(targets))
        if extra := experiment_tables(root / name):
            parts.append(_markdown_to_html(extra))
        for plot, caption in (metrics or {}).get("plots", {}).items():
            png = root / name / plot
            if png.exists():
                data = base64.b64encode(png.read_bytes()).decode()
                parts.append(f"<figure><img src='data:image/png;base64,{data}' alt='{esc(caption)}'>"
                             f"<figcaption>{esc(caption)}</figcaption></figure>")
    parts.append("<h2 id='environment'>Environment</h2><ul>"
                 + "".join(f"<li>{esc(k)}: {esc(str(v))}</li>" for k, v in env.items()))
    parts.append("</ul></body></html>")
    target.write_text("\n".join(parts))


def _html_table(table: list[list[str]]) -> str:
    esc = html.escape
    return ("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in table[0]) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in table[1:]) + "</table>")


def run_times(runs: dict[str, dict | None]) -> list[list[str]]:
    """Per run: wall time, the part spent tracing and compiling with XLA, and the rest (compute, I/O, plots)."""
    rows = [["run", "status", "wall s", "compile s", "compute s"]]
    for name, metrics in runs.items():
        meta = (metrics or {}).get("meta") or {}
        wall, compile_s = meta.get("wall_time_s"), meta.get("compile_time_s")
        compute = wall - compile_s if _number(wall) and _number(compile_s) else None
        rows.append([name, status_of(metrics) if metrics else "not run",
                     *(f"{v:.1f}" if _number(v) else "" for v in (wall, compile_s, compute))])
    return rows


def build_report(root: Path, experiments: Sequence[str], claims: Sequence[Claim],
                 notes: dict[str, str] | None = None) -> tuple[list[Row], dict]:
    """Read `<root>/<experiment>/metrics.json` for each experiment, judge the claims, write report.md/.html.

    `notes` add a word per run (why it was stopped); a record whose process is gone reads `crashed`.
    """
    runs: dict[str, dict | None] = {name: read_record(root / name) for name in experiments}
    for name, metrics in runs.items():
        if metrics is not None:
            metrics["status"] = status_of(metrics)
            if (notes or {}).get(name):
                metrics["note"] = notes[name]
    rows = [evaluate(c, runs.get(c.experiment)) for c in claims if c.experiment in runs]
    env = environment(runs)
    write_markdown(root / "report.md", rows, runs, env)
    write_html(root / "report.html", rows, runs, env, root)
    return rows, runs
