"""`make gpu-check`: on one GPU, run the main job, the test suite and the benchmark at the device's sizes, and write
ONE summary (outputs/gpu_check/summary.md and summary.json): the device and versions, claims verified, tests passed
and failed, and each GPU target met or missed with its numbers.

Standard library only: it runs under any python3 and starts the project's own interpreter for the work, the
project's .venv when it exists, else this interpreter with PYTHONPATH=src (a GPU box with a system JAX). It works
on a CPU too: it says which device it ran on and, without a GPU, claims no GPU target ("no GPU: GPU targets not
measured"). The benchmark runs inside the main job (bench_logreg, timed alone; `backend: auto` picks its GPU
sizes), so its targets are read from that run.

    python3 tests/gpu_check.py                      # everything (at most ~6 minutes on one H200)
    python3 tests/gpu_check.py --steps device,tests --pytest-args "tests/unit/test_linreg_hessian.py -k flat"
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEPS = ("device", "tests", "run_all")
NO_GPU = "no GPU: GPU targets not measured"
GOAL_S = 360  # the whole check on one H200-class device
GPU_TARGET_PREFIX = "large_step_vs_"  # bench_logreg's per-dtype limit targets at its largest size

DEVICE_PROBE = """
import importlib.util, json, platform, sys
out = {"python": platform.python_version()}
for name in ("hydra", "omegaconf", "pytest", "xdist"):
    out[name] = importlib.util.find_spec(name) is not None
try:
    import jax, jaxlib
    device = jax.devices()[0]
    stats = device.memory_stats() or {}
    out.update(jax=jax.__version__, jaxlib=jaxlib.__version__, platform=device.platform,
               device_kind=device.device_kind, device_count=jax.device_count(),
               memory_bytes=stats.get("bytes_limit"))
except Exception as error:  # no JAX, or no backend: said in the summary
    out["error"] = f"{type(error).__name__}: {error}".splitlines()[0]
print(json.dumps(out))
"""


def interpreter(repo: Path = REPO) -> tuple[list[str], dict[str, str]]:
    """(python command, environment) for the work: the project's .venv, else this python with PYTHONPATH=src.
    Preallocation off: the suite's workers and the main job's processes share one device."""
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    venv = repo / ".venv" / "bin" / "python"
    if venv.exists():
        return [str(venv)], env
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo / "src"), os.environ.get("PYTHONPATH")]))
    return [sys.executable], env


def run(command: list[str], env: dict, timeout: float, log: Path) -> dict:
    """Run one step with a deadline; its output to `log`; {exit_code, seconds, timed_out}."""
    start = time.monotonic()
    with open(log, "w") as out:
        # its own process group: at the deadline (or when this check is stopped) SIGTERM reaches the step and the
        # processes it started (run_all's runs end 'interrupted' and its report is still written), then SIGKILL
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            code, timed_out = proc.wait(timeout=timeout), False
        except subprocess.TimeoutExpired:
            code, timed_out = None, True
        finally:
            if proc.poll() is None:
                stop_group(proc)
    out = {"exit_code": code, "seconds": round(time.monotonic() - start, 1), "timed_out": timed_out,
           "log": str(log.relative_to(REPO) if log.is_relative_to(REPO) else log)}
    if code != 0:  # what the step said last: why it failed, in one line
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
        out["last_line"] = f"timed out after {timeout:g} s" if timed_out else (lines[-1] if lines else "no output")
    return out


def stop_group(proc: subprocess.Popen, grace_s: float = 30) -> None:
    """SIGTERM to the step's process group, SIGKILL after `grace_s` if any of it is still running."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def junit_counts(path: Path) -> dict:
    """Passed, failed (failures and errors), skipped and the failed tests' ids from pytest's JUnit XML."""
    if not path.is_file():
        return {"passed": 0, "failed": 0, "skipped": 0, "failed_tests": [], "note": "no JUnit report written"}
    failed, skipped, total = [], 0, 0
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        total += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(f"{case.get('classname')}::{case.get('name')}")
        elif case.find("skipped") is not None:
            skipped += 1
    return {"passed": total - len(failed) - skipped, "failed": len(failed), "skipped": skipped,
            "failed_tests": failed}


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def main_job_summary(run_dir: Path) -> dict:
    """Claims verified and each run's status from run_all's record."""
    record = read_json(run_dir / "metrics.json")
    if not isinstance(record, dict):
        return {"status": "no record", "claims": None, "runs": {}}
    runs = {name: run.get("status") for name, run in (record.get("runs") or {}).items()}
    return {"status": record.get("status"), "claims": record.get("claims"), "runs": runs,
            "error": record.get("error")}


