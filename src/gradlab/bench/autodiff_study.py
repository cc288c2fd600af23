"""Building the scaling study (Problem 10): every function to be timed compiled once, checked against the
device's memory, called once (its output kept for the correctness checks), keyed by (part, ..., function); what
could not run is recorded with its reason and the study goes on. `gradlab.experiments.autodiff_scaling` then
times the items in interleaved rounds (`gradlab.bench.autodiff.timed_rounds`) and summarises them
(`gradlab.bench.autodiff_summary`)."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from gradlab.bench import autodiff as measure
from gradlab.experiments import memory as estimates
from gradlab.problems import autodiff_cost as cost

STRATEGIES = cost.CHECKPOINT_STRATEGIES


def _rng(seed: int, *stream: int) -> np.random.Generator:
    """An independent numpy stream per (part, size), all derived from the one seed."""
    return np.random.default_rng([seed, *stream])


def depth_problem(seed: int, depth: int, width: int, n_samples: int):
    """(Ws, X) of the depth study at `depth`, from its own stream of the seed (`gradlab.bench.resident` builds the
    same problem in a new process)."""
    return cost.deep_problem(depth, width, n_samples, _rng(seed, 4, depth))


def _data_bytes(cfg, family: str, size: int) -> float:
    """The device bytes a size's data and parameters take (X is n_samples x P for the logistic model)."""
    word = estimates.word(cfg.precision)
    if family == "linear":
        return word * (cfg.n_samples * (size + 1) + 2 * size)
    m = cfg.mlp
    return word * (m.n_samples * (m.input_dim + 1) + 2 * cost.mlp_parameter_count(m.input_dim, size, m.depth))


def _problem(cfg, family: str, i: int, size: int) -> cost.ScalarLoss:
    if family == "linear":
        return cost.linear_family(size, cfg.n_samples, _rng(cfg.seed, 0, i))
    m = cfg.mlp
    return cost.mlp_family(size, m.depth, m.input_dim, m.n_samples, _rng(cfg.seed, 1, i))


def _bar(items, desc: str):
    items = list(items)
    return tqdm(items, desc=desc, total=len(items), file=sys.stderr, leave=False, dynamic_ncols=True)


