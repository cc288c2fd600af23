"""Why deep nets use reverse mode (Problem 10): cost of the gradient by jvp vs vjp as P grows.

python experiments/autodiff_scaling.py                        # defaults: configs/autodiff_scaling.yaml
python experiments/autodiff_scaling.py scale=full             # the long version (configs/scale_preset/)
python experiments/autodiff_scaling.py 'families=[linear]' 'linear.P=[4,16,64,256]' timing.rounds=5
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.bench import autodiff as measure
from gradlab.bench import autodiff_report as report
from gradlab.bench import autodiff_summary as summarise
from gradlab.bench import resident
from gradlab.bench.autodiff_study import Study
from gradlab.experiments import memory as estimates
from gradlab.problems import autodiff_cost as cost
from gradlab.problems import scaling_fits as fits
from gradlab.runner import quiet
from gradlab.runner.config import (
    at_least,
    check_presets,
    checked,
    each,
    for_backend,
    fraction,
    in_range,
    positive,
    seed,
)
from gradlab.runner.run import BaseConfig, RunContext, RunFailed, launch, memory_budget_bytes

FAMILIES = ("linear", "mlp")


def _increasing_ints(values, low: int = 1) -> bool:
    ints = all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in values)
    return len(values) > 0 and ints and all(a < b for a, b in zip(values[:-1], values[1:], strict=True))


def _sizes(low: int = 1, *, may_be_empty: bool = False):
    if may_be_empty:  # an empty list skips that part of the experiment
        ok = lambda v: len(v) == 0 or _increasing_ints(v, low)  # noqa: E731
        return checked(ok, f"an increasing list of integers >= {low} (empty: skip this part)")
    return checked(lambda v: _increasing_ints(v, low), f"a non-empty increasing list of integers >= {low}")


@dataclass
class LinearConfig:
    P: list[int] = _sizes()  # weights of the logistic model


@dataclass
class MlpConfig:
    widths: list[int] = _sizes()  # hidden width sets P
    depth: int = at_least(1)  # hidden layers
    input_dim: int = at_least(1)
    n_samples: int = at_least(1)  # data points of the MLP's loss (jacfwd keeps P x n_samples x width tangents)
    flops_width: int = at_least(1)  # the net at which cost(grad)/cost(f) -> 3 is counted (traced, not run)
    flops_depth: int = at_least(2)


@dataclass
class TimingConfig:
    rounds: int = at_least(3)  # interleaved rounds: every time is the minimum of its round minima
    repeats: int = at_least(5)  # the most back-to-back calls per (function, round) ...
    min_window_s: float = positive()  # ... enough of them to span this long (a slow call runs once a round)
    recheck_s: float = positive()  # a function whose first call took less is called again alone to set that number
    floor_factor: float = at_least(1.0)  # fit only calls >= this x the empty call with the same arguments
    fit_min_sizes: int = at_least(3)  # a time slope needs at least this many sizes above the floor
    min_decades: float = positive()  # ... spanning at least this many decades of P (else a warning)
    confidence: float = in_range(0.5, 1.0)  # of each slope's t interval
    max_interval_width: float = positive()  # the slope-difference claims' bound on their interval's width
    load_sample_s: float = positive()  # how long the machine's load is sampled before and after
    max_call_s: float = positive()  # a forward route predicted (P x one jvp) to take longer per call is skipped


@dataclass
class GradTolerance:  # max relative difference for two gradients to count as equal, per precision
    float64: float = positive()
    float32: float = positive()


@dataclass
class MirrorConfig:
    sizes: list[int] = _sizes(may_be_empty=True)  # n_in and n_out of the grid of maps R^n_in -> R^n_out
    hidden: int = at_least(1)


@dataclass
class MemoryConfig:
    depths: list[int] = _sizes(may_be_empty=True)
    width: int = at_least(1)
    n_samples: int = at_least(1)


@dataclass
class Config(BaseConfig):
    seed: int = seed()
    families: list[str] = each(lambda f: f in FAMILIES, f"one of {', '.join(FAMILIES)}")
    n_samples: int = at_least(1)  # data points the loss averages over: cost(f) ~ 2 n_samples P
    linear: LinearConfig
    mlp: MlpConfig
    timing: TimingConfig
    grad_rtol: GradTolerance
    mirror: MirrorConfig
    memory: MemoryConfig
    backend: str  # whose sizes: auto (the default device's platform), cpu (the top-level keys) or a preset's name
    device_memory_fraction: float = fraction()
    presets: dict[str, Any]  # per platform, the keys whose values differ from the top-level (CPU) ones


def check_config(cfg: Config) -> None:
    check_presets(cfg, Config)


def memory_estimate(cfg: Config) -> dict[str, float]:
    """Bytes by the keys that size them: the data of every size (all are alive while the rounds interleave),
    jacfwd's P x N tangents at the largest P, the mirror grid's largest Jacobian, the deep nets' weights and
    activations, and the MLP's unrolled layers (~5 MB of compiled code each, measured at depth 100 and 300)."""
    word = estimates.word(cfg.precision)
    parts = []
    if "linear" in cfg.families:
        P = max(cfg.linear.P)
        # every size's data is alive while the rounds interleave; jacfwd adds an n_samples x P tangent block
        parts.append(estimates.split(cfg.n_samples * (sum(cfg.linear.P) * (8 + word) + 3 * P * word),
                                     {"linear.P": P, "n_samples": cfg.n_samples}))  # fmt: skip
    if "mlp" in cfg.families:
        m = cfg.mlp
        width = max(m.widths)
        P = cost.mlp_parameter_count(m.input_dim, width, m.depth)
        # jacfwd pushes P tangents through every activation: XLA's temporaries measured 1.04-1.06 x P n width
        # words at widths 16-48 (depth 1)
        parts.append(estimates.split(1.25 * m.depth * P * m.n_samples * width * word,
                                     {"mlp.widths": P * width, "mlp.n_samples": m.n_samples}))  # fmt: skip
        parts.append({"mlp.depth": m.depth * 5e6})
    if cfg.mirror.sizes:
        M = max(cfg.mirror.sizes)
        parts.append(estimates.split(4 * M * (M + cfg.mirror.hidden) * word, {"mirror.sizes": M**2,
                                                                               "mirror.hidden": cfg.mirror.hidden}))
    if cfg.memory.depths:
        mem = cfg.memory
        D = max(mem.depths)
        parts.append(estimates.split(4 * D * (mem.width + mem.n_samples) * mem.width * word,
                                     {"memory.depths": D, "memory.width": mem.width**2}))  # fmt: skip
    return estimates.combined(*parts) if parts else {}


