"""Figures of the reverse- vs forward-mode cost experiment (`gradlab.experiments.autodiff_scaling`, Problem 10),
drawn from its plot_data.npz. Every time is the minimum over rounds of each round's minimum; bars span the
rounds' [min, max]."""

from __future__ import annotations

import numpy as np

from gradlab.runner.plotting import Figures, figure

FIGURES = Figures()

LABELS = {"f": "f alone", "rev": "reverse (grad)", "fwd_batched": "forward, batched (jacfwd)",
          "fwd_sequential": "forward, P jvps in a loop", "jvp": "one jvp", "hvp": "one HVP (fwd over rev)",
          "empty": "empty call"}  # fmt: skip


def _slope_text(slope: float, interval) -> str:
    if np.isnan(slope):
        return "no fit (too few sizes above the floor)"
    return f"slope {slope:.2f} [{interval[0]:.2f}, {interval[1]:.2f}]"


def _bars(ax, x, y, low, high, fmt, **kw):
    y, low, high = (np.asarray(a, dtype=float) for a in (y, low, high))
    return ax.errorbar(x, y, yerr=[y - low, high - y], fmt=fmt, capsize=2, ms=4, **kw)


@FIGURES.add("time_vs_parameters.png", "wall time per call against P for f, one jvp, one HVP, reverse mode and both "
             "forward routes over one range of P, bars over rounds, fitted power laws over the sizes above the floor "
             "(10 x the empty call, dotted): forward mode's slope exceeds reverse mode's by about 1")
def time_vs_parameters(data, cfg):
    families = list(cfg.families)
    fig, axes = figure(len(families), 1, width=6.0 * len(families), height=5.0, squeeze=False)
    for family, ax in zip(families, axes[0], strict=True):
        P, timed = data[f"{family}_P"], list(data[f"{family}_timed"])
        for i, name in enumerate(timed):
            times = data[f"{family}_time"][:, i]
            if np.isnan(times).all():
                continue
            if name == "empty":
                ax.loglog(P, times, "k--", lw=1, label=LABELS[name])
                continue
            slope, interval = data[f"{family}_time_slope"][i], data[f"{family}_time_interval"][i]
            bars = _bars(ax, P, times, data[f"{family}_time_low"][:, i], data[f"{family}_time_high"][:, i], "o",
                         label=f"{LABELS[name]}: {_slope_text(slope, interval)}")
            fitted = data[f"{family}_time_fitted"][:, i]
            if fitted.any() and not np.isnan(slope):
                span = P[fitted]
                ax.loglog(span, np.exp(data[f"{family}_time_intercept"][i]) * span**slope, "-",
                          color=bars[0].get_color())
        ax.loglog(P, data[f"{family}_floor"], ":", color="0.4", label="floor: 10 x empty call")
        ax.set(xscale="log", yscale="log", xlabel="parameters P", ylabel="seconds per call (min over rounds)",
               title=f"{family}: forward mode pays ~P x f, reverse mode a constant x f")
        ax.legend(fontsize=7, title=f"time slope [{cfg.timing.confidence:.0%} interval]", title_fontsize=7)
        ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


@FIGURES.add("ratios_vs_parameters.png", "per-size ratios with their round intervals: t_seq / t_rev against P with "
             "its fit and a slope-1 reference (forward mode's extra factor is P), and t_seq / (P t_jvp) against 1")
