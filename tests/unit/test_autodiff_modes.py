"""Problems 9/10: hand-written forward/reverse tables against JAX, the closed form, a finite difference."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import config_error
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from gradlab.figures.autodiff_modes import computational_graph, layered_layout
from gradlab.problems import autodiff_graph as graph
from gradlab.runner.plotting import load_plot_data

# Up to x = 3 every entry of both tables is finite in float64 (f4 overflows past x = 3.26).
xs_float64 = st.floats(min_value=-8.0, max_value=3.0, allow_nan=False)


def _rel(a, b) -> float:
    return abs(float(a) - float(b)) / max(abs(float(b)), 1e-300)


def _y_numpy(x: float) -> float:
    """The function written directly in numpy from the problem statement, independent of the graph."""
    inner = math.exp(x) + math.exp(x) ** 2
    return math.exp(inner) + math.sin(inner)


@settings(max_examples=25, deadline=None)
@given(xs_float64)
def test_forward_tangents_match_jax_jvp_node_by_node(x):
    ours = graph.forward_tangents(jnp.asarray(x))
    theirs = graph.jax_tangents(jnp.asarray(x))
    assert list(ours) == list(graph.TANGENT_ORDER)
    for name in graph.TANGENT_ORDER:
        assert _rel(ours[name], theirs[name]) < 1e-14, name


@settings(max_examples=25, deadline=None)
@given(xs_float64)
def test_reverse_adjoints_match_jax_vjp_node_by_node(x):
    ours = graph.reverse_adjoints(jnp.asarray(x))
    theirs = graph.jax_adjoints(jnp.asarray(x))
    assert list(ours) == list(graph.ADJOINT_ORDER)
    for name in graph.ADJOINT_ORDER:
        assert _rel(ours[name], theirs[name]) < 1e-14, name


@settings(max_examples=25, deadline=None)
@given(xs_float64)
def test_both_modes_equal_closed_form_and_jax_grad(x):
    xs = jnp.asarray(x)
    closed = graph.closed_form_derivative(xs)
    assert _rel(graph.forward_tangents(xs)["dy_dx"], closed) < 1e-14
    assert _rel(graph.reverse_adjoints(xs)["dy_dx"], closed) < 1e-14
    assert _rel(jax.grad(graph.y_of_x)(xs), closed) < 1e-14


def test_adjoints_by_hand_at_zero():
    # x = 0: f1 = 1, f2 = 1, f3 = 2, f4 = e^2; dy/df3 = e^2 + cos 2, dy/df1 = 3 dy/df3, dy/dx = dy/df1.
    adj = graph.reverse_adjoints(jnp.asarray(0.0))
    dy_df3 = math.exp(2.0) + math.cos(2.0)
    expected = {"dy_df5": 1.0, "dy_df4": 1.0, "dy_df3": dy_df3, "dy_df2": dy_df3, "dy_df1": 3 * dy_df3}
    expected["dy_dx"] = 3 * dy_df3
    for name, value in expected.items():
        assert _rel(adj[name], value) < 1e-15, name
    tan = graph.forward_tangents(jnp.asarray(0.0))
    expected_tangents = [1.0, 2.0, 3.0, 3 * math.exp(2.0), 3 * math.cos(2.0), 3 * dy_df3]
    np.testing.assert_allclose([float(tan[k]) for k in graph.TANGENT_ORDER], expected_tangents, rtol=1e-15)


@pytest.mark.parametrize("x", [-2.0, -0.3, 0.7, 1.4])
def test_values_and_derivative_against_plain_numpy_finite_difference(x):
    assert _rel(graph.y_of_x(jnp.asarray(x)), _y_numpy(x)) < 1e-14
    h = 1e-5
    fd = (_y_numpy(x + h) - _y_numpy(x - h)) / (2 * h)
    assert _rel(graph.closed_form_derivative(jnp.asarray(x)), fd) < 1e-7


@pytest.mark.parametrize(
    ("x", "dtype", "node"),
    [(3.3, jnp.float64, "node f4"), (2.2, jnp.float32, "node f4"), (800.0, jnp.float64, "node f1")],
)
def test_first_overflow_names_the_node(x, dtype, node):
    assert graph.first_overflow(x, dtype).startswith(node)


def test_no_overflow_inside_default_range():
    for x in np.linspace(-3.0, 3.0, 13):
        assert graph.first_overflow(float(x), jnp.float64) is None


def test_table_orders_follow_the_graph():
    """Problem 10 lists the tangents f1 .. y, Problem 9 the adjoints from f5 back to x."""
    assert graph.TANGENT_ORDER == ("df1_dx", "df2_dx", "df3_dx", "df4_dx", "df5_dx", "dy_dx")
    assert graph.ADJOINT_ORDER == ("dy_df5", "dy_df4", "dy_df3", "dy_df2", "dy_df1", "dy_dx")
    assert {parent for parent, _, _ in graph.EDGES} | {child for _, child, _ in graph.EDGES} == {
        graph.INPUT, *graph.NODES
    }


def test_graph_layout_points_every_edge_rightwards_and_clear_of_other_nodes():
    nodes = (graph.INPUT, *graph.NODES)
    parents, children = [p for p, _, _ in graph.EDGES], [c for _, c, _ in graph.EDGES]
    position = layered_layout(nodes, parents, children)
    # every arrow points rightwards, so "above the arrow" is its left side (where the edge labels go)
    assert all(position[c][0] > position[p][0] for p, c in zip(parents, children, strict=True))
    # f2 sits off the straight edge f1 -> f3, the two children of f3 above and below it
    assert position["f1"][1] == position["f3"][1] == 0.0 and position["f2"][1] > 0
    assert position["f4"][1] > 0 > position["f5"][1]
    assert len(set(position.values())) == len(nodes)


# --------------------------------------------------------------------------------------------------------
# Config


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("fd_step=0", "fd_step"),
        ("plot_range=[1.0,-1.0]", "plot_range"),
        ("x=[]", "x"),
        ("plot_points=1", "plot_points"),
        ("annotate_x=.nan", "annotate_x"),
    ],
)
def test_config_errors_name_the_key(override, key):
    assert config_error("autodiff_modes", override).key == key


# --------------------------------------------------------------------------------------------------------
# The experiment, in-process


def _arrow_pixels_covered(fig) -> int:
    """How many pixels of the graph's arrows (grey 0.4) the edge labels paint over."""

    def pixels(labels_visible: bool) -> np.ndarray:
        for text in fig.axes[0].texts:
            if text.get_text().startswith("∂"):
                text.set_visible(labels_visible)
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)

    bare, labelled = pixels(False), pixels(True)
    arrows = np.all(np.abs(bare - 102) <= 12, axis=-1)
    assert arrows.sum() > 500  # the arrows are there to be covered
    return int(np.any(labelled[arrows] != bare[arrows], axis=-1).sum())


