"""The mutation tier: plant each bug of mutants.py in a COPY of src/, run the experiments whose claims cover it
(small configs, figures off, the shared JAX compile cache), and require that some claim fails for every one.

    .venv/bin/python tests/mutation/run_mutants.py            # all mutants, 2 at a time; exit 1 on a survivor
    .venv/bin/python tests/mutation/run_mutants.py -k logits  # the mutants whose id contains 'logits'

The working tree is never written (others edit it): each mutant gets its own copy of src/ in a temporary
directory, and its runs import gradlab from there (PYTHONPATH). The unmutated copy runs first: every judged claim
must pass there, or a kill would mean nothing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "src"))

from mutants import MUTANTS, RUNS, Mutant, judged_claims  # noqa: E402

from gradlab.runner.records import read_record, status_of  # noqa: E402
from gradlab.verify.claims import CLAIMS  # noqa: E402
from gradlab.verify.report import evaluate  # noqa: E402


def copy_source(target: Path, mutant: Mutant | None) -> Path:
    """src/ copied to target/src with the mutant's one replacement (which must match exactly once)."""
    src = target / "src"
    shutil.copytree(REPO / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    if mutant is not None:
        path = src / "gradlab" / "problems" / mutant.file
        text = path.read_text()
        if text.count(mutant.old) != 1:
            raise SystemExit(f"mutant {mutant.id}: {mutant.old!r} occurs {text.count(mutant.old)} times in "
                             f"{mutant.file} (must be once): update tests/mutation/mutants.py")
        path.write_text(text.replace(mutant.old, mutant.new))
    return src


class Worker:
    """A long-lived worker.py process: runs experiments in-process from whichever source copy a job names."""

    def __init__(self) -> None:
        env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore", "PYTHONPATH": ""}
        self.proc = subprocess.Popen([sys.executable, str(HERE / "worker.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=tempfile.gettempdir())

    def run(self, src: Path, run_id: str, out: Path):
        run = RUNS[run_id]
        job = {"src": str(src), "script": run.experiment, "overrides": run.overrides, "out": str(out)}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the mutation worker died running {run_id} from {src}")
        return json.loads(line)["code"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def run_claims(worker: Worker, src: Path, run_id: str, out: Path) -> tuple[list[str], str]:
    """Run one experiment from the copy; the judged claims of run_id that did not pass, and the run's status."""
    code = worker.run(src, run_id, out)
    record = read_record(out)
    if record is not None:
        record["status"] = status_of(record)
    rows = [evaluate(c, record) for c in judged_claims(run_id, CLAIMS)]
    if not rows:
        raise SystemExit(f"no claim covers run {run_id}")
    error = (record or {}).get("error") or (code if isinstance(code, str) else "")
    failed = [f"{r.claim.quantity}: {r.verdict}" + (f" ({r.reason}: {error})" if r.reason else "") for r in rows
              if r.verdict != "pass"]
    return failed, (record or {}).get("status", "no record")


def run_mutant(mutant: Mutant | None, runs: tuple[str, ...], work: Path, workers) -> dict:
    """Apply one mutant to a fresh copy and run its experiments until a claim fails."""
    start = time.perf_counter()
    worker = workers.get()
    try:
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            src = copy_source(Path(tmp), mutant)
            result = {"id": mutant.id if mutant else "baseline", "killed_by": [], "status": {}}
            for run_id in runs:
                failed, status = run_claims(worker, src, run_id, Path(tmp) / "runs" / run_id)
                result["status"][run_id] = status
                result["killed_by"] += [f"{run_id}: {f}" for f in failed]
                if failed and mutant is not None:
                    break
    finally:
        workers.put(worker)
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only mutants whose id contains this")
    parser.add_argument("-j", type=int, default=2, help="parallel runs (default 2)")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if args.k in m.id]
    start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="gradlab-mutants-"))
    workers: queue.Queue = queue.Queue()
    for _ in range(args.j):
        workers.put(Worker())
    try:
        with concurrent.futures.ThreadPoolExecutor(args.j) as pool:
            needed = sorted({r for m in chosen for r in m.runs})
            baseline = list(pool.map(lambda r: run_mutant(None, (r,), work, workers), needed))
            broken = [b for b in baseline if b["killed_by"]]
            if broken:
                print("the unmutated source already fails claims, so kills mean nothing:")
                print(json.dumps(broken, indent=1))
                return 1
            results = list(pool.map(lambda m: run_mutant(m, m.runs, work, workers), chosen))
    finally:
        while not workers.empty():
            workers.get().close()
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(m.id) for m in chosen)
    for mutant, result in zip(chosen, results, strict=True):
        failed_run = any(s != "ok" for s in result["status"].values())
        verdict = ("killed (run failed)" if failed_run else "killed") if result["killed_by"] else "SURVIVED"
        first = result["killed_by"][0] if result["killed_by"] else "every claim passed"
        first = first if len(first) <= 200 else first[:199] + "…"  # a failed run's error can list every size
        print(f"{mutant.id:<{width}}  {verdict:19}  {result['seconds']:5.1f} s  {mutant.file}: {first}")
    killed = sum(bool(r["killed_by"]) for r in results)
    by_run = sum(bool(r["killed_by"]) and any(s != "ok" for s in r["status"].values()) for r in results)
    elapsed = time.perf_counter() - start
    print(f"mutation score: {killed}/{len(results)} = {100 * killed / len(results):.0f}% killed "
          f"({killed - by_run} by a failing claim, {by_run} by the run failing its own finite checks; "
          f"{len(needed)} baseline runs all pass; {elapsed:.0f} s with {args.j} workers)")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
