"""Figures of the reverse- vs forward-mode cost experiment (`gradlab.experiments.autodiff_scaling`, Problem 10),
drawn from its plot_data.npz."""

from __future__ import annotations

import numpy as np

from gradlab.runner.plotting import Figures, figure

FIGURES = Figures()

LABELS = {"f": "f alone", "rev": "reverse (grad)", "fwd_batched": "forward, batched (jacfwd)",
          "fwd_sequential": "forward, P jvps in a loop"}  # fmt: skip


def _slope_text(slope: float) -> str:
    return "n/a" if np.isnan(slope) else f"{slope:.2f}"


def _interval_text(slope: float, interval: np.ndarray) -> str:
    if np.isnan(slope):
        return "n/a (too few sizes above the floor)"
    return f"{slope:.2f} [{interval[0]:.2f}, {interval[1]:.2f}]"


def _difference_text(data, family: str) -> str:
    parts = []
    for key, route in (("time_slope_difference", "P jvps"), ("time_slope_difference_batched", "jacfwd")):
        value, low, high = data[f"{family}_{key}"]
        parts.append(f"{route}: n/a" if np.isnan(value) else f"{route}: {value:.2f} [{low:.2f}, {high:.2f}]")
    return ", ".join(parts)


@FIGURES.add("cost_vs_parameters.png", "log-log FLOPs and time of f, reverse mode and forward mode against P: the "
             "forward-mode slope exceeds the reverse-mode slope by about 1 (the factor P); fitted slopes in the "
             "legends, time slopes with their confidence interval, fitted only above the timer floor (dotted)")
def cost_vs_parameters(data, cfg):
    families = list(cfg.families)
    fig, axes = figure(2, len(families), width=11.0, height=4.0 * len(families), squeeze=False)
    routes = list(data["routes"])
    for family, (flops_ax, time_ax) in zip(families, axes, strict=True):
        P = data[f"{family}_P"]
        for i, route in enumerate(routes):
            flops_ax.loglog(P, data[f"{family}_flops"][:, i], "o-",
                            label=f"{LABELS[route]}: slope {_slope_text(data[f'{family}_flops_slope'][i])}")
            times, slope = data[f"{family}_time"][:, i], data[f"{family}_time_slope"][i]
            interval = _interval_text(slope, data[f"{family}_time_interval"][i])
            (line,) = time_ax.loglog(P, times, "o", label=f"{LABELS[route]}: slope {interval}")
            fitted = data[f"{family}_time_fitted"][:, i]
            if fitted.any():  # the fitted power law over the sizes it was fitted to
                span = P[fitted]
                time_ax.loglog(span, np.exp(data[f"{family}_time_intercept"][i]) * span**slope, "-",
                               color=line.get_color())
            predicted = data[f"{family}_predicted"][:, i]
            time_ax.loglog(P, predicted, "o", mfc="none", color=line.get_color())
        time_ax.axhline(cfg.timing.fit_min_seconds, color="0.4", ls=":", lw=1.0)
        flops_ax.set(xlabel="parameters P", ylabel="XLA FLOPs",
                     title=f"{family}: forward mode's FLOPs grow ~P x faster than reverse mode's")
        time_ax.set(xlabel="parameters P", ylabel="wall time per call (s)",
                    title=f"{family}: time slope forward - reverse = {_difference_text(data, family)}\n"
                    "lines: fits above the floor (dotted); open circles: skipped, predicted")
        flops_ax.legend(fontsize=7)
        time_ax.legend(fontsize=7, title=f"time slope [{cfg.timing.confidence:.0%} interval]", title_fontsize=7)
        time_ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


@FIGURES.add("tall_wide_crossover.png", "cost ratio jacfwd/jacrev against outputs/inputs: below 1 (forward wins) "
             "for a tall Jacobian R -> R^M, above 1 (reverse wins) for a wide one R^M -> R",
             when=lambda data, cfg: len(cfg.mirror.sizes) > 0)
def tall_wide_crossover(data, cfg):
    fig, ax = figure()
    for shape, marker in (("tall", "o"), ("wide", "s")):
        for metric, style in (("time", "-"), ("flops", "--")):
            ratio = data[f"mirror_{shape}_{metric}_ratio"]
            measured = ~np.isnan(ratio)
            if measured.any():
                label = f"{shape} (R^{'1 -> R^M' if shape == 'tall' else 'M -> R^1'}), {metric}"
                ax.loglog(data[f"mirror_{shape}_shape_ratio"][measured], ratio[measured], marker + style, label=label)
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.axvline(1.0, color="0.5", lw=0.8)
    ax.set(xlabel="outputs / inputs of the map", ylabel="cost(jacfwd) / cost(jacrev)",
           title="Tall Jacobians favour forward mode, wide ones reverse mode; they cross at outputs = inputs")
    ax.legend()
    return fig


@FIGURES.add("memory_vs_depth.png", "temporary memory of jax.grad against depth: linear without checkpointing, "
             "linear with a smaller constant per layer, ~sqrt(D) with checkpointed segments of sqrt(D) layers",
             when=lambda data, cfg: len(cfg.memory.depths) > 0)
def memory_vs_depth(data, cfg):
    fig, ax = figure()
    for i, strategy in enumerate(data["memory_strategies"]):
        ax.loglog(data["memory_depths"], data["memory_activations"][:, i], "o-",
                  label=f"checkpoint: {strategy}, slope {_slope_text(data['memory_slopes'][i])}")
    ax.set(xlabel="depth D (layers)", ylabel="XLA temp memory of grad (in activations N x width)",
           title="Reverse mode stores activations ~D; jax.checkpoint cuts the constant, segments give ~sqrt(D)")
    ax.legend()
    return fig
