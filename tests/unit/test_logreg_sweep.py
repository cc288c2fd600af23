"""The vectorised Problem 8 sweep: same numbers as single runs, seed s is logreg's data.seed=s, its run in-process."""

from __future__ import annotations

import csv
import dataclasses
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_refused_over_budget, validated_config
from omegaconf import OmegaConf

from gradlab.figures import logreg_sweep as figures
from gradlab.problems import logistic, vectorised_sweep
from gradlab.problems.training import make_train
from gradlab.runner.config import ConfigError

DATA = {"n_per_class": 10, "mean0": -1.0, "mean1": 1.0, "std": 1.0}
SMALL = ("seeds.count=2", "lr.num=3", "momenta=[0.0,0.9]", "steps=200", "timing_repeats=1", "curves=2")


@pytest.mark.slow
def test_vectorised_sweep_equals_individual_runs():
    grid = vectorised_sweep.full_grid([4, 5], [0.01, 0.3], [0.0, 0.8])
    sweep = jax.jit(vectorised_sweep.make_sweep("momentum", 150, first_seed=4))
    result = sweep(jnp.asarray(grid.seeds, jnp.uint32), jnp.asarray(grid.lrs), jnp.asarray(grid.momenta),
                   *vectorised_sweep.sample_all(DATA, [4, 5]))
    train = jax.jit(make_train(logistic.bce_loss, "momentum", 150))
    for row, (seed, lr, momentum) in enumerate(zip(*grid, strict=True)):
        x, y = logistic.sample_data(jax.random.key(int(seed)), 10, -1.0, 1.0, 1.0)
        single = train(jnp.zeros(2), lr, momentum, x, y)
        chex.assert_trees_all_close(result.phi[row], single.phi, rtol=1e-12, atol=1e-12)
        chex.assert_trees_all_close(result.losses[row], single.losses, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_optimum_losses_match_newton_per_seed():
    optimum = vectorised_sweep.optima(*vectorised_sweep.sample_all(DATA, [3]), 1e-12, 100)
    x, y = logistic.sample_data(jax.random.key(3), 10, -1.0, 1.0, 1.0)
    newton = logistic.newton(jnp.zeros(2), x, y, 1e-12, 100)
    assert float(optimum.loss[0]) == pytest.approx(float(logistic.bce_loss(newton.phi, x, y)), rel=1e-13)
    assert float(optimum.grad_norm[0]) < 1e-12 and int(optimum.iterations[0]) == int(newton.iterations)


@pytest.mark.slow
@pytest.mark.parametrize("x64", [True, False])
@pytest.mark.parametrize("seed", [0, 3])
def test_sweep_seed_s_draws_the_data_of_logreg_with_data_seed_s_in_either_precision(seed, x64):
    """In float32 too: drawn inside the sweep's trace, a float32 run's data were other numbers than logreg's."""
    sweep_cfg = validated_config("logreg_sweep", f"seeds.first={seed}")
    assert sweep_cfg.data.seed == seed  # data.seed follows seeds.first
    with jax.enable_x64(x64):
        expected = validated_config("logreg", f"data.seed={seed}").data.sample()
        xs, ys = vectorised_sweep.sample_all(dataclasses.asdict(sweep_cfg.data), [seed, seed + 1])
    assert xs.dtype == (jnp.float64 if x64 else jnp.float32)
    chex.assert_trees_all_equal((xs[0], ys[0]), expected)


@pytest.mark.parametrize(
    ("override", "key"),
    [("momenta=[0.5,1.0]", "momenta"), ("lr.num=0", "lr.num"), ("curves=51", "curves"),
     ("optimizer=lbfgs", "optimizer"), ("data.std=0", "data.std"), ("newton.tol=-1", "newton.tol"),
     # data.seed follows seeds.first: the error names the key the user typed
     ("seeds.first=-1", "seeds.first"), ("seeds.first=4294967296", "seeds.first")],
)
def test_config_errors_name_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"^config error: {key}="):
        validated_config("logreg_sweep", override)


def test_the_last_seed_must_be_a_seed_too():
    with pytest.raises(ConfigError) as err:
        validated_config("logreg_sweep", "seeds.first=4294967295", "seeds.count=2")
    assert str(err.value).startswith("config error: seeds.count=2 is not allowed: at most 2**32 - seeds.first = 1")


@pytest.mark.parametrize(
    ("overrides", "keys"),
    [
        (("lr.num=1000", "seeds.count=1000"), "seeds.count, lr.num, steps, momenta"),  # 1e7 configs x 1000 steps
        (("newton.max_iter=100000000000",), "newton.max_iter"),  # each seed's Newton keeps its path
        (("timing_repeats=1000000000000",), "timing_repeats"),
    ],
)
def test_a_config_over_the_memory_budget_is_refused_before_any_array(run_experiment, overrides, keys):
    started = time.perf_counter()
    result = run_experiment("logreg_sweep", *overrides)
    assert time.perf_counter() - started < 10
    assert_refused_over_budget(result, keys)


