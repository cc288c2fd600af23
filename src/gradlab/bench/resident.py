"""The memory one gradient call of the depth study takes, measured by the operating system in a fresh process:
the independent check of the XLA buffer plan that the memory-vs-depth claims fit (Problem 10, rematerialisation).

XLA's memory analysis gives, at compile time, the bytes a program allocates: its temporaries and its outputs.
The process's resident set is a second account of the same bytes, kept by the kernel. Within the study's own
process that account cannot isolate one call, because XLA's CPU runtime and the C allocator keep freed buffers
resident and the next call reuses them: there the high-water mark rose by 0 bytes for a call that allocates
12 MB. In a process that has run nothing else but the same kernels once on a one-layer net (their first use
allocates workspaces that stay: 0.3-0.7 MiB in float64, 6.6 MiB in float32), a call's rise is its own:

    rise = VmHWM after one call - VmRSS before it   (VmHWM reset to VmRSS through /proc/self/clear_refs)
         = temporaries + outputs, measured within -0.12 and +0.36 MiB on a CPU in both precisions

On a device that reports memory_stats() (GPU, TPU) the same fresh process reads peak_bytes_in_use -
bytes_in_use instead: host memory does not see device buffers.

Run as `python -m gradlab.bench.resident '<json>'` with depth, width, n_samples, strategy, seed, precision and
compile_cache; it prints one JSON line: {rise_bytes, temp_bytes, output_bytes, source}.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ALLOWANCE_BYTES = 2**20  # |rise - XLA's plan| allowed: measured -0.12 to +0.36 MiB on a CPU, float32 and float64


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_resident_bytes(fn: Callable, args: tuple) -> int | None:
    """Bytes the resident high-water mark rose over the resident size while fn(*args) ran once: VmHWM is reset
    to VmRSS by writing 5 to /proc/self/clear_refs. None where that is not possible (not Linux, no permission)."""
    from gradlab.bench.timing import block

    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    before = _status_kib("VmRSS")
    block(fn(*args))
    peak = _status_kib("VmHWM")
    return None if before is None or peak is None else 1024 * (peak - before)


def measure(depth: int, width: int, n_samples: int, strategy: str, seed: int, precision: str,
            compile_cache: str | None) -> dict:
    """In this (fresh) process: compile the depth study's gradient, run the same kernels once on a one-layer net,
    release the allocator's free memory, call the gradient once and return what it took beside XLA's plan."""
    import jax

    jax.config.update("jax_enable_x64", precision == "float64")
    from gradlab.bench.autodiff_study import depth_problem
    from gradlab.bench.timing import block
    from gradlab.problems import autodiff_cost as cost
    from gradlab.runner.meta import set_compile_cache

    set_compile_cache(compile_cache)
    gradient = jax.jit(jax.grad(cost.deep_loss(strategy)))
    args = depth_problem(seed, depth, width, n_samples)  # the study's data
    executable = gradient.lower(*args).compile()
    plan = executable.memory_analysis()
    block(gradient(*depth_problem(seed, 1, width, n_samples)))  # the kernels' workspaces, before the measured call
    stats = jax.devices()[0].memory_stats()
    if stats and "peak_bytes_in_use" in stats:  # a peak since the process started: compiling may have set it
        block(executable(*args))
        peak = jax.devices()[0].memory_stats()["peak_bytes_in_use"]
        rise = peak - stats["bytes_in_use"] if peak > stats["peak_bytes_in_use"] else None
        source = "device peak_bytes_in_use - bytes_in_use"
        source += "" if rise is not None else ": hidden by an earlier, higher peak"
    else:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        if hasattr(libc, "malloc_trim"):  # glibc
            libc.malloc_trim(0)  # what compiling freed goes back to the system, not to this call
        rise = peak_resident_bytes(executable, args)
        source = "process VmHWM - VmRSS" + ("" if rise is not None else ": no /proc/self/clear_refs here")
    return {"rise_bytes": rise, "temp_bytes": plan.temp_size_in_bytes, "output_bytes": plan.output_size_in_bytes,
            "source": source}


def in_fresh_processes(cfg, depth: int, timeout_s: float = 300) -> dict:
    """measure() for every checkpoint strategy at `depth`, each in a new Python process (two at a time, on every
    core the run may use); {strategy: result, or {"error": reason}}."""
    import jax

    from gradlab.problems.autodiff_cost import CHECKPOINT_STRATEGIES
    from gradlab.runner.process import cores_allowed

    # on a GPU the study's process holds the device (a child that preallocated its default 75% would not start),
    # and autotuning while compiling would set the device's peak before the call: both off in the child
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    if jax.default_backend() == "gpu":
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_gpu_autotune_level=0".strip()

    def one(strategy: str) -> dict:
        spec = {"depth": depth, "width": cfg.memory.width, "n_samples": cfg.memory.n_samples, "strategy": strategy,
                "seed": cfg.seed, "precision": cfg.precision, "compile_cache": cfg.compile_cache}
        try:
            proc = subprocess.run([sys.executable, "-m", __name__, json.dumps(spec)], capture_output=True, text=True,
                                  timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired:
            return {"error": f"no result within {timeout_s:g} s"}
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]}
        return json.loads(proc.stdout.splitlines()[-1])

    cores = cores_allowed()

    def on_every_core() -> None:
        """Each pool thread, and so its children, on every core the run may use (a run timing on fewer, `cores`, has
        timed): the probe measures memory, not time."""
        if cores:
            os.sched_setaffinity(0, cores)

    with ThreadPoolExecutor(max_workers=2, initializer=on_every_core) as pool:
        return dict(zip(CHECKPOINT_STRATEGIES, pool.map(one, CHECKPOINT_STRATEGIES), strict=True))


def summary(results: dict, depth: int) -> dict:
    """Per strategy: the measured rise against XLA's plan (temp + output); the largest |rise - plan| over the
    strategies is what the claim bounds by ALLOWANCE_BYTES."""
    rows, excess = {}, []
    for strategy, r in results.items():
        if r.get("rise_bytes") is None:
            rows[strategy] = {"error": r.get("error") or r.get("source", "")}
            continue
        plan = r["temp_bytes"] + r["output_bytes"]
        rows[strategy] = {**r, "plan_bytes": plan, "excess_bytes": r["rise_bytes"] - plan,
                          "rise_minus_output_bytes": r["rise_bytes"] - r["output_bytes"]}
        excess.append(abs(r["rise_bytes"] - plan))
    complete = len(excess) == len(results)
    return {"depth": depth, "per_strategy": rows, "max_abs_excess_bytes": max(excess) if complete else None,
            "allowance_bytes": ALLOWANCE_BYTES,
            "method": "each strategy's gradient compiled and called once in a new process: the rise of its resident "
                      "high-water mark (or device peak) against XLA's temp + output bytes"}


if __name__ == "__main__":
    print(json.dumps(measure(**json.loads(sys.argv[1]))))
