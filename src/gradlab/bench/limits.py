"""The machine's limits for the logistic-regression benchmark (Problem 8), and the library step against them.

A GD step on n points must at least read x and y once (2 n itemsize bytes) and, per point, evaluate one exp,
one log1p and one division: with e = exp(-|z|) the loss needs softplus = max(z, 0) + log1p(e) and the gradient
the sigmoid e / (1 + e) (or 1 / (1 + e)). The probes time exactly that work in the same run, dtype and size:

    bandwidth probe:    sum(x) + sum(y)                         -> bytes / second over the bytes a step reads
    irreducible probe:  sum(log1p(e) + y e / (1 + e)), e = exp(-|x|)   the step's unavoidable per-point work
    empty call:         a jitted call on two numbers            -> the fixed cost of one dispatch and sync

and `probe time / step time` is the fraction of that limit a step reaches (1 = at the limit), both the median of
their repeats: the same statistic on both sides, so a noisy machine does not flatter one of them. A call that
takes only a few empty calls' time is launch-bound (a GPU at 1e6 points: ~50 us of fixed cost against ~4 us of
data): its fractions say nothing of the step's work, and the targets do not judge them (`launch_bound`).
On a CPU the irreducible probe also runs in NumPy (SIMD exp and log), and the faster of the two is the limit; on
another backend NumPy runs on the host, not the device, and is left out.

The sharded variant splits the data across JAX host devices (one per core). JAX sees more than one CPU
device only if XLA_FLAGS=--xla_force_host_platform_device_count=K is set before its backend starts, and
forcing devices changes how the single-device runs use the cores, so the sharded scan runs in a child
process (`python -m gradlab.bench.limits`, on the CPU backend whatever the default device: JAX_PLATFORMS=cpu)
that times the 1-device and the K-device scan alternately, then the 1-device scan pinned to one core: XLA's
CPU backend already spreads a large step over its own threads, and free time / pinned time bounds what K
devices can add (cores / that factor).
"""

from __future__ import annotations

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
from gradlab.runner import process


def irreducible_work(a: jax.Array, b: jax.Array) -> jax.Array:
    """sum_i log1p(e_i) + b_i e_i / (1 + e_i), e = exp(-|a|): one exp, one log1p, one division per point."""
    e = jnp.exp(-jnp.abs(a))
    return jnp.sum(jnp.log1p(e) + b * e / (1 + e))


def irreducible_work_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`irreducible_work` in NumPy."""
    e = np.exp(-np.abs(a))
    return np.sum(np.log1p(e) + b * e / (1 + e))


_read_both = jax.jit(lambda a, b: jnp.sum(a) + jnp.sum(b))
_irreducible = jax.jit(irreducible_work)
_empty = jax.jit(lambda phi: phi * 2)


def probe_calls(x, y) -> dict:
    """The zero-argument probe calls on (x, y) (see the module docstring); NumPy's on the CPU backend only."""
    phi = jnp.zeros(2, x.dtype)
    calls = {"read": lambda: _read_both(x, y), "irreducible_xla": lambda: _irreducible(x, y),
             "empty": lambda: _empty(phi)}
    if jax.default_backend() == "cpu":
        x_np, y_np = np.asarray(x), np.asarray(y)
        calls["irreducible_numpy"] = lambda: irreducible_work_numpy(x_np, y_np)
    return calls


def _limits(stats: dict, x, y) -> dict[str, Any]:
    """The limits from the probes' timings (`summarize` of each): every time a median, as a step's is."""
    n, nbytes = int(x.shape[0]), int(x.nbytes + y.nbytes)
    read, xla = stats["read"], stats["irreducible_xla"]
    numpy_ = stats.get("irreducible_numpy")
    best = min(xla["median"], numpy_["median"]) if numpy_ else xla["median"]
    return {
        "n": n,
        "bytes_per_step": nbytes,
        "bandwidth_probe_time": read["median"],
        "bandwidth_probe_spread": read["spread"],
        "bandwidth_bytes_per_s": nbytes / read["median"],
        "irreducible_probe_time_xla": xla["median"],
        "irreducible_probe_spread_xla": xla["spread"],
        "irreducible_probe_time_numpy": numpy_ and numpy_["median"],
        "irreducible_probe_time": best,  # the faster of the two is the limit
        "irreducible_points_per_s": n / best,
        "empty_call_time": stats["empty"]["median"],
    }


def probes(x, y, repeats: int) -> dict[str, Any]:
    """Time the probes on (x, y), alternating; returns seconds (medians) and rates."""
    record = alternate(probe_calls(x, y), repeats, rewarm=False)
    return _limits({name: summarize(r["times"]) for name, r in record.items()}, x, y)