def ratios_vs_parameters(data, cfg):
    families = list(cfg.families)
    fig, axes = figure(len(families), 1, width=6.0 * len(families), height=4.5, squeeze=False)
    for family, ax in zip(families, axes[0], strict=True):
        P = data[f"{family}_P"]
        slope, low, high = data[f"{family}_seq_over_rev_slope"]
        ratio = data[f"{family}_seq_over_rev"]
        bars = _bars(ax, P, ratio, data[f"{family}_seq_over_rev_low"], data[f"{family}_seq_over_rev_high"], "o",
                     label=f"t_seq / t_rev: {_slope_text(slope, (low, high))}")
        fitted = data[f"{family}_ratio_fitted"]
        if fitted.any() and not np.isnan(slope):
            span = P[fitted]
            ax.loglog(span, np.exp(data[f"{family}_seq_over_rev_intercept"]) * span**slope, "-",
                      color=bars[0].get_color())
            anchor = np.exp(np.mean(np.log(ratio[fitted])) - np.mean(np.log(span)))
            ax.loglog(span, anchor * span, "k--", lw=1, label="slope 1 (reference)")
        _bars(ax, P, data[f"{family}_seq_over_P_jvp"], data[f"{family}_seq_over_P_jvp_low"],
              data[f"{family}_seq_over_P_jvp_high"], "s", label="t_seq / (P t_jvp)")
        ax.axhline(1.0, color="0.5", lw=0.8)
        ax.set(xscale="log", yscale="log", xlabel="parameters P", ylabel="time ratio",
               title=f"{family}: P jvps cost ~P x one vjp")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


@FIGURES.add("jacobian_crossover.png", "t_jacfwd / t_jacrev over the n_in x n_out grid of maps R^n_in -> R^n_out "
             "(log10, blue: forward wins), the diagonal n_in = n_out and the interpolated crossings",
             when=lambda data, cfg: len(cfg.mirror.sizes) > 1)
def jacobian_crossover(data, cfg):
    fig, ax = figure(width=6.0, height=5.0)
    n = data["mirror_n"]
    logs = np.log10(data["mirror_ratio"])
    limit = np.nanmax(np.abs(logs))
    image = ax.imshow(logs, origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit)
    fig.colorbar(image, ax=ax, label="log10 t_jacfwd / t_jacrev")
    ticks = np.arange(len(n))
    ax.set_xticks(ticks, [str(v) for v in n])
    ax.set_yticks(ticks, [str(v) for v in n])
    ax.plot(ticks, ticks, "k-", lw=1, label="n_in = n_out")
    cross = data["mirror_crossover"]
    ok = ~np.isnan(cross)
    # crossings in grid coordinates: log-interpolated between the grid's points
    rows = np.interp(np.log(cross[ok]), np.log(n.astype(float)), ticks.astype(float))
    ax.plot(ticks[ok], rows, "kx", ms=8, label="crossing (ratio = 1)")
    ax.set(xlabel="n_out (outputs)", ylabel="n_in (inputs)",
           title="Forward mode wins below the diagonal's crossing, reverse above")
    ax.legend(fontsize=7, loc="upper left")
    return fig


@FIGURES.add("memory_vs_depth.png", "peak memory of jax.grad against depth for three checkpoint strategies: XLA's "
             "temporary bytes (lines) and, at the deepest net, what one call took in a fresh process beyond its "
             "outputs (open squares): ~D without checkpointing, ~sqrt(D) with segments of sqrt(D) layers",
             when=lambda data, cfg: len(cfg.memory.depths) > 0)
def memory_vs_depth(data, cfg):
    fig, ax = figure()
    D = data["memory_depths"]
    for i, strategy in enumerate(data["memory_strategies"]):
        slope = data["memory_temp_bytes_slope"][i]
        (line,) = ax.loglog(D, data["memory_temp_bytes"][:, i], "o-", label=f"{strategy}: XLA temp, slope {slope:.2f}")
        if "memory_resident_depth" in data:  # runs before the fresh-process check have none
            ax.loglog([data["memory_resident_depth"]], [data["memory_resident_minus_output"][i]], "s", ms=9,
                      mfc="none", color=line.get_color(), label=f"{strategy}: resident rise - outputs (fresh process)")
    ax.set(xlabel="depth D (layers)", ylabel="bytes",
           title="Reverse mode stores ~D activations; sqrt(D) segments store ~sqrt(D)")
    ax.legend(fontsize=7)
    return fig