def gpu_targets(bench: dict | None, platform: str | None) -> dict:
    """The benchmark's GPU targets (device and dtype in each): only from a run on a GPU; else why not."""
    meta = (bench or {}).get("meta") or {}
    if platform != "gpu" or meta.get("backend", "gpu") != "gpu":
        return {"measured": False, "reason": NO_GPU, "targets": {}}
    if not isinstance(bench, dict) or bench.get("status") != "ok":
        return {"measured": False, "reason": "bench_logreg did not complete on the GPU", "targets": {}}
    keys = ("value", "target", "met", "note", "why", "reason")
    targets = {name: {key: t.get(key) for key in keys}
               for name, t in bench.get("targets", {}).items() if name.startswith(GPU_TARGET_PREFIX)}
    sizes = bench.get("sizes") or {}
    return {"measured": True, "device": meta.get("device_kind"), "targets": targets,
            "launch": (sizes.get("small") or {}).get("launch"), "backend": bench.get("backend") or {},
            "skipped": (sizes.get("large") or {}).get("skipped") or {}}


def launch_line(launch: dict) -> str:
    """The small problem's step (one scan iteration) against the measured empty call: launch-bound or not."""
    verdict = "launch-bound" if launch.get("launch_bound") else "not launch-bound"
    return (f"small problem: {verdict}: {launch['time'] * 1e6:.3g} us a step = {launch['empty_calls']:.3g} empty "
            f"calls of {launch['empty_call_time'] * 1e6:.3g} us")


