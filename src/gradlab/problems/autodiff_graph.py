"""Forward and reverse mode by hand on the homework's computational graph (Problems 9 and 10).

    y = exp(exp[x] + exp[x]^2) + sin(exp[x] + exp[x]^2)

broken into the graph

    f1 = exp(x),  f2 = f1^2,  f3 = f1 + f2,  f4 = exp(f3),  f5 = sin(f3),  y = f4 + f5.

Problem 10 (forward mode) pushes a tangent df_i/dx from x towards y, one node at a time, each step using
the tangents of the node's parents. Problem 9 (reverse mode) pulls an adjoint dy/df_i from y back to x,
each step summing over the node's children (f3 feeds f4 and f5, f1 feeds f2 and f3). Both end at

    dy/dx = f1 (1 + 2 f1) (f4 + cos f3).

Here the adjoint dy/df_i is the derivative of y with respect to node f_i when everything downstream of
f_i is recomputed and every other node is held fixed (the adjoint of reverse-mode autodiff). It is what
JAX returns for a perturbation added to f_i, which is how `jax_adjoints` checks the hand-written table.

All functions act elementwise, so `x` may be a scalar or an array of points.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

INPUT = "x"
NODES = ("f1", "f2", "f3", "f4", "f5", "y")  # the graph's nodes after the input, in forward order
# The order in which Problem 10 asks for the tangents (f1 .. y) and Problem 9 for the adjoints (f5 .. f1, then x).
TANGENT_ORDER = tuple(f"d{node}_dx" for node in NODES)
ADJOINT_ORDER = (*(f"dy_d{node}" for node in reversed(NODES[:-1])), f"dy_d{INPUT}")
# Edges of the graph (parent -> child) and the local partial derivative each one carries
# (d exp(x)/dx = exp(x) = f1 and d exp(f3)/df3 = f4: the exponentials reuse their own values).
EDGES = (
    ("x", "f1", "f1"),
    ("f1", "f2", "2 f1"),
    ("f1", "f3", "1"),
    ("f2", "f3", "1"),
    ("f3", "f4", "f4"),
    ("f3", "f5", "cos f3"),
    ("f4", "y", "1"),
    ("f5", "y", "1"),
)
NODE_FORMULAS = {
    "x": "input",
    "f1": "exp(x)",
    "f2": "f1^2",
    "f3": "f1 + f2",
    "f4": "exp(f3)",
    "f5": "sin(f3)",
    "y": "f4 + f5",
}


def forward_values(x):
    """The forward pass: every node's value, {"f1": ..., ..., "y": ...}."""
    f1 = jnp.exp(x)
    f2 = f1**2
    f3 = f1 + f2
    f4 = jnp.exp(f3)
    f5 = jnp.sin(f3)
    y = f4 + f5
    return {"f1": f1, "f2": f2, "f3": f3, "f4": f4, "f5": f5, "y": y}


def y_of_x(x):
    """The scalar function y(x) itself, for JAX's autodiff and the finite difference."""
    return forward_values(x)["y"]


def forward_tangents(x):
    """Problem 10: forward mode, tangents df_i/dx in the order f1, f2, f3, f4, f5, y.

    Each tangent is the chain rule through the node's parents, reusing tangents already computed:
        df1/dx = exp(x) = f1
        df2/dx = (df2/df1) df1/dx = 2 f1 df1/dx
        df3/dx = df1/dx + df2/dx                  (f3 has two parents)
        df4/dx = (df4/df3) df3/dx = f4 df3/dx
        df5/dx = (df5/df3) df3/dx = cos(f3) df3/dx
        dy/dx  = df4/dx + df5/dx                  (y has two parents)
    """
    v = forward_values(x)
    df1_dx = v["f1"]
    df2_dx = 2.0 * v["f1"] * df1_dx
    df3_dx = df1_dx + df2_dx
    df4_dx = v["f4"] * df3_dx
    df5_dx = jnp.cos(v["f3"]) * df3_dx
    dy_dx = df4_dx + df5_dx
    return {
        "df1_dx": df1_dx,
        "df2_dx": df2_dx,
        "df3_dx": df3_dx,
        "df4_dx": df4_dx,
        "df5_dx": df5_dx,
        "dy_dx": dy_dx,
    }