def test_reference_newton_stopped_short_or_separable_data_is_a_warning(run_experiment):
    code, metrics, _ = run_experiment("logreg_sweep", *SMALL, "newton.max_iter=1")
    assert code == 0 and metrics["reference"]["converged"] is False
    assert metrics["reference"]["unconverged_seeds"] == [0, 1]
    assert any(w.startswith("Newton's method did not reach newton.tol = 1e-12 for data seeds [0, 1] (2 of 2)")
               for w in metrics["warnings"])
    code, metrics, _ = run_experiment("logreg_sweep", *SMALL, "data.mean0=-20.0", "data.mean1=20.0")
    assert code == 0 and metrics["reference"]["separable_seeds"] == [0, 1]
    assert any("the classes are separable" in w for w in metrics["warnings"])


def test_a_data_seed_other_than_the_first_sweep_seed_is_a_config_error(run_experiment):
    code, metrics, _ = run_experiment("logreg_sweep", *SMALL, "data.seed=3")
    assert code == 2 and metrics["status"] == "failed"
    assert metrics["error"].startswith("config error: data.seed=3 is not allowed") and "seeds.first" in metrics["error"]


def test_small_sweep_in_process(run_experiment):
    code, metrics, run_dir = run_experiment("logreg_sweep", *SMALL, figures=True)
    assert code == 0, metrics.get("error")
    assert metrics["configurations"] == 12 and metrics["devices"]["count"] == 1 and metrics["steps"] == 200
    assert set(metrics["plots"]) == {"final_gap_vs_lr.png", "convergence_curves.png"}
    assert all((run_dir / name).is_file() for name in metrics["plots"])
    with open(run_dir / "sweep.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 and {r["seed"] for r in rows} == {"0", "1"}
    gaps = np.array([float(r["gap_to_optimum"]) for r in rows])
    assert np.all(gaps > -1e-9)  # no configuration beats Newton's optimum beyond round-off
    assert metrics["converged_fraction"] == pytest.approx(np.mean(gaps < 1e-6))
    assert metrics["best"]["final_gap_median"] == pytest.approx(
        np.min(np.median(gaps.reshape(2, 3, 2), axis=0)), abs=1e-15)
    assert metrics["throughput"]["config_steps_per_s"] > 0
    assert metrics["reference"]["converged"] and metrics["warnings"] == []
    with np.load(run_dir / "plot_data.npz") as data:
        np.testing.assert_array_equal(data["gap"].ravel(), gaps)
        assert data["curve_losses"].shape == (2, 200)
    # the mean and spread over the 2 data seeds, as a Hydra sweep over data.seed reports them: NumPy over sweep.csv
    with open(run_dir / "summary_seeds.csv") as handle:
        summary = [r for r in csv.DictReader(handle) if r["metric"] == "gap_to_optimum"]
    assert len(summary) == 6  # 3 learning rates x 2 momenta
    for row in summary:
        x = np.array([float(r["gap_to_optimum"]) for r in rows
                      if float(r["lr"]) == float(row["optimizer.lr"]) and float(r["momentum"]) == float(
                          row["optimizer.momentum"])])
        assert row["n"] == "2" and len(x) == 2
        assert float(row["mean"]) == pytest.approx(np.mean(x), rel=1e-12, abs=1e-300)
        assert float(row["std"]) == pytest.approx(np.std(x, ddof=1), rel=1e-12, abs=1e-300)
        assert (float(row["min"]), float(row["max"])) == (x.min(), x.max())


def test_no_convergence_curves_when_none_asked(run_experiment):
    code, metrics, run_dir = run_experiment("logreg_sweep", *SMALL, "curves=0", "optimizer=adam", "momenta=[0.0]",
                                            figures=True)
    assert code == 0, metrics.get("error")
    assert set(metrics["plots"]) == {"final_gap_vs_lr.png"} and not (run_dir / "convergence_curves.png").exists()


@pytest.mark.slow
def test_heatmap_draws_a_single_learning_rate_and_momentum():
    gap = np.array([[[1e-3]], [[2e-3]]])  # 2 seeds x 1 lr x 1 momentum
    data = {"lrs": np.array([0.1]), "momenta": np.array([0.5]), "gap": gap}
    fig = figures.final_gap_vs_lr(data, OmegaConf.create({"optimizer": "momentum", "steps": 10}))
    heat = fig.axes[0]
    assert heat.get_xlim()[0] < 0.1 < heat.get_xlim()[1]
    edges = figures.log_edges(np.array([1e-3, 1e-2, 1e-1]))
    np.testing.assert_allclose(edges, [10**-3.5, 10**-2.5, 10**-1.5, 10**-0.5])
