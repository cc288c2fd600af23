"""The main job: every experiment with its defaults, one directory each, then the verification report.

    python experiments/run_all.py                                 # what `make run` runs
    python experiments/run_all.py 'only=[logreg,softmax_jacobian]'
    python experiments/run_all.py "overrides={logreg: ['grid.resolution=41']}"

Each experiment runs as its own process (fresh JAX state, its own precision), so one failure cannot stop or
disturb the rest; a failed run's section says so, and the exit code is non-zero at the end.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gradlab.verify.claims import CLAIMS
from gradlab.runner.config import at_least, checked
from gradlab.verify.report import build_report
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch

EXPERIMENTS_DIR = Path(__file__).resolve().parent  # gradlab/experiments: one module per experiment


def _is_experiment(name: str) -> bool:
    return (EXPERIMENTS_DIR / f"{name}.py").is_file() and name not in ("run_all", "check_answers")


@dataclass
class RunSpec:
    id: str = ""
    script: str | None = None
    overrides: list[str] = dataclasses.field(default_factory=list)

    @property
    def experiment(self) -> str:
        return self.script or self.id


@dataclass
class Config(BaseConfig):
    runs: list[RunSpec] = checked(
        [], lambda runs: len(runs) > 0 and all(_is_experiment(r.experiment) for r in runs),
        "a non-empty list of {id, script, overrides} whose script is an experiment in experiments/",
    )
    only: list[str] | None = None
    overrides: dict[str, list[str]] | None = None
    timeout_s: float = at_least(1, 900)


def selected(cfg: Config) -> list[RunSpec]:
    ids = [r.id for r in cfg.runs]
    from gradlab.runner.config import ConfigError

    for key, names in (("only", cfg.only or []), ("overrides", list(cfg.overrides or {}))):
        unknown = [n for n in names if n not in ids]
        if unknown:
            raise ConfigError(key, unknown, f"run ids from `runs`: {', '.join(ids)}")
    return [r for r in cfg.runs if cfg.only is None or r.id in cfg.only]


def main(cfg: Config, ctx: RunContext) -> dict:
    runs = selected(cfg)
    outcomes = {}
    for index, spec in enumerate(runs, start=1):
        command = [sys.executable, "-m", f"gradlab.experiments.{spec.experiment}", f"hydra.run.dir={ctx.path(spec.id)}",
                   *spec.overrides, *(cfg.overrides or {}).get(spec.id, [])]
        ctx.log.info("[%d/%d] %s ...", index, len(runs), spec.id)
        started = time.perf_counter()
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=cfg.timeout_s)
            code, tail = proc.returncode, proc.stderr.strip().splitlines()[-1:] or [""]
        except subprocess.TimeoutExpired:
            code, tail = -1, [f"timed out after {cfg.timeout_s:g} s"]
        seconds = time.perf_counter() - started
        outcomes[spec.id] = {"exit_code": code, "seconds": seconds}
        ctx.log.info("[%d/%d] %s: %s in %.1f s%s", index, len(runs), spec.id, "ok" if code == 0 else "FAILED",
                     seconds, "" if code == 0 else f" ({tail[0]})")

    rows, metrics = build_report(ctx.out_dir, [r.id for r in runs], CLAIMS)
    for spec in runs:
        outcomes[spec.id]["status"] = (metrics[spec.id] or {}).get("status", "missing")
    verdicts = [r.verdict for r in rows]
    summary = {"claims": len(rows), "passed": verdicts.count("pass"), "failed": len(rows) - verdicts.count("pass")}
    ctx.log.info("report: %s (%d of %d claims verified)", ctx.path("report.html"), summary["passed"], len(rows))
    failed_runs = [k for k, v in outcomes.items() if v["status"] != "ok"]
    results = {"runs": outcomes, "claims": summary}
    if failed_runs or summary["failed"]:
        raise RunFailed(f"failed runs: {failed_runs or 'none'}; claims not verified: {summary['failed']} "
                        f"(see {ctx.path('report.md')})", results)
    return results


if __name__ == "__main__":
    launch("run_all")