def empty_call_time(dtype, repeats: int) -> float:
    """Median seconds of the empty call (a jitted call on two numbers, blocked on) in `dtype`."""
    phi = jnp.zeros(2, dtype)
    return summarize(alternate({"empty": lambda: _empty(phi)}, repeats, rewarm=False)["empty"]["times"])["median"]


def launch(call_time: float, empty_call_time: float, factor: float) -> dict[str, Any]:
    """A call against the empty call: launch-bound when it takes under `factor` empty calls' time."""
    return {"time": call_time, "empty_call_time": empty_call_time, "empty_calls": call_time / empty_call_time,
            "launch_bound": call_time < factor * empty_call_time}


def step_anatomy(compiled: Any) -> dict[str, Any]:
    """What XLA made of a compiled step: its fusions (kernels run one after another over the data) and the
    temporary bytes it materialises. A step at the limit is one pass: one fusion reading x and y."""
    text = compiled.as_text()
    kinds = re.findall(r"= [a-z0-9\[\]{},]+ fusion\([^)]*\), kind=(\w+)", text)
    custom = re.findall(r'"kind":"(__\w+)"', text)
    cost = xla_cost(compiled)
    return {"fusions": len(kinds), "loop_fusions": kinds.count("kLoop"), "library_fusions": len(custom),
            "temp_bytes": cost["temp_bytes"], "bytes_accessed_per_step": cost["bytes_accessed"]}


def step_against_limits(x, y, *, lr_mean: float, steps: int, repeats: int, launch_factor: float) -> dict[str, Any]:
    """The library's GD step (scan of `steps` steps, and a Python loop over the jitted step) timed in turn with
    the probes on the same (x, y): time per step, the fractions of the limits, scan against loop, and whether
    the step or the probes are launch-bound (then no fraction is a statement about the work)."""
    phi_init, lr = jnp.zeros(2, x.dtype), jnp.asarray(lr_mean / x.shape[0], x.dtype)
    scan = impls.jax_scan(phi_init, lr, x, y, steps)
    loop = impls.jax_python_loop(phi_init, lr, x, y, steps)
    record = alternate({**probe_calls(x, y), "scan": scan.call, "loop": loop.call}, repeats)
    stats = {name: summarize(r["times"]) for name, r in record.items()}
    limits = _limits(stats, x, y)
    scan_step, loop_step = stats["scan"]["median"] / steps, stats["loop"]["median"] / steps
    one_step, _ = compile_timed(impls.fused_step, phi_init, lr, x, y)
    return {
        "dtype": str(x.dtype), "n": int(x.shape[0]), "steps_per_call": steps, **limits,
        "device": f"{jax.default_backend()}: {jax.devices()[0].device_kind}",
        "scan_time_per_step": scan_step, "scan_spread_per_step": stats["scan"]["spread"] / steps,
        "loop_time_per_step": loop_step, "loop_spread_per_step": stats["loop"]["spread"] / steps,
        "fraction_of_irreducible_limit": limits["irreducible_probe_time"] / scan_step,
        "fraction_of_bandwidth_limit": limits["bandwidth_probe_time"] / scan_step,
        "loop_over_scan": loop_step / scan_step,
        # per limit, the shorter of the two calls compared (a step inside the scan, the probe) against an empty call
        "launch": {limit: launch(min(scan_step, limits[f"{limit}_probe_time"]), limits["empty_call_time"],
                                 launch_factor) for limit in ("irreducible", "bandwidth")},
        "step_anatomy": step_anatomy(one_step),
        # cores kept busy (CPU time / wall time): the probe's kernel runs on every core, a step inside
        # lax.scan may run on one
        "cores_busy": {name: cores_busy(record[name]) for name in ("irreducible_xla", "scan", "loop")},
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
    with process.on_cores(1) as cores:  # every thread of the process, XLA's pool included
        if cores is None:
            return None
        stats = time_call(compiled, *args, repeats=repeats)
    return {"time_per_call_median": stats["median"], "time_per_call_spread": stats["spread"],
            "cores_available": cores["available"]}


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


CACHE_OPTIONS = ("jax_enable_compilation_cache", "jax_compilation_cache_dir",
                 "jax_persistent_cache_min_compile_time_secs", "jax_persistent_cache_min_entry_size_bytes")


def _compile_cache_env() -> dict[str, str]:
    """This process's persistent-compilation-cache settings as the environment variables a child JAX reads, so
    the child loads what an earlier run compiled (or, with the cache off here, compiles)."""
    values = {name: getattr(jax.config, name) for name in CACHE_OPTIONS}
    return {name.upper(): str(value) for name, value in values.items() if value is not None}


if __name__ == "__main__":
    print(json.dumps(_sharded_main(json.loads(sys.stdin.read()))))