def summary_markdown(summary: dict) -> str:
    device, tests, main_job, gpu = (summary.get(k) or {} for k in ("device", "tests", "run_all", "gpu_targets"))
    lines = ["# gpu-check", "",
             f"- device: {device.get('device_kind', '?')} x{device.get('device_count', '?')} "
             f"({device.get('platform', device.get('error', '?'))}), device memory "
             + (f"{device['memory_bytes'] / 2**30:.0f} GiB" if device.get("memory_bytes") else "not reported"),
             f"- versions: python {device.get('python')}, jax {device.get('jax')}, jaxlib {device.get('jaxlib')}",
             f"- total time: {summary.get('seconds')} s"
             + (f" (over the {GOAL_S} s goal on one H200-class device)" if (summary.get("seconds") or 0) > GOAL_S
                else "")]
    if device.get("platform") != "gpu" and summary.get("nvidia_smi"):
        lines.append(f"- an NVIDIA GPU is present (nvidia-smi) but JAX in {summary.get('python')} does not use it: "
                     "install the cuda12 or cuda13 extra (uv sync --extra cuda13, or pip install -e '.[cuda13]')")
    missing = [name for name in ("hydra", "omegaconf", "pytest", "xdist") if device.get(name) is False]
    if missing:
        lines.append(f"- not importable by {summary.get('python')}: {', '.join(missing)} (pip install -e '.[dev]')")
    for step in (tests, main_job):
        if step.get("last_line"):
            lines.append(f"- {step['log']}: exit {step.get('exit_code')}: {step['last_line']}")
    if tests:
        lines.append(f"- tests: {tests.get('passed')} passed, {tests.get('failed')} failed, {tests.get('skipped')} "
                     f"skipped ({tests.get('seconds')} s, exit {tests.get('exit_code')})")
        lines += [f"  - failed: {name}" for name in tests.get("failed_tests", [])]
    if main_job:
        claims = main_job.get("claims") or {}
        lines.append(f"- run_all: {main_job.get('status')}, claims verified {claims.get('passed', '?')}/"
                     f"{claims.get('claims', '?')} ({main_job.get('seconds')} s)")
        lines += [f"  - {name}: {status}" for name, status in main_job.get("runs", {}).items() if status != "ok"]
    if not gpu.get("measured"):
        lines.append(f"- GPU targets: {gpu.get('reason', NO_GPU)}")
    else:
        backend = gpu.get("backend") or {}
        if backend:
            per_class = backend.get("large_n_per_class")
            per_class = f"{per_class:,}" if isinstance(per_class, int) else per_class
            reduced = f" ({backend['large_reduced']})" if backend.get("large_reduced") else ""
            lines.append(f"- benchmark: preset {backend.get('preset')}, large set {per_class} points per class"
                         + reduced)
        lines += [f"  - {name} skipped: {reason}" for name, reason in gpu.get("skipped", {}).items()]
        lines += ["", "| GPU target | value | target | met | why (when missed) |", "|---|---|---|---|---|"]
        for name, t in gpu["targets"].items():
            value = "-" if t.get("value") is None else f"{t['value']:.3g}"
            verdict = {True: "met", False: "MISSED", None: "not judged"}[t.get("met")]
            lines.append(f"| {name} | {value} | {t.get('target')} | {verdict} | "
                         f"{'' if t.get('met') else t.get('why') or t.get('reason') or ''} |")
        if gpu.get("launch"):
            lines += ["", launch_line(gpu["launch"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, of {', '.join(STEPS)}")
    parser.add_argument("--out", default=str(REPO / "outputs" / "gpu_check"))
    parser.add_argument("--workers", default="8", help="pytest -n")
    parser.add_argument("--pytest-args", default="tests", help="one string, split as a shell does")
    parser.add_argument("--run-all-args", default="", help="overrides for run_all, e.g. 'only=[logreg]'")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per step")
    args = parser.parse_args(argv)
    steps = [s for s in args.steps.split(",") if s]
    if set(steps) - set(STEPS):
        print(f"gpu-check: --steps={args.steps} is not allowed: names from {', '.join(STEPS)}", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    python, env = interpreter()
    start = time.monotonic()
    summary: dict = {"python": python[0], "pythonpath": env.get("PYTHONPATH"),
                     "nvidia_smi": shutil.which("nvidia-smi") is not None}
    probe = subprocess.run([*python, "-c", DEVICE_PROBE], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=120)
    device = read_json_text(probe.stdout) or {"error": (probe.stderr.strip().splitlines() or ["no output"])[-1]}
    summary["device"] = device
    print(f"gpu-check: {device.get('device_kind', device.get('error'))} ({device.get('platform')}), "
          f"python {python[0]}", flush=True)
    if "tests" in steps:
        junit = out / "junit.xml"
        junit.unlink(missing_ok=True)
        workers = ["-n", args.workers] if device.get("xdist") else []
        result = run([*python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *workers, f"--junitxml={junit}",
                      *shlex.split(args.pytest_args)], env, args.timeout, out / "tests.log")
        summary["tests"] = {**result, **junit_counts(junit)}
        print(f"gpu-check: tests {summary['tests']['passed']} passed, {summary['tests']['failed']} failed", flush=True)
    if "run_all" in steps:
        run_dir = out / "run_all"
        result = run([*python, "experiments/run_all.py", f"hydra.run.dir={run_dir}",
                      *shlex.split(args.run_all_args)], env, args.timeout,
                     out / "run_all.log")
        summary["run_all"] = {**result, **main_job_summary(run_dir)}
        summary["gpu_targets"] = gpu_targets(read_json(run_dir / "bench_logreg" / "metrics.json"),
                                             device.get("platform"))
    else:
        summary["gpu_targets"] = gpu_targets(None, device.get("platform")) | (
            {} if device.get("platform") != "gpu" else {"reason": "run_all (which runs the benchmark) not run"})
    summary["seconds"] = round(time.monotonic() - start, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(summary_markdown(summary))
    print(summary_markdown(summary), end="")
    ok = all((summary.get(s) or {}).get("exit_code") == 0 for s in steps if s != "device")
    return 0 if ok and "error" not in device else 1


def read_json_text(text: str) -> dict | None:
    try:
        return json.loads(text.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def _terminated(signum, frame):
    raise SystemExit(128 + signum)  # 143: the running step's subprocess.run kills its child on the way out


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminated)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("gpu-check: interrupted", file=sys.stderr)
        sys.exit(130)
