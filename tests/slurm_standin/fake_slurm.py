"""A SLURM stand-in for the tests: `sbatch`, `srun`, `sacct`, `squeue`, `scancel` that run array tasks locally.

Each command is a two-line shell script next to this file calling `fake_slurm.py <command> ...`; a fixture puts
this folder first on PATH. State lives in $FAKE_SLURM_DIR: `next_id` (the next job id, from 1001) and one file per
array task, `<job>_<task>.state`, holding the task's SLURM state (PENDING, RUNNING, COMPLETED, FAILED, or the state
forced on it). `sbatch` reads the script's `#SBATCH --array=0-N%P`, prints `Submitted batch job <id>` as SLURM
does (submitit parses it) and starts one detached runner that runs the tasks one after another with bash, the
`SLURM_*` variables set as on a node (submitit's JobEnvironment reads them).

`FAKE_SLURM_STATES="1:NODE_FAIL,2:TIMEOUT"` (read at submission) makes task 1 end NODE_FAIL and task 2 TIMEOUT
without running: what a scheduler reports for a job that lost its node, or never got one, and left no result
file. `2:TIMEOUT+1.5` runs task 2 and ends it after 1.5 s as SLURM ends a running job (SIGTERM to its process
group, SIGKILL after a grace period), then reports TIMEOUT; `2:TIMEOUT+0` ends it as soon as it is started.
(PREEMPTED and REQUEUED are states submitit waits on, expecting a requeue: forced, they keep it waiting.
COMPLETED forced is a job the scheduler says completed that left nothing: what the summary calls `lost`.)
`sacct -o JobID,State,NodeList --parsable2 -j <id>` answers in the format submitit's SlurmInfoWatcher parses.
Standard library only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

FIRST_ID = 1001
GRACE_S = 5.0  # between SIGTERM and SIGKILL when a running task is ended (SLURM's KillWait, 30 s by default)
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL",
         "DEADLINE")


def state_dir() -> Path:
    path = Path(os.environ["FAKE_SLURM_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_state(task: str, state: str) -> None:
    target = state_dir() / f"{task}.state"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(state)
    os.replace(tmp, target)


def read_state(task: str) -> str | None:
    try:
        return (state_dir() / f"{task}.state").read_text().strip() or None
    except OSError:
        return None


def next_job_id() -> str:
    with open(state_dir() / "next_id.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        counter = state_dir() / "next_id"
        job_id = int(counter.read_text()) if counter.exists() else FIRST_ID
        counter.write_text(str(job_id + 1))
    return str(job_id)


def forced_states(text: str) -> dict[int, str]:
    """'1:NODE_FAIL,2:TIMEOUT+1.5' -> {1: 'NODE_FAIL', 2: 'TIMEOUT+1.5'}."""
    pairs = (item.split(":", 1) for item in text.split(",") if item.strip())
    return {int(task): state.strip().upper() for task, state in pairs}


def sbatch(args: list[str]) -> int:
    script = Path(args[-1])
    flags = dict(re.findall(r"^#SBATCH --([\w-]+)=?(.*)$", script.read_text(), re.MULTILINE))
    array = re.match(r"(\d+)-(\d+)", flags.get("array", "0-0"))
    tasks = range(int(array.group(1)), int(array.group(2)) + 1)
    job_id = next_job_id()
    for task in tasks:
        write_state(f"{job_id}_{task}", "PENDING")
    runner = [sys.executable, __file__, "_run", str(script), job_id, str(len(tasks)),
              os.environ.get("FAKE_SLURM_STATES", "")]
    with open(state_dir() / f"{job_id}.runner.log", "ab") as log:  # the runner keeps its own copy of the handle
        subprocess.Popen(runner, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    print(f"Submitted batch job {job_id}")
    return 0


def run_tasks(script: str, job_id: str, count: str, states: str) -> int:
    """The detached runner: each array task in turn, unless a state is forced on it or it was cancelled."""
    forced = forced_states(states)
    for task in range(int(count)):
        name = f"{job_id}_{task}"
        if read_state(name) != "PENDING":  # cancelled before it started
            continue
        state, _, after = forced.get(task, "").partition("+")
        if state and not after:
            write_state(name, state)
            continue
        env = {**os.environ, "SLURM_JOB_ID": str(int(job_id) * 1000 + task), "SLURM_ARRAY_JOB_ID": job_id,
               "SLURM_ARRAY_TASK_ID": str(task), "SLURM_NTASKS": "1", "SLURM_JOB_NUM_NODES": "1",
               "SLURM_NODEID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_JOB_NODELIST": "fakenode0"}
        write_state(name, "RUNNING")
        proc = subprocess.Popen(["bash", script], env=env, start_new_session=True)
        (state_dir() / f"{name}.pid").write_text(str(proc.pid))
        if after:  # as SLURM ends a running job (time limit, preemption, ...): SIGTERM, a grace period, SIGKILL
            try:
                proc.wait(timeout=float(after))
            except subprocess.TimeoutExpired:
                write_state(name, state)
                end_group(proc, GRACE_S)
        code = proc.wait()
        if read_state(name) == "RUNNING":
            write_state(name, "COMPLETED" if code == 0 else "FAILED")
    return 0


def end_group(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM to the task's process group; SIGKILL to what is left after `grace_s`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def srun(args: list[str]) -> int:
    """`srun --unbuffered --output OUT --error ERR [--opt ...] command...`: the command, its streams to the files."""
    streams: dict[str, str] = {}
    while args and args[0].startswith("-"):
        flag = args.pop(0)
        if flag in ("--output", "--error", "-o", "-e"):
            streams[flag.lstrip("-")[0]] = args.pop(0)
    fields = {"%A": "SLURM_ARRAY_JOB_ID", "%a": "SLURM_ARRAY_TASK_ID", "%j": "SLURM_JOB_ID"}

    def expand(pattern: str) -> str:
        for field, variable in fields.items():
            pattern = pattern.replace(field, os.environ.get(variable, ""))
        return pattern.replace("%t", "0")

    with contextlib.ExitStack() as files:
        out = files.enter_context(open(expand(streams["o"]), "a")) if "o" in streams else None
        err = files.enter_context(open(expand(streams["e"]), "a")) if "e" in streams else out
        return subprocess.call(args, stdout=out, stderr=err)


def sacct(args: list[str]) -> int:
    ids = [args[i + 1] for i, a in enumerate(args) if a == "-j"]
    print("JobID|State|NodeList")
    for job_id in ids:
        for path in sorted(state_dir().glob(f"{job_id.split('_')[0]}_*.state")):
            print(f"{path.stem}|{read_state(path.stem)}|fakenode0")
    return 0


def squeue(args: list[str]) -> int:
    print("JOBID STATE")
    for path in sorted(state_dir().glob("*.state")):
        state = read_state(path.stem)
        if state not in FINAL:
            print(f"{path.stem} {state}")
    return 0


def scancel(args: list[str]) -> int:
    """`scancel <job>[_<task>]` marks unfinished tasks CANCELLED and ends a running one; `--signal` is sent only."""
    job_ids = [a for a in args if re.fullmatch(r"\d+(_\d+)?", a)]
    sig = next((args[i + 1] for i, a in enumerate(args) if a == "--signal"), None)
    tasks = [path.stem for job_id in job_ids
             for path in state_dir().glob(f"{job_id if '_' in job_id else job_id + '_*'}.state")
             if read_state(path.stem) not in FINAL]
    if sig is None:  # every task marked first, so the runner never starts the next one while a running one ends
        for task in tasks:
            write_state(task, "CANCELLED")
    for task in tasks:
        pid_file = state_dir() / f"{task}.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.killpg(int(pid_file.read_text()), getattr(signal, sig or "SIGTERM", signal.SIGTERM))
    return 0


COMMANDS = {"sbatch": sbatch, "srun": srun, "sacct": sacct, "squeue": squeue, "scancel": scancel}

if __name__ == "__main__":
    command, rest = sys.argv[1], sys.argv[2:]
    sys.exit(run_tasks(*rest) if command == "_run" else COMMANDS[command](rest))