def reverse_adjoints(x):
    """Problem 9: reverse mode, adjoints dy/df_i in the order f5, f4, f3, f2, f1, x.

    After one forward pass that stores the node values, each adjoint sums over the node's children:
        dy/df5 = 1                                 (y = f4 + f5)
        dy/df4 = 1
        dy/df3 = dy/df4 df4/df3 + dy/df5 df5/df3 = dy/df4 f4 + dy/df5 cos(f3)     (children f4, f5)
        dy/df2 = dy/df3 df3/df2 = dy/df3
        dy/df1 = dy/df3 df3/df1 + dy/df2 df2/df1 = dy/df3 + dy/df2 2 f1           (children f3, f2)
        dy/dx  = dy/df1 df1/dx = dy/df1 f1
    """
    v = forward_values(x)
    dy_df5 = jnp.ones_like(v["y"])
    dy_df4 = jnp.ones_like(v["y"])
    dy_df3 = dy_df4 * v["f4"] + dy_df5 * jnp.cos(v["f3"])
    dy_df2 = dy_df3 * 1.0
    dy_df1 = dy_df3 * 1.0 + dy_df2 * 2.0 * v["f1"]
    dy_dx = dy_df1 * v["f1"]
    return {
        "dy_df5": dy_df5,
        "dy_df4": dy_df4,
        "dy_df3": dy_df3,
        "dy_df2": dy_df2,
        "dy_df1": dy_df1,
        "dy_dx": dy_dx,
    }


def closed_form_derivative(x):
    """dy/dx = f1 (1 + 2 f1) (f4 + cos f3), the answer both problems arrive at."""
    v = forward_values(x)
    return v["f1"] * (1.0 + 2.0 * v["f1"]) * (v["f4"] + jnp.cos(v["f3"]))


def central_difference(x, step: float):
    """(y(x + h) - y(x - h)) / 2h with h = step * max(1, |x|): truncation O(h^2), round-off O(eps y / h)."""
    h = step * jnp.maximum(1.0, jnp.abs(x))
    return (y_of_x(x + h) - y_of_x(x - h)) / (2.0 * h)


# --------------------------------------------------------------------------------------------------------
# The independent route: JAX's own forward and reverse mode


def jax_tangents(x):
    """jax.jvp of the map x -> (f1, ..., f5, y) with tangent 1: every node's df_i/dx from JAX."""
    _, tangents = jax.jvp(lambda t: forward_values(t), (x,), (jnp.ones_like(x),))
    return {f"d{node}_dx": tangents[node] for node in NODES}


def _y_with_perturbed_nodes(x, eps):
    """y with a perturbation eps[node] added to each node f1..f5 right after it is computed.

    dy/d eps[node] at eps = 0 is exactly the reverse-mode adjoint of that node: everything downstream is
    recomputed, everything else held fixed.
    """
    f1 = jnp.exp(x) + eps["f1"]
    f2 = f1**2 + eps["f2"]
    f3 = f1 + f2 + eps["f3"]
    f4 = jnp.exp(f3) + eps["f4"]
    f5 = jnp.sin(f3) + eps["f5"]
    return f4 + f5


def jax_adjoints(x):
    """One jax.vjp of y with cotangent 1 gives dy/dx and, through the node perturbations, every dy/df_i."""
    x = jnp.asarray(x)
    zeros = {node: jnp.zeros_like(x) for node in NODES[:-1]}
    y, pullback = jax.vjp(_y_with_perturbed_nodes, x, zeros)
    dy_dx, dy_deps = pullback(jnp.ones_like(y))
    return {**{f"dy_d{node}": dy_deps[node] for node in NODES[:-1]}, "dy_dx": dy_dx}


# --------------------------------------------------------------------------------------------------------
# Overflow: an x whose table would hold inf is refused, naming x and the node


def first_overflow(x: float, dtype) -> str | None:
    """The first quantity of the forward/reverse tables that is not finite at x in `dtype`, else None.

    exp(f3) overflows once f3 = e^x + e^2x exceeds log(max float): x > 3.26 in float64, x > 2.19 in float32.
    The message names the node and its formula so that the error says where the overflow starts.
    """
    x_arr = jnp.asarray(x, dtype=dtype)
    values = forward_values(x_arr)
    for node in NODES:
        if not np.isfinite(float(values[node])):
            return f"node {node} = {NODE_FORMULAS[node]} overflows {jnp.dtype(dtype).name}"
    for table, entries in (("forward", forward_tangents(x_arr)), ("reverse", reverse_adjoints(x_arr))):
        for name, value in entries.items():
            if not np.isfinite(float(value)):
                return f"{table}-mode {name} overflows {jnp.dtype(dtype).name}"
    return None

