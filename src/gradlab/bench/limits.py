"""The machine's limits for the logistic-regression benchmark (Problem 8), and the library step against them.

A GD step on n points must at least read x and y once (2 n itemsize bytes) and evaluate one exp and one
log1p per point (the loss needs softplus, the gradient reuses exp for the sigmoid). The probes time exactly
that work in the same run and dtype:

    bandwidth probe:  sum(x) + sum(y)              -> bytes / second over the same bytes as a step reads
    exp/log probe:    sum(log1p(exp(-|x|)))        -> exp+log1p pairs / second, in XLA and in NumPy

so `probe time / step time` is the fraction of that limit a step reaches (1 = at the limit); a probe's time
is the fastest of its repeats, a step's the median of its own.

The sharded variant splits the data across JAX host devices (one per core). JAX sees more than one CPU
device only if XLA_FLAGS=--xla_force_host_platform_device_count=K is set before its backend starts, and
forcing devices changes how the single-device runs use the cores, so the sharded scan runs in a child
process (`python -m gradlab.bench.limits`) that times the 1-device and the K-device scan alternately, then
the 1-device scan pinned to one core: XLA's CPU backend already spreads a large step over its own threads,
and free time / pinned time bounds what K devices can add (cores / that factor).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gradlab.bench import impls
from gradlab.bench.timing import alternate, compile_timed, cores_busy, summarize, time_call, xla_cost
from gradlab.problems import logistic


def _probe_calls(x, y) -> dict:
    read_both = jax.jit(lambda a, b: jnp.sum(a) + jnp.sum(b))
    exp_log = jax.jit(lambda a: jnp.sum(jnp.log1p(jnp.exp(-jnp.abs(a)))))
    x_np = np.asarray(x)
    return {"read": lambda: read_both(x, y), "exp_log_xla": lambda: exp_log(x),
            "exp_log_numpy": lambda: np.sum(np.log1p(np.exp(-np.abs(x_np))))}


def _limits(stats: dict, x, y) -> dict[str, Any]:
    """A limit is what the machine can do: the fastest of a probe's repeats (a repeat that found one core busy
    elsewhere, or ran on one thread, measured up to 2x slower here), with the median and spread beside it."""
    n, nbytes = int(x.shape[0]), int(x.nbytes + y.nbytes)
    read, xla, numpy_ = stats["read"], stats["exp_log_xla"], stats["exp_log_numpy"]
    best = min(xla["min"], numpy_["min"])
    return {
        "bytes_per_step": nbytes,
        "bandwidth_probe_time": read["min"],
        "bandwidth_probe_median": read["median"],
        "bandwidth_probe_spread": read["spread"],
        "bandwidth_bytes_per_s": nbytes / read["min"],
        "exp_log_probe_time_xla": xla["min"],
        "exp_log_probe_median_xla": xla["median"],
        "exp_log_probe_spread_xla": xla["spread"],
        "exp_log_probe_time_numpy": numpy_["min"],
        "exp_log_probe_time": best,  # the faster of the two is the limit
        "exp_log_pairs_per_s": n / best,
    }


def probes(x, y, repeats: int) -> dict[str, Any]:
    """Time the bandwidth and exp/log probes on (x, y), alternating; returns seconds (medians) and rates."""
    record = alternate(_probe_calls(x, y), repeats, rewarm=False)
    return _limits({name: summarize(r["times"]) for name, r in record.items()}, x, y)


def step_anatomy(compiled: Any) -> dict[str, Any]:
    """What XLA made of a compiled step: its fusions (kernels run one after another over the data) and the
    temporary bytes it materialises. A step at the limit is one pass: one fusion reading x and y."""
    text = compiled.as_text()
    kinds = re.findall(r"= [a-z0-9\[\]{},]+ fusion\([^)]*\), kind=(\w+)", text)
    custom = re.findall(r'"kind":"(__\w+)"', text)
    cost = xla_cost(compiled)
    return {"fusions": len(kinds), "loop_fusions": kinds.count("kLoop"), "library_fusions": len(custom),
            "temp_bytes": cost["temp_bytes"], "bytes_accessed_per_step": cost["bytes_accessed"]}


def step_against_limits(x, y, *, lr_mean: float, steps: int, repeats: int) -> dict[str, Any]:
    """The library's GD step (scan of `steps` steps, and a Python loop over the jitted step) timed in turn with
    the probes on the same (x, y): time per step, the fraction of the exp/log limit, scan against loop."""
    phi_init, lr = jnp.zeros(2, x.dtype), jnp.asarray(lr_mean / x.shape[0], x.dtype)
    scan = impls.jax_scan(phi_init, lr, x, y, steps)
    loop = impls.jax_python_loop(phi_init, lr, x, y, steps)
    record = alternate({**_probe_calls(x, y), "scan": scan.call, "loop": loop.call}, repeats)
    stats = {name: summarize(r["times"]) for name, r in record.items()}
    limits = _limits(stats, x, y)
    scan_step, loop_step = stats["scan"]["median"] / steps, stats["loop"]["median"] / steps
    one_step, _ = compile_timed(impls.fused_step, phi_init, lr, x, y)
    return {
        "dtype": str(x.dtype), "n": int(x.shape[0]), "steps_per_call": steps, **limits,
        "scan_time_per_step": scan_step, "scan_spread_per_step": stats["scan"]["spread"] / steps,
        "loop_time_per_step": loop_step, "loop_spread_per_step": stats["loop"]["spread"] / steps,
        "fraction_of_exp_log_limit": limits["exp_log_probe_time"] / scan_step,
        "fraction_of_bandwidth_limit": limits["bandwidth_probe_time"] / scan_step,
        "loop_over_scan": loop_step / scan_step,
        "step_anatomy": step_anatomy(one_step),
        # cores kept busy (CPU time / wall time): the probe's kernel runs on every core, a step inside
        # lax.scan may run on one
        "cores_busy": {name: cores_busy(record[name]) for name in ("exp_log_xla", "scan", "loop")},
    }


# ------------------------------------------------------------------------------------- the sharded scan


def _sharded_main(spec: dict) -> dict:
    """In the child: the library scan on 1 device and on `devices` devices, timed alternately, per dtype."""
    jax.config.update("jax_enable_x64", True)
    x64, y64 = logistic.sample_data(jax.random.key(spec["seed"]), spec["n_per_class"], spec["mean0"],
                                    spec["mean1"], spec["std"])
    devices = jax.devices()[: spec["devices"]]
    mesh = Mesh(np.array(devices), ("data",))
    by_point = NamedSharding(mesh, PartitionSpec("data"))
    train, out = impls.library_train(spec["steps"]), {"devices": len(devices), "dtypes": {}}
    for dtype_name in spec["dtypes"]:
        dtype = jnp.dtype(dtype_name)
        x, y = x64.astype(dtype), y64.astype(dtype)
        phi_init, momentum = jnp.zeros(2, dtype), jnp.zeros((), dtype)
        lr = jnp.asarray(spec["lr_mean"] / x.shape[0], dtype)
        one_args = (phi_init, lr, momentum, jax.device_put(x, devices[0]), jax.device_put(y, devices[0]))
        many_args = (phi_init, lr, momentum, jax.device_put(x, by_point), jax.device_put(y, by_point))
        one, one_compile = compile_timed(train, *one_args)
        many, many_compile = compile_timed(train, *many_args)
        record = alternate({"one": lambda one=one, a=one_args: one(*a),
                            "many": lambda many=many, a=many_args: many(*a)}, spec["repeats"])
        result = {}
        for name, compile_s in (("one", one_compile), ("many", many_compile)):
            stats = summarize(record[name]["times"])
            result[name] = {"time_per_call_median": stats["median"], "time_per_call_spread": stats["spread"],
                            "compile_time": compile_s,
                            "phi": np.asarray(record[name]["result"].phi, np.float64).tolist()}
        ratios = [a / b for a, b in zip(record["one"]["times"], record["many"]["times"], strict=True)]
        out["dtypes"][dtype_name] = {"single_device": result["one"], "sharded": result["many"],
                                     "speedup_by_round": ratios,
                                     "cores_busy": {name: cores_busy(record[name]) for name in ("one", "many")},
                                     "single_device_on_one_core": _on_one_core(one, one_args, spec["repeats"])}
    return out


def _on_one_core(compiled, args, repeats: int) -> dict | None:
    """The single-device scan with this process pinned to one core: over its free time, how much of the
    machine one device already uses (XLA's CPU backend splits large elementwise kernels across its threads).
    The sharded scan can gain at most cores / that factor. None where affinity cannot be set (not Linux)."""
    if not (hasattr(os, "sched_setaffinity") and os.path.isdir("/proc/self/task")):
        return None
    allowed = os.sched_getaffinity(0)
    _pin_threads({min(allowed)})  # every thread of the process, XLA's pool included
    try:
        stats = time_call(compiled, *args, repeats=repeats)
    finally:
        _pin_threads(allowed)
    return {"time_per_call_median": stats["median"], "time_per_call_spread": stats["spread"],
            "cores_available": len(allowed)}


def run_sharded(spec: dict, timeout: float = 600) -> dict:
    """Run `_sharded_main(spec)` in a child process with `spec["devices"]` forced host devices, on the CPU backend
    explicitly (JAX_PLATFORMS=cpu): the flag applies to host devices only, and on a GPU machine the child's default
    backend would be the GPU, one device."""
    flags = os.environ.get("XLA_FLAGS", "")
    env = {**os.environ, **_compile_cache_env(), "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={spec['devices']}".strip()}
    proc = subprocess.run([sys.executable, "-m", "gradlab.bench.limits"], input=json.dumps(spec), text=True,
                          capture_output=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"sharded benchmark child failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pin_threads(cores: set[int]) -> None:
    """Run every thread of this process on `cores` (sched_setaffinity applies to one thread at a time)."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(tid), cores)


CACHE_OPTIONS = ("jax_enable_compilation_cache", "jax_compilation_cache_dir",
                 "jax_persistent_cache_min_compile_time_secs", "jax_persistent_cache_min_entry_size_bytes")


def _compile_cache_env() -> dict[str, str]:
    """This process's persistent-compilation-cache settings as the environment variables a child JAX reads, so
    the child loads what an earlier run compiled (or, with the cache off here, compiles)."""
    values = {name: getattr(jax.config, name) for name in CACHE_OPTIONS}
    return {name.upper(): str(value) for name, value in values.items() if value is not None}


if __name__ == "__main__":
    print(json.dumps(_sharded_main(json.loads(sys.stdin.read()))))