# --------------------------------------------------------------------------------------------------------
# The study: build -> time -> summarise


def main(cfg: Config, ctx: RunContext) -> dict:
    cfg, preset = for_backend(cfg, Config, jax.default_backend())
    t = cfg.timing
    rtol = getattr(cfg.grad_rtol, cfg.precision)
    guard = measure.DeviceMemory(memory_budget_bytes(cfg.memory_budget_gb), cfg.device_memory_fraction)
    study = Study(cfg, guard, measure.Records(ctx.path("sizes.jsonl")))
    phases, clock = {}, time.perf_counter()
    rows, problems = {}, {}
    # products at full precision wherever a claim compares numbers (float32 on a GPU would use TF32 otherwise)
    with jax.default_matmul_precision("highest"):
        for family in cfg.families:
            sizes_of = cfg.linear.P if family == "linear" else cfg.mlp.widths
            rows[family], problems[family] = study.scaling(family, sizes_of)
        study.mirror()
        depth_rows = study.memory()
        phases["compile_and_first_calls_s"] = time.perf_counter() - clock
        with quiet.alone() as machine:  # in the main job: once no other run computes (compiled beside them)
            load_before = measure.machine_load(t.load_sample_s)
            timing_started = time.perf_counter()
            calls = measure.calls_per_round(study.items, study.first_s, t.min_window_s, t.repeats, t.recheck_s)
            minima, during, failed = measure.timed_rounds(study.items, calls, t.rounds, cfg.seed)
            phases["timing_s"] = time.perf_counter() - timing_started
            load_after = measure.machine_load(t.load_sample_s)
    phases["waited_for_the_machine_s"] = machine["waited_s"]
    for key, reason in failed.items():
        study.skip(key[0], key[1], key[-1], reason, "failed while timing")
    # XLA's memory plan against the operating system's account, in new processes: after timing, which they would
    # disturb, and beside the summaries below (they wait on the processes)
    probe = None
    if depth_rows and not _missing(study, "depth"):
        background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memory-probe")
        probe = background.submit(resident.in_fresh_processes, cfg, cfg.memory.depths[-1])
        background.shutdown(wait=False)  # the probe runs to its end; nothing else is submitted
    load = {"before": load_before, "after": load_after, "while_timing": during,
            "alone_in_main_job": machine["main_job"],  # other runs of the main job waited while this one timed
            "statistic": "best: minimum over rounds of each round's minimum; interval [min, max] over rounds"}
    for when in ("before", "after"):
        if load[when]["overloaded"]:
            ctx.warn(f"load average {load[when]['loadavg'][0]:.2f} {when} timing exceeded the {load[when]['cores']} "
                     "cores: times are minima over rounds, but read the slopes with their intervals")

    sizes, slopes, ratios, checks = {}, {}, {}, []
    for family in cfg.families:
        sizes[family] = summarise.size_rows(family, rows[family], problems[family], minima, calls, study.outputs,
                                            t.floor_factor, rtol)  # fmt: skip
        for row in sizes[family]:
            study.records.add({"part": family, "stage": "timed", "P": row["P"], "time": row["time"],
                               "calls_per_round": row["calls_per_round"],
                               "grad_max_rel_diff": row["grad_max_rel_diff"]})  # fmt: skip
        slopes[family] = summarise.slopes(sizes[family], t)
        ratios[family] = summarise.ratios(family, sizes[family], minima, t)
        for name, ratio in (("time_slope_difference", "seq_over_rev_fit"),
                            ("time_slope_difference_batched", "batched_over_rev_fit")):
            slopes[family][name] = fits.paired_difference(ratios[family][ratio])
        checks += [r["grads_match"] for r in sizes[family]]
        spans = [s["decades"] for s in slopes[family]["time_fit"].values()]
        spans.append(ratios[family]["seq_over_rev_fit"]["decades"])
        if min(spans, default=0.0) < t.min_decades:
            ctx.warn(f"{family}: a time fit spans {min(spans):.2f} decades of P above the floor "
                     f"(< timing.min_decades = {t.min_decades}): widen {family}'s sizes")
    mirror = memory = None  # both need every cell / depth
    if cfg.mirror.sizes and not _missing(study, "mirror"):
        mirror = summarise.mirror(cfg, minima, study.outputs, rtol)
    if probe is not None:
        memory = summarise.memory(cfg, depth_rows, minima, study.outputs, rtol, probe.result())
    checks += [] if mirror is None else [mirror["jacobians_match"]]
    checks += [] if memory is None else [r["grads_match"] for r in memory["rows"]]
    flop_ratio = summarise.flop_ratio(cfg, sizes)
    hvp_keys = [k for k in study.outputs if k[0] == "linear" and k[-1] == "hvp"]
    hvp = summarise.hvp_check([study.items[k][1] for k in hvp_keys], [study.outputs[k] for k in hvp_keys]) \
        if hvp_keys else None  # fmt: skip
    all_match = all(checks)

    for family in cfg.families:
        ctx.keep(**report.scaling_arrays(family, sizes[family], slopes[family], ratios[family]))
        ctx.log.info("%s time slopes: %s", family, {r: f["slope"] for r, f in slopes[family]["time_fit"].items()})
    ctx.keep(routes=np.array(cost.ROUTES))
    if mirror:
        ctx.keep(**report.mirror_arrays(mirror))
    if memory:
        ctx.keep(**report.memory_arrays(memory))
    ctx.save_text("report_tables.md", report.report_tables(sizes, slopes, ratios, load, study.skipped))
    if study.skipped:
        ctx.warn(f"{len(study.skipped)} functions not run (skipped or failed, the run went on): "
                 + "; ".join(s["detail"] for s in study.skipped[:3]) + ("; ..." if len(study.skipped) > 3 else ""))
    if not all_match:
        bad = [(f, r["P"], r["grad_max_rel_diff"]) for f, rs in sizes.items() for r in rs if not r["grads_match"]]
        raise RunFailed(f"gradient routes disagree beyond rtol={rtol}: {bad or 'see mirror/depth checks'}")
    phases["total_s"] = time.perf_counter() - clock
    free_at_end = guard.free_bytes()
    return {
        "sizes": sizes,
        "slopes": slopes,
        "ratios": ratios,
        "flop_ratio": flop_ratio,
        "hvp": hvp,
        "mirror": mirror,
        "memory_vs_depth": memory,
        "load": load,
        "all_grads_match": all_match,
        "grad_rtol_used": rtol,
        "backend": {"platform": jax.default_backend(), "preset": preset, "device": str(jax.devices()[0]),
                    "free_bytes_at_end": free_at_end[0], "free_bytes_source": free_at_end[1]},
        "skipped": study.skipped,
        "phases_s": phases,
        "notes": {
            "statistic": load["statistic"] + f" ({t.rounds} rounds; each round minimum over <= {t.repeats} calls "
            f"spanning >= {t.min_window_s} s)",
            "floor": f"a time enters a fit only if >= {t.floor_factor} x the empty call (identity in theta, same "
            "arguments) at the same size and round statistic; sizes.*.floor_s",
            "flops": "multiply-add FLOPs of the matrix products on the jaxpr (cost.dot_flops), scan bodies x length",
            "slopes": f"least squares of log time on log P, {t.confidence:.0%} t interval; difference: Welch",
            "fixed_share": "ratios.*.fixed_share: t = a + b P fitted per route; a / t is the part of a call that does "
            "not grow with P (the loss's per-sample work, the call): the textbook's slope 1 assumes it is small",
            "dtype": str(jnp.asarray(0.0).dtype),
            "sizes_jsonl": "sizes.jsonl: one record per size, written as each is compiled and called once",
        },
    }


def _missing(study: Study, part: str) -> bool:
    """Whether any function of a part (the mirror grid, the depth study) did not run: its summary needs all."""
    return any(s["part"] == part for s in study.skipped)


if __name__ == "__main__":
    launch("autodiff_scaling")