def test_run_tables_agree_to_round_off(run_experiment):
    # annotate_x = 2.5: values of 1e72 make the widest node boxes, the shortest visible arrows
    code, metrics, run_dir = run_experiment(
        "autodiff_modes", "x=[-2.0,0.0,0.5,1.5]", "plot_points=50", "annotate_x=2.5"
    , figures=True)
    assert code == 0 and metrics["status"] == "ok"
    errors = metrics["max_errors"]
    for key in (
        "forward_vs_jax_jvp",
        "reverse_vs_jax_vjp",
        "forward_vs_closed_form",
        "reverse_vs_closed_form",
    ):
        assert errors[key] < 1e-14, key
    assert errors["finite_difference_vs_closed_form"] < 1e-6
    point = metrics["points"][2]
    assert point["x"] == 0.5
    assert list(point["forward"]) == list(graph.TANGENT_ORDER)
    assert list(point["reverse"]) == list(graph.ADJOINT_ORDER)
    assert math.isclose(point["jax_grad"], point["closed_form"], rel_tol=1e-14)
    assert set(metrics["plots"]) == {"y_and_derivative.png", "computational_graph.png"}
    assert all((run_dir / name).stat().st_size > 0 for name in metrics["plots"])
    jaxpr = (run_dir / "jaxpr_y.txt").read_text()
    assert "exp" in jaxpr and "sin" in jaxpr
    # every arrow of the computational graph stays visible: no edge label is drawn over it
    data = load_plot_data(run_dir / "plot_data.npz")
    fig = computational_graph(data, OmegaConf.create(metrics["config"]))
    assert _arrow_pixels_covered(fig) == 0


def test_run_overflow_names_x_and_node(run_experiment, capsys):
    code, metrics, _ = run_experiment("autodiff_modes", "x=[0.0,3.5]", "plot_points=20")
    assert code == 2
    assert metrics["status"] == "failed"
    assert metrics["error"].startswith("config error: x[1]=3.5 is not allowed: x < 3.26")
    assert "float64" in metrics["error"] and "f4" in metrics["error"]
    assert "x[1]=3.5" in capsys.readouterr().err


def test_run_overflow_in_float32_is_reached_earlier(run_experiment):
    code, metrics, _ = run_experiment(
        "autodiff_modes", "x=[2.2]", "annotate_x=0.0", "precision=float32", "plot_points=20"
    )
    assert code == 2
    assert "float32" in metrics["error"] and "x[0]=2.2" in metrics["error"]


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ("annotate_x=4.0", "config error: annotate_x=4.0 is not allowed: x < 3.26"),
        ("plot_range=[-3.0,5.0]", "config error: plot_range=[-3.0, 5.0] is not allowed: an upper end x < 3.26"),
    ],
)
def test_overflow_names_the_key_the_user_typed(run_experiment, override, error):
    code, metrics, _ = run_experiment("autodiff_modes", "x=[0.0]", "plot_points=20", override)
    assert code == 2 and metrics["error"].startswith(error), metrics["error"]


@pytest.mark.parametrize(("points", "budget"), [("100000000", "4"), ("1000000000000", "null")])
def test_too_many_plot_points_are_refused_before_any_array(run_experiment, points, budget):
    # 1e8 points need ~16 GB (the figure's curves included): over a 4 GB budget; 1e12 over any machine's half
    code, metrics, _ = run_experiment("autodiff_modes", f"plot_points={points}", f"memory_budget_gb={budget}")
    assert code == 2 and metrics["error"].startswith(f"config error: plot_points={points} is not allowed: a config "
                                                     "within the memory budget: it needs about")
    assert "backend" not in metrics["meta"]
