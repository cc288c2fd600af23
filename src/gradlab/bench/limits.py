"""The machine's limits for the logistic-regression benchmark (issue 7), and the scanned loop on 2 devices.

A GD step on n points must at least read x and y once (2 n itemsize bytes) and evaluate one exp and one
log1p per point (the loss needs softplus, the gradient reuses exp for the sigmoid). The probes time exactly
that work in the same run and dtype:

    bandwidth probe:  sum(x) + sum(y)              -> bytes / second over the same bytes as a step reads
    exp/log probe:    sum(log1p(exp(-|x|)))        -> exp+log1p pairs / second, in XLA and in NumPy

so `probe time / step time` is the fraction of that limit a step reaches (1 = at the limit).

The sharded variant splits the data across JAX host devices (one per core). JAX sees more than one CPU
device only if XLA_FLAGS=--xla_force_host_platform_device_count=K is set before its backend starts, and
forcing devices changes how the single-device runs use the cores, so the sharded scan runs in a child
process (`python -m gradlab.bench.limits`) that times the 1-device and the K-device scan alternately.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np


def _median_seconds(fn, *args, repeats: int) -> list[float]:
    import jax

    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return times


def probes(x, y, repeats: int) -> dict[str, Any]:
    """Time the bandwidth and exp/log probes on (x, y); returns seconds (medians) and rates."""
    import jax
    import jax.numpy as jnp

    from gradlab.bench.timing import summarize

    read_both = jax.jit(lambda a, b: jnp.sum(a) + jnp.sum(b))
    exp_log = jax.jit(lambda a: jnp.sum(jnp.log1p(jnp.exp(-jnp.abs(a)))))
    x_np = np.asarray(x)

    def numpy_exp_log(a):
        return np.sum(np.log1p(np.exp(-np.abs(a))))

    read_times, xla_times, numpy_times = [], [], []
    for _ in range(repeats):  # alternate, like the implementations
        read_times += _median_seconds(read_both, x, y, repeats=1)
        xla_times += _median_seconds(exp_log, x, repeats=1)
        numpy_times += _median_seconds(numpy_exp_log, x_np, repeats=1)
    n, nbytes = int(x.shape[0]), int(x.nbytes + y.nbytes)
    read, xla, numpy_ = summarize(read_times), summarize(xla_times), summarize(numpy_times)
    best = min(xla["median"], numpy_["median"])
    return {
        "bytes_per_step": nbytes,
        "bandwidth_probe_time": read["median"],
        "bandwidth_probe_spread": read["spread"],
        "bandwidth_bytes_per_s": nbytes / read["median"],
        "exp_log_probe_time_xla": xla["median"],
        "exp_log_probe_time_numpy": numpy_["median"],
        "exp_log_probe_time": best,  # the faster of the two is the limit
        "exp_log_pairs_per_s": n / best,
    }


# ------------------------------------------------------------------------------------- the sharded scan


def _sharded_main(spec: dict) -> dict:
    """In the child: the analytic scan on 1 device and on `devices` devices, timed alternately."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    jax.config.update("jax_enable_x64", True)
    from gradlab.problems import logistic
    from gradlab.bench.impls import make_analytic_train
    from gradlab.bench.timing import compile_timed, summarize

    dtype = jnp.dtype(spec["dtype"])
    x, y = logistic.sample_data(jax.random.key(spec["seed"]), spec["n_per_class"], spec["mean0"],
                                spec["mean1"], spec["std"])
    x, y = x.astype(dtype), y.astype(dtype)
    phi_init = jnp.zeros(2, dtype)
    lr = jnp.asarray(spec["lr_mean"] / x.shape[0], dtype)
    devices = jax.devices()[: spec["devices"]]
    mesh = Mesh(np.array(devices), ("data",))
    by_point = NamedSharding(mesh, PartitionSpec("data"))
    x_sharded, y_sharded = jax.device_put(x, by_point), jax.device_put(y, by_point)
    x_one, y_one = jax.device_put(x, devices[0]), jax.device_put(y, devices[0])
    train = make_analytic_train(spec["steps"])
    one, one_compile = compile_timed(train, phi_init, lr, x_one, y_one)
    many, many_compile = compile_timed(train, phi_init, lr, x_sharded, y_sharded)
    one_times, many_times = [], []
    for _ in range(spec["repeats"]):
        one_times += _median_seconds(one, phi_init, lr, x_one, y_one, repeats=1)
        many_times += _median_seconds(many, phi_init, lr, x_sharded, y_sharded, repeats=1)
    one_stats, many_stats = summarize(one_times), summarize(many_times)
    phi_one = np.asarray(one(phi_init, lr, x_one, y_one)[0], np.float64)
    phi_many = np.asarray(many(phi_init, lr, x_sharded, y_sharded)[0], np.float64)
    return {
        "devices": len(devices),
        "single_device": {"time_per_call_median": one_stats["median"], "time_per_call_spread": one_stats["spread"],
                          "compile_time": one_compile, "phi": phi_one.tolist()},
        "sharded": {"time_per_call_median": many_stats["median"], "time_per_call_spread": many_stats["spread"],
                    "compile_time": many_compile, "phi": phi_many.tolist()},
    }


def run_sharded(spec: dict, timeout: float = 600) -> dict:
    """Run `_sharded_main(spec)` in a child process with `spec["devices"]` forced host devices."""
    flags = os.environ.get("XLA_FLAGS", "")
    env = {**os.environ, "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={spec['devices']}".strip()}
    proc = subprocess.run([sys.executable, "-m", "gradlab.bench.limits"], input=json.dumps(spec), text=True,
                          capture_output=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"sharded benchmark child failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(_sharded_main(json.loads(sys.stdin.read()))))
