"""The CLI's processes for the tests, without an interpreter's start-up each time.

`popen` and `run` take what subprocess.Popen and subprocess.run take. A command that starts the CLI
(`python experiments/<name>.py ...`, `python -m <module> ...`, the `gradlab` script) runs in a process forked from a
server that has imported gradlab, JAX, Hydra, Matplotlib and the launchers (multiprocessing's forkserver, prepared
as the main job's is: experiments/run_all.py, gradlab/runner/fork_warm_up.py). From `launch` on it is the same code
in a process of its own: its pid, working directory, environment, signals, stdout, stderr and exit code; it costs
~1 s less than a new interpreter (softmax_jacobian 2.1 -> 1.05 s, a small logreg run 2.7 -> 1.6 s). Anything else
(another program, an environment whose differences Python or JAX read while importing, a joblib sweep) starts as
subprocess would start it. What the server cannot show, the start-up itself (imports, a signal while Hydra
composes), is tested on new interpreters, as are the installed package (tests/e2e/test_install.py) and the main
job (conftest's `main_job`).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# On a GPU, JAX takes 75% of the device's memory at start-up unless told not to: test workers and the processes
# they start share one device (set before any backend starts, inherited by every child through CLI_ENV)
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# every CLI the tests start: one-line errors (no traceback) and no library warnings on stderr
CLI_ENV = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore"}
# read while Python or JAX start (the server has started with CLI_ENV's): a command that changes one starts anew
READ_AT_START = ("PYTHON", "JAX_", "LD_")
# joblib's workers are multiprocessing children that its executor ends at the interpreter's exit; a forked process
# ends as multiprocessing's children do, joining its own children first, and would wait on them for ever
NEW_INTERPRETER_FOR = ("hydra/launcher=joblib",)
SCRIPTS = {Path(sys.executable).with_name("gradlab")}  # the console script beside this interpreter


def _server_modules() -> list[str]:
    """What every CLI process would import: gradlab's experiments and figures, the launchers' plugins, the
    libraries JAX loads on first use (scipy.linalg for LAPACK), then what run_all's forkserver does last (Hydra's
    first compose, gc.freeze: gradlab/runner/fork_warm_up.py)."""
    import pkgutil

    import gradlab.experiments
    import gradlab.figures

    packages = (gradlab.experiments, gradlab.figures)
    return ["gradlab.cli", "matplotlib.pyplot", "scipy.linalg", "submitit",
            "hydra_plugins.hydra_joblib_launcher.joblib_launcher",
            "hydra_plugins.hydra_submitit_launcher.submitit_launcher",
            *(f"{p.__name__}.{m.name}" for p in packages for m in pkgutil.iter_modules(p.__path__)),
            "gradlab.runner.fork_warm_up"]


@functools.cache
def _server() -> multiprocessing.context.ForkServerContext:
    """This process's CLI server, started once with CLI_ENV as its environment (a module it cannot import, an
    extra not installed, is left out)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_server_modules())
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(CLI_ENV)
    try:
        starter = context.Process(target=int)  # starts the server; the process itself does nothing
        starter.start()
        starter.join()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return context


def _as_python_would(command) -> tuple[str, str, list[str]] | None:
    """("path" | "module", what runpy runs, argv) for a command that starts the CLI, else None."""
    command = [str(part) for part in command]
    if any(part in NEW_INTERPRETER_FOR for part in command):
        return None
    if command[0] == sys.executable and len(command) > 1 and command[1].endswith(".py"):
        return "path", command[1], command[1:]
    if command[0] == sys.executable and len(command) > 2 and command[1] == "-m":
        return "module", command[2], command[2:]
    if Path(command[0]) in SCRIPTS:
        return "path", command[0], command
    return None


def _starts_alike(env: dict) -> bool:
    changed = {key for key in env.keys() | CLI_ENV.keys() if env.get(key) != CLI_ENV.get(key)}
    return not any(key.startswith(READ_AT_START) for key in changed)


def _in_child(how: str, what: str, argv: list[str], cwd: str, env: dict, stdout: str, stderr: str) -> None:
    """In the forked process: what `python <what> <argv...>` (or `python -m`) does from its imports on."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    with open(stdout, "wb") as out:
        os.dup2(out.fileno(), 1)
    if stderr == stdout:
        os.dup2(1, 2)
    else:
        with open(stderr, "wb") as err:
            os.dup2(err.fileno(), 2)
    # the platform's default start method, as a new interpreter has (the server's is forkserver)
    multiprocessing.set_start_method(None, force=True)
    sys.argv = argv
    if how == "module":
        runpy.run_module(what, run_name="__main__", alter_sys=True)
    else:
        runpy.run_path(what, run_name="__main__")


class ForkedProcess:
    """The part of subprocess.Popen the tests use, for a process the CLI server forked: `pid`, `returncode`,
    `poll`, `wait`, `communicate`, `send_signal`, `terminate`, `kill`, and `stdout` / `stderr` (readable files
    when PIPE was asked; what they hold so far while the process runs)."""

    def __init__(self, args, process, folder: Path, outputs: dict[str, Path], text: bool):
        self.args, self._process, self._folder = args, process, folder
        mode = "r" if text else "rb"
        self.stdout, self.stderr = (open(outputs[name], mode) if name in outputs else None  # noqa: SIM115
                                    for name in ("stdout", "stderr"))
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        return self._process.pid

    def poll(self) -> int | None:
        self.returncode = self._process.exitcode
        if self.returncode is not None:  # the files stay open for reading; their folder goes
            shutil.rmtree(self._folder, ignore_errors=True)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self.poll() is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple:
        self.wait(timeout)
        return tuple(stream.read() if stream else None for stream in (self.stdout, self.stderr))

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self._process.terminate()

    def kill(self) -> None:
        self._process.kill()

    def __del__(self):
        for stream in (self.stdout, self.stderr):
            if stream:
                stream.close()
        shutil.rmtree(self._folder, ignore_errors=True)


def popen(command, *, cwd=None, env=None, stdout=None, stderr=None, text=False, **kwargs):
    """subprocess.Popen(command, ...), the CLI forked from the server where it starts alike (ForkedProcess)."""
    how, child_env = _as_python_would(command), dict(os.environ if env is None else env)
    if how is None or kwargs or not _starts_alike(child_env):
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=stdout, stderr=stderr, text=text, **kwargs)
    folder = Path(tempfile.mkdtemp(prefix="gradlab-cli-"))
    outputs = {name: folder / name for name, asked in (("stdout", stdout), ("stderr", stderr))
               if asked == subprocess.PIPE}
    for path in outputs.values():
        path.touch()
    # not captured: /dev/null (the server's own stdout is not the test's); STDOUT: stderr into stdout's file
    targets = {name: str(outputs.get(name, os.devnull)) for name in ("stdout", "stderr")}
    if stderr == subprocess.STDOUT:
        targets["stderr"] = targets["stdout"]
    process = _server().Process(target=_in_child, args=(
        *how, os.fspath(cwd or os.getcwd()), child_env, targets["stdout"], targets["stderr"]))
    process.start()
    return ForkedProcess(command, process, folder, outputs, text)


def run(command, *, cwd=None, env=None, capture_output=False, text=False, timeout=None, check=False, **kwargs):
    """subprocess.run(command, ...), through `popen`: the process is killed when it passes `timeout`."""
    pipe = subprocess.PIPE if capture_output else kwargs.pop("stdout", None)
    errors = subprocess.PIPE if capture_output else kwargs.pop("stderr", None)
    proc = popen(command, cwd=cwd, env=env, stdout=pipe, stderr=errors, text=text, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    if check and proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, command, out, err)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)

