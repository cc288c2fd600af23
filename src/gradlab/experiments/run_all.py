"""The main job: every experiment with its defaults, one directory each, then the verification report.

    python experiments/run_all.py                                 # what `make run` runs
    python experiments/run_all.py 'only=[logreg,softmax_jacobian]'
    python experiments/run_all.py "overrides={logreg: ['grid.resolution=41']}"

Each experiment runs as its own process (fresh JAX state, its own precision), so one failure cannot stop or
disturb the rest; a failed run's section says so, and the exit code is non-zero at the end. Up to `jobs` runs
compute at once, besides the runs marked `timed`: they measure time, so they start with the others, compile and
warm up beside them, and time alone: while one times, no other run computes (`runner/quiet.py`). A run
that passes `timeout_s` gets SIGTERM and records itself `interrupted`; Ctrl-C or SIGTERM to the main job stops the
runs in progress the same way, records the runs not started as not run, and still writes the report; at any
moment: a signal while the main job starts (imports, Hydra, the fork) is held until it computes
(`process.hold_signals`, from the script's first line).

The processes are forked from one server that imported gradlab, JAX, Hydra and Matplotlib once
(multiprocessing's forkserver, which has started no JAX backend): each run is `python -m
gradlab.experiments.<name>` without the ~1.1 s of imports a new interpreter pays, 12 of them in `make run`, nor
Hydra's first compose and a collection of the imported objects (runner/fork_warm_up.py).
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from gradlab.runner import quiet
from gradlab.runner.config import ConfigError, at_least, checked
from gradlab.runner.dirs import check_names
from gradlab.runner.process import signal_received
from gradlab.runner.records import METRICS_FILE, process_alive, read_record, status_of, write_json_atomic
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch
from gradlab.runner.runs import tags_override
from gradlab.verify.claims import CLAIMS
from gradlab.verify.report import build_report

NOT_EXPERIMENTS = ("run_all", "check_answers")


def _is_experiment(name: str) -> bool:
    """Whether gradlab.experiments.<name> is an experiment module (found, not imported: the main job itself
    needs none of them, its runs import their own)."""
    return name not in NOT_EXPERIMENTS and importlib.util.find_spec(f"gradlab.experiments.{name}") is not None


@dataclass
class RunSpec:
    id: str
    script: str | None = None  # the experiment, when it differs from the id
    overrides: list[str] | None = None
    timed: bool = False  # it measures time: it times alone, no other run computing (runner/quiet.py)

    @property
    def experiment(self) -> str:
        return self.script or self.id


@dataclass
class Config(BaseConfig):
    runs: list[RunSpec] = checked(
        lambda runs: len(runs) > 0 and all(_is_experiment(r.experiment) for r in runs),
        "a non-empty list of {id, script, overrides} whose script is an experiment in gradlab/experiments/",
    )
    only: list[str] | None = checked(lambda x: x is None or len(x) > 0, "a non-empty list of run ids, or null (all)")
    overrides: dict[str, list[str]] | None
    timeout_s: float = at_least(1)
    jobs: int = at_least(1)  # runs computing at once, besides the `timed` ones (which time alone)


def check_config(cfg: Config) -> None:
    """`only` and `overrides` name run ids of `runs` (checked before anything runs)."""
    ids = [r.id for r in cfg.runs]
    check_names("runs[{}].id", ids)  # each id becomes a run's directory: it must stay in the main job's
    for key, names in (("only", cfg.only or []), ("overrides", list(cfg.overrides or {}))):
        unknown = [n for n in names if n not in ids]
        if unknown:
            raise ConfigError(key, unknown, f"run ids from `runs`: {', '.join(ids)}")


def selected(cfg: Config) -> list[RunSpec]:
    return [r for r in cfg.runs if cfg.only is None or r.id in cfg.only]


def start_experiment(experiment: str, argv: list[str], stderr_path: str,
                     machine_lock: str | None = None) -> multiprocessing.Process:
    """`python -m gradlab.experiments.<experiment> *argv` as a child of the forkserver (stdout discarded,
    stderr written to `stderr_path`), sharing the main job's cores through `machine_lock` (runner/quiet.py)."""
    child = multiprocessing.get_context("forkserver").Process(
        target=_experiment_cli, args=(experiment, argv, stderr_path, machine_lock), name=experiment)
    child.start()
    return child


def _experiment_cli(experiment: str, argv: list[str], stderr_path: str, machine_lock: str | None) -> None:
    """In the forked child: what `python -m gradlab.experiments.<experiment> *argv` does (exits with its code)."""
    if machine_lock:
        os.environ[quiet.LOCK_ENV] = machine_lock
    with open(os.devnull, "wb") as devnull, open(stderr_path, "wb") as stderr:
        os.dup2(devnull.fileno(), sys.stdout.fileno())
        os.dup2(stderr.fileno(), sys.stderr.fileno())
    sys.argv = [f"gradlab.experiments.{experiment}", *argv]
    # the platform's default start method, as under `python -m`: the forkserver's would register a semaphore
    # the run makes (tqdm's lock) with the main job's resource tracker, which then warns of a leak at exit
    multiprocessing.set_start_method(None, force=True)
    launch(experiment)