class Study:
    """Everything to be timed, compiled once and called once, keyed by (part, ..., function); what could not
    run, with the reason. A function is compiled, checked against the device's memory, then called once (its
    output kept); the forward routes only if P x one jvp fits timing.max_call_s."""

    def __init__(self, cfg, guard: measure.DeviceMemory, records: measure.Records):
        self.cfg, self.guard, self.records = cfg, guard, records
        self.items, self.outputs, self.first_s, self.skipped = {}, {}, {}, []

    def skip(self, part, size, function, reason, status="skipped") -> None:
        detail = f"{part} {size} {function}: {status}, {reason}"
        self.skipped.append({"part": part, "size": size, "function": function, "status": status, "reason": reason,
                             "detail": detail})  # fmt: skip

    def add(self, key, fn, args, part, size, predicted_s: float | None = None) -> dict:
        """Compile, check memory (and the predicted time), call once; {compile_s, temp_bytes} or {} if not run."""
        t = self.cfg.timing
        if predicted_s is not None and predicted_s > t.max_call_s:
            self.skip(part, size, key[-1], f"predicted {predicted_s:.3g} s a call (P x one jvp) > timing.max_call_s "
                      f"= {t.max_call_s}")  # fmt: skip
            return {}
        compiled, error = measure.attempt(measure.compiled, fn, args)
        if error is not None:
            self.skip(part, size, key[-1], error, "failed")
            return {}
        executable, info = compiled
        refusal = self.guard.refuse(measure.program_bytes(executable))
        if refusal is not None:
            self.skip(part, size, key[-1], refusal)
            return {}
        result, error = measure.attempt(measure.first_call, executable, args, t.min_window_s)
        if error is not None:
            self.skip(part, size, key[-1], error, "failed")
            return {}
        self.items[key] = (executable, args)
        self.outputs[key], self.first_s[key] = result
        return info

    def scaling(self, family: str, sizes: list[int]) -> tuple[list[dict], list]:
        """Per size: the empty call, f, one jvp, (the logistic model's) HVP and the three gradient routes, with
        their matrix-product FLOPs counted on the jaxpr; a size whose data does not fit is skipped whole."""
        rows, problems, rng = [], [], _rng(self.cfg.seed, 5, len(family))
        for i, size in enumerate(_bar(sizes, f"{family} sizes")):
            refusal = self.guard.refuse(_data_bytes(self.cfg, family, size))
            if refusal is not None:
                self.skip(family, size, "data", refusal)
                continue
            problem, error = measure.attempt(_problem, self.cfg, family, i, size)
            if error is not None:
                self.skip(family, size, "data", error, "failed")
                continue
            args = (problem.theta, *problem.data)
            v = jnp.asarray(rng.standard_normal(problem.P), dtype=problem.theta.dtype)
            fns = {"empty": (cost.empty_call, args),
                   "jvp": (cost.one_jvp(problem.loss), (problem.theta, v, *problem.data)),
                   **{route: (fn, args) for route, fn in cost.routes(problem.loss).items()}}  # fmt: skip
            if family == "linear":  # the HVP's closed form is the logistic model's
                fns["hvp"] = (cost.hessian_vector_product(problem.loss), (problem.theta, v, *problem.data))
            row = {"P": problem.P, **problem.describe, "flops": {}, "compile_s": {}, "temp_bytes": {}}
            index = len(rows)
            for name, (fn, fn_args) in fns.items():
                key = (family, index, name)
                jvp_s = self.first_s.get((family, index, "jvp"))
                forward = name in ("fwd_batched", "fwd_sequential") and jvp_s is not None
                info = self.add(key, fn, fn_args, family, problem.P, problem.P * jvp_s if forward else None)
                if info:
                    row["compile_s"][name], row["temp_bytes"][name] = info["compile_s"], info["temp_bytes"]
                if name != "empty":  # matrix-product FLOPs counted on the jaxpr (scan bodies x their length)
                    row["flops"][name] = cost.dot_flops(fn, *fn_args)
            row["ran"] = sorted(name for name in fns if (family, index, name) in self.items)
            self.records.add({"part": family, "stage": "compiled and called once", **row})
            rows.append(row)
            problems.append(problem)
        return rows, problems

    def mirror(self) -> None:
        """jacfwd and jacrev of g: R^n_in -> R^n_out over the grid, and one empty call with the largest cell's
        arguments (the dearest to pass): the grid's floor, ~10 us whatever the cell, so one call stands for all."""
        sizes = self.cfg.mirror.sizes
        for i, n_in in enumerate(sizes):
            for j, n_out in enumerate(sizes):
                args = cost.two_layer_problem(n_in, n_out, self.cfg.mirror.hidden, _rng(self.cfg.seed, 2, i, j))
                for mode, transform in (("jacfwd", jax.jacfwd), ("jacrev", jax.jacrev)):
                    self.add(("mirror", i, j, mode), transform(cost.two_layer_map), args, "mirror", f"{n_in}x{n_out}")
        if sizes:
            self.add(("mirror", "empty"), cost.empty_call, args, "mirror", f"{n_in}x{n_out}")

    def memory(self) -> list[dict]:
        """Per depth and checkpoint strategy: XLA's temporary memory (`gradlab.bench.resident` checks it against
        the operating system's account, in fresh processes)."""
        mem, rows = self.cfg.memory, []
        for d in _bar(mem.depths, "depths"):
            args = depth_problem(self.cfg.seed, d, mem.width, mem.n_samples)
            row = {"depth": d, "activation_bytes": args[1].size * args[1].dtype.itemsize}
            for strategy in STRATEGIES:
                info = self.add(("depth", d, strategy), jax.grad(cost.deep_loss(strategy)), args, "depth", d)
                row[f"temp_bytes_{strategy}"] = info.get("temp_bytes")
            rows.append(row)
        return rows