def run_experiment(experiment: str, argv: list[str], timeout_s: float, ctx: RunContext,
                   machine_lock: str | None = None) -> tuple[int, str, str | None]:
    """Run one experiment's CLI; (exit code, last stderr line, why it was stopped or None).

    On timeout or when the main job is interrupted, the experiment gets SIGTERM and records itself interrupted.
    """
    with tempfile.NamedTemporaryFile(prefix=f"gradlab-{experiment}-", suffix=".stderr") as stderr_file:
        child = start_experiment(experiment, argv, stderr_file.name, machine_lock)
        deadline = time.monotonic() + timeout_s
        stopped = None
        while True:
            child.join(timeout=0.2)
            # an exit code and no process: a killed forkserver gives the code (255) while the run still computes
            if child.exitcode is not None:
                if not process_alive(socket.gethostname(), child.pid, None):
                    break
                time.sleep(0.2)  # join returns at once when the forkserver is gone: poll the run, do not spin
            if stopped is None and (ctx.stop.is_set() or time.monotonic() > deadline):
                stopped = "the main job was interrupted" if ctx.stop.is_set() else f"timed out after {timeout_s:g} s"
                child.terminate()  # SIGTERM
                deadline = time.monotonic() + 30  # then SIGKILL: a run that ignores SIGTERM is recorded crashed
            elif stopped is not None and time.monotonic() > deadline:
                child.kill()
        stderr = stderr_file.read().decode(errors="replace")
    lines = [line for line in stderr.strip().splitlines() if line.startswith("gradlab")] or stderr.strip().splitlines()
    if child.exitcode < 0:  # killed before it could say anything
        lines.append(f"the run's process was killed by {signal.Signals(-child.exitcode).name}")
    return child.exitcode, (lines or [""])[-1], stopped


def main(cfg: Config, ctx: RunContext) -> dict:
    ctx.cooperative = True  # on Ctrl-C/SIGTERM: stop the runs in progress, then write the report
    if signal_received():  # Ctrl-C while the main job started (held by hold_signals): no run starts
        ctx.stop.set()
    runs = selected(cfg)
    modules = dict.fromkeys(f"gradlab.{package}.{r.experiment}" for r in runs for package in ("experiments", "figures"))
    multiprocessing.get_context("forkserver").set_forkserver_preload(  # imported once, then frozen
        ["matplotlib.pyplot", *modules, "gradlab.runner.fork_warm_up"])
    outcomes: dict[str, dict] = {}
    numbered = {spec.id: index for index, spec in enumerate(runs, start=1)}

    def run_one(spec: RunSpec) -> None:
        index = numbered[spec.id]
        if ctx.stop.is_set():
            outcomes[spec.id] = {"exit_code": None, "seconds": 0.0, "stopped": "not run: the main job was interrupted"}
            return
        argv = [f"hydra.run.dir={ctx.path(spec.id)}", f"scale={cfg.scale}", tags_override(cfg.tags),  # the job's tags
                *(spec.overrides or []), *(cfg.overrides or {}).get(spec.id, [])]
        ctx.log.info("[%d/%d] %s ...", index, len(runs), spec.id)
        started = time.perf_counter()
        code, last_line, stopped = run_experiment(spec.experiment, argv, cfg.timeout_s, ctx, machine_lock.name)
        seconds = time.perf_counter() - started
        if stopped and read_record(ctx.path(spec.id)) is None:  # stopped before it could write its own record
            ctx.path(spec.id).mkdir(parents=True, exist_ok=True)
            write_json_atomic(ctx.path(spec.id) / METRICS_FILE, {
                "status": "interrupted", "experiment": spec.experiment, "signal": "SIGTERM",
                "error": f"{stopped} before the run started", "meta": {"wall_time_s": seconds}})
        outcomes[spec.id] = {"exit_code": code, "seconds": seconds, **({"stopped": stopped} if stopped else {})}
        ended = status_of(read_record(ctx.path(spec.id)))  # what the run's record says, whatever the exit code
        ctx.log.info("[%d/%d] %s: %s in %.1f s%s", index, len(runs), spec.id, ended, seconds,
                     "" if ended == "ok" else f" ({stopped or last_line})")

    # The timed runs start at once, beside the others: they compile and warm up sharing the cores, and time alone
    # (quiet.alone: once every other run has ended, while the runs that start meanwhile wait)
    timed = [spec for spec in runs if spec.timed]
    with tempfile.NamedTemporaryFile(prefix="gradlab-machine-", suffix=".lock") as machine_lock, \
            ThreadPoolExecutor(max_workers=max(len(timed), 1), thread_name_prefix="run_all-timed") as timed_pool, \
            ThreadPoolExecutor(max_workers=cfg.jobs, thread_name_prefix="run_all") as pool:
        timed_runs = [timed_pool.submit(run_one, spec) for spec in timed]
        list(pool.map(run_one, [spec for spec in runs if not spec.timed]))
        for future in timed_runs:
            future.result()
    outcomes = {spec.id: outcomes[spec.id] for spec in runs}  # in the order of `runs`, whenever each ended

    rows, metrics = build_report(ctx.out_dir, [r.id for r in runs], CLAIMS, notes={
        run_id: outcome["stopped"] for run_id, outcome in outcomes.items() if "stopped" in outcome})
    for spec in runs:
        outcomes[spec.id]["status"] = status_of(read_record(ctx.path(spec.id))) if metrics[spec.id] else "not run"
    verdicts = [r.verdict for r in rows]
    summary = {"claims": len(rows), "passed": verdicts.count("pass"), "failed": len(rows) - verdicts.count("pass")}
    ctx.log.info("report: %s (%d of %d claims verified)", ctx.path("report.html"), summary["passed"], len(rows))
    results = {"runs": outcomes, "claims": summary}
    ctx.partial.update(results)  # what an interruption keeps
    failed_runs = [k for k, v in outcomes.items() if v["status"] != "ok"]
    if (failed_runs or summary["failed"]) and not ctx.stop.is_set():
        raise RunFailed(f"failed runs: {failed_runs or 'none'}; claims not verified: {summary['failed']} "
                        f"(see {ctx.path('report.md')})", results)
    return results


if __name__ == "__main__":
    launch("run_all")
