"""The independent routes that check the hand-made tables of Problems 9 and 10 on any graph.

JAX's route builds the same graph as a jax.numpy function (the tree evaluated with jnp, never the derivative rules)
and differentiates it: `jvp_tangents` (one jax.jvp per input), `vjp_adjoints` (one jax.vjp with a zero
perturbation added to every node: its cotangent is the node's adjoint), `jax_gradient` (jax.grad, vmapped).
The numerical route is a central difference in each input,

    D(h) = (y(x + h) - y(x - h)) / 2h,    |D(h) - y'| <= |y'''| h^2 / 6 + round-off(y) / h,

bounded by 2 (|D(2h) - D(h)| / 3 + (eps / 2) sum_v |dy/dv| |v| / h): Richardson's estimate of the truncation
(D(2h) - D(h) = 3 y''' h^2 / 6 + O(h^4)) plus y's first-order round-off over the step.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.problems import autodiff_graph as ag
from gradlab.problems import expression as ex
from gradlab.problems.numerics import max_rel_error

# Compiled as one XLA program up to this many nodes; a larger graph runs op by op. XLA's fusion copies a node's
# operations into each of its users' kernels, so the optimised program grows about as nodes^2 (chain
# n_i = tanh(n_{i-1}) + 0.5 cos(n_{i-1}), 5 points: compile 1.6 s at 8 nodes, 13 s at 24, 54 s at 50), while op by
# op it takes 2.3 s at 16 nodes and 5.4 s at 100, the same bounds to 1e-14 relative (summation order).
MAX_NODES_COMPILED = 10


def compiled_when_small(route):
    """route(graph, point, ...) as one XLA program per graph and shape up to MAX_NODES_COMPILED nodes, op by op
    above. Op by op, every operation's first use in a process compiles it (or loads it from the cache), ~10 ms
    apiece: a small graph's routes are tens of operations, its program one compilation."""
    compiled = jax.jit(route, static_argnums=0)

    @functools.wraps(route)
    def dispatch(graph: ag.Graph, *args):
        return (compiled if len(graph.nodes) <= MAX_NODES_COMPILED else route)(graph, *args)

    dispatch.compiled, dispatch.op_by_op = compiled, route  # either, whatever the size (the tests compare them)
    return dispatch


def central_difference(graph: ag.Graph, point: Mapping[str, np.ndarray], wrt: str, step: float):
    """(y(x + h) - y(x - h)) / (2h) in input `wrt`, h = step max(1, |x|), and the ingredients of its error bound.

    The step actually taken is (x + h) - (x - h) as rounded, so h's own rounding adds no error. Returns the
    difference quotient D(h), D(2h) (for the truncation estimate |D(2h) - D(h)| / 3 ~ |y'''| h^2 / 6) and h.
    """
    x = np.asarray(point[wrt])
    h = step * np.maximum(1.0, np.abs(x))

    def quotient(width):
        up, down = x + width, x - width
        with np.errstate(all="ignore"):
            y_up = ag.forward_values(graph, {**point, wrt: up}, checked=False)[graph.output]
            y_down = ag.forward_values(graph, {**point, wrt: down}, checked=False)[graph.output]
        return (y_up - y_down) / (up - down)

    return quotient(h), quotient(2 * h), h


def rounding_of_output(graph: ag.Graph, values: Mapping[str, np.ndarray], adjoints: Mapping[str, np.ndarray]):
    """First-order round-off of y as evaluated: each name v is rounded by at most eps |v| / 2 and moves y by its
    adjoint times that, so |y computed - y| <~ (eps / 2) sum_v |dy/dv| |v| (inputs and nodes)."""
    eps = np.finfo(next(iter(values.values())).dtype).eps
    return eps / 2 * sum(np.abs(adjoints[name] * values[name]) for name in graph.names)


def rounding_of_derivatives(graph: ag.Graph, point: Mapping) -> tuple[dict, dict]:
    """First-order round-off of every tangent t_n = dn/d<input> and every adjoint a_v = dy/dv, as evaluated.

    Both walks evaluate each local derivative at node values rounded by eps |v| / 2, and round each tangent (each
    adjoint) they accumulate by eps |t| / 2. To first order a tangent then moves by

        (eps / 2) sum_v ( |d t_n / d v| |v| + |d n / d v| |t_v| )

    and an adjoint by (eps / 2) sum_w ( |d a_v / d w| |w| + |d w / d v| |a_w| ): a rounding of w's adjoint reaches
    v's through dw/dv. The node's own conditioning counts, not y's: sin(f3) near a zero of cos has a tangent whose
    relative round-off is |f3 tan f3| eps / 2, which y = exp(f3) + sin(f3) hides. The sensitivities are second
    derivatives, by jax.jvp over a perturbation added to every name, vmapped over the names (one compiled call per
    graph and shape up to MAX_NODES_COMPILED nodes, op by op above). Returns ({input: {name: bound}}, {name: bound}),
    absolute, at every point.
    """
    shape = jnp.broadcast_shapes(*(jnp.shape(v) for v in point.values()))
    point = {k: jnp.broadcast_to(jnp.asarray(v), shape) for k, v in point.items()}
    half_eps = float(jnp.finfo(point[graph.inputs[0]].dtype).eps) / 2
    return jax.tree.map(lambda b: half_eps * np.asarray(b), _derivative_sensitivities(graph, point))


@compiled_when_small
def _derivative_sensitivities(graph: ag.Graph, point: dict) -> tuple[dict, dict]:
    """rounding_of_derivatives' sums, before the factor eps / 2."""
    names = graph.names
    shape, dtype = point[graph.inputs[0]].shape, point[graph.inputs[0]].dtype
    zero = {n: jnp.zeros(shape, dtype) for n in names}

    def derivatives(delta):  # every name's value, tangents and adjoints, with delta added to each name's value
        tangents = {seed: jax.jvp(lambda p: jax_values(graph, p, delta), (point,),
                                  ({k: jnp.full(shape, k == seed, dtype) for k in point},))[1]
                    for seed in graph.inputs}
        adjoints = jax.grad(lambda d: jnp.sum(jax_values(graph, point, d)[graph.output]))(delta)  # points independent
        return jax_values(graph, point, delta), tangents, adjoints

    # row i of each d_*: its change as the value of names[i] moves (at every point)
    one_hot = {n: jnp.broadcast_to(column[:, None], (len(names), *shape)).astype(dtype)
               for n, column in zip(names, jnp.eye(len(names)), strict=True)}
    d_values, d_tangents, d_adjoints = jax.vmap(lambda direction: jax.jvp(derivatives, (zero,), (direction,))[1])(
        one_hot)
    values, tangents, adjoints = jax.tree.map(jnp.abs, derivatives(zero))
    by_name = lambda table: jnp.stack([table[n] for n in names])  # noqa: E731  (names x points)
    values, adjoints = by_name(values), by_name(adjoints)
    tangents = {seed: by_name(table) for seed, table in tangents.items()}
    moves = jnp.abs(by_name(d_values))  # moves[w, v]: |dw/dv| (names x names x points)
    forward = {seed: {n: jnp.sum(jnp.abs(d_tangents[seed][n]) * values + moves[k] * tangents[seed], axis=0)
                      for k, n in enumerate(names)}
               for seed in graph.inputs}
    reverse = {v: jnp.sum(jnp.abs(d_adjoints[v]) * values + moves[:, i] * adjoints, axis=0)
               for i, v in enumerate(names)}
    return forward, reverse


# --------------------------------------------------------------------------------------------------------
# JAX's route: the same graph as a JAX function, differentiated by JAX


def jax_values(graph: ag.Graph, point: Mapping, added: Mapping | None = None):
    """Every name's value, computed with jax.numpy (traceable: jax.jvp / jax.vjp / jax.grad differentiate it).
    `added[name]`, where given, is added to a name's value right after it is computed: its cotangent is then the
    name's adjoint dy/d name, and its tangent moves every later value as that name's rounding would."""
    added = added or {}
    values = {k: v + added[k] if k in added else v for k, v in point.items()}
    for name, tree in graph.nodes:
        values[name] = jnp.asarray(ex.evaluate(tree, values, jnp)) + added.get(
            name, jnp.zeros_like(point[graph.inputs[0]]))
    return values


@compiled_when_small
def jvp_tangents(graph: ag.Graph, point: Mapping) -> dict[str, dict]:
    """jax.jvp of point -> all node values, once per input with a one-hot tangent: {input: {name: d name/d input}}."""
    point = {k: jnp.asarray(v) for k, v in point.items()}
    out = {}
    for seed in graph.inputs:
        tangent = {k: jnp.full_like(v, float(k == seed)) for k, v in point.items()}
        out[seed] = jax.jvp(lambda p: jax_values(graph, p), (point,), (tangent,))[1]
    return out


@compiled_when_small
def vjp_adjoints(graph: ag.Graph, point: Mapping) -> dict:
    """One jax.vjp of y, with a zero perturbation added to every node right after it is computed: the cotangent of
    each perturbation is that node's adjoint dy/d node, the cotangent of each input its dy/d input."""
    point = {k: jnp.asarray(v) for k, v in point.items()}
    shape = jnp.broadcast_shapes(*(v.shape for v in point.values()))
    zeros = {name: jnp.zeros(shape) for name, _ in graph.nodes}
    y, pullback = jax.vjp(lambda p, eps: jax_values(graph, p, eps)[graph.output], point, zeros)
    d_inputs, d_nodes = pullback(jnp.ones_like(y))
    return {**d_nodes, **d_inputs}


@compiled_when_small
def jax_gradient(graph: ag.Graph, point: Mapping) -> dict:
    """jax.grad of the scalar y(inputs), vmapped over the points: {input: dy/d input}."""
    point = {k: jnp.asarray(v) for k, v in point.items()}
    shape = jnp.broadcast_shapes(*(v.shape for v in point.values()))
    flat = {k: jnp.broadcast_to(v, shape).ravel() for k, v in point.items()}
    grads = jax.vmap(jax.grad(lambda p: jax_values(graph, p)[graph.output]))(flat)
    return {k: v.reshape(shape) for k, v in grads.items()}


# --------------------------------------------------------------------------------------------------------
# Every route side by side, and the largest disagreements


def _rel(a, b) -> float:
    return float(max_rel_error(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))


def gradient_routes(graph: ag.Graph, points: dict, walk: dict, closed: dict, fd_step: float) -> tuple[dict, dict, dict]:
    """dy/d<input> per route at every point ({input: {route: array}}), the derived bound on the finite difference's
    error, and JAX's full tangents and adjoints (for the node-by-node comparison)."""
    jvp, vjp = jvp_tangents(graph, points), vjp_adjoints(graph, points)
    grad = jax_gradient(graph, points)
    rounding = rounding_of_output(graph, walk["values"], walk["reverse"])
    routes = {}
    for name in graph.inputs:
        d_h, d_2h, h = central_difference(graph, points, name, fd_step)
        bound = 2.0 * (np.abs(d_2h - d_h) / 3.0 + rounding / h)  # 2 x (truncation estimate + round-off / h)
        routes[name] = {
            "forward": walk["forward"][name][graph.output], "reverse": walk["reverse"][name],
            "jax_grad": np.asarray(grad[name]), "jax_jvp": np.asarray(jvp[name][graph.output]),
            "jax_vjp": np.asarray(vjp[name]), "finite_difference": d_h, "finite_difference_bound": bound,
            **({"closed_form": np.broadcast_to(ex.evaluate(closed[name], walk["values"], np), h.shape)}
               if name in closed else {}),
        }
    return routes, jvp, vjp


def worst_against_bound(ours: dict, theirs: dict, rounding: dict, eps: float) -> dict:
    """The entry (table key and point) nearest its bound, |ours - theirs| against 8 (eps |theirs| + 2 rounding):
    each route off by its first-order round-off (`rounding`, absolute), with the walks' 8 eps (1 + ...) margin.
    Every entry is within its bound exactly when this one is. Relative to |theirs| (absolute where that is 0)."""
    keys = list(ours)
    table = lambda d: np.stack(np.broadcast_arrays(*(np.asarray(d[k], dtype=float) for k in keys)))  # noqa: E731
    mine, ref = table(ours), table(theirs)
    error, bound, ref = np.abs(mine - ref), 8 * (eps * np.abs(ref) + 2 * table(rounding)), np.abs(ref)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0: an exact match; x / 0: infinitely over
        ratio = np.where(error == 0, 0.0, error / bound)
    row, point = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    scale = ref[row, point] if ref[row, point] > 0 else 1.0
    return {"entry": keys[row], "point": int(point), "error": float(error[row, point] / scale),
            "bound": float(bound[row, point] / scale), "ratio": float(ratio[row, point]),
            "kind": "relative" if ref[row, point] > 0 else "absolute (the reference is 0)"}


def max_errors(graph: ag.Graph, walk: dict, routes: dict, jvp: dict, vjp: dict) -> dict:
    """Max relative errors over every point (and node) of each hand-made entry against its independent route."""
    ours_t, theirs_t = ag.tangent_table(graph, walk["forward"]), ag.tangent_table(graph, jvp)
    ours_a, theirs_a = ag.adjoint_table(graph, walk["reverse"]), ag.adjoint_table(graph, vjp)
    eps = float(np.finfo(walk["values"][graph.output].dtype).eps)
    with_closed = [n for n in graph.inputs if "closed_form" in routes[n]]
    each = lambda a, b, inputs=graph.inputs: max(_rel(routes[n][a], routes[n][b]) for n in inputs)  # noqa: E731
    # the central difference is judged against the closed form where there is one, else the reverse walk
    fd_reference = "closed_form" if len(with_closed) == len(graph.inputs) else "reverse"
    fd_error = {n: np.abs(r["finite_difference"] - r[fd_reference]) for n, r in routes.items()}
    tangent_rounding, adjoint_rounding = rounding_of_derivatives(graph, {k: walk["values"][k] for k in graph.inputs})
    errors = {
        "forward_vs_jax_jvp": max(_rel(ours_t[k], theirs_t[k]) for k in ours_t),
        "reverse_vs_jax_vjp": max(_rel(ours_a[k], theirs_a[k]) for k in ours_a),
        "forward_vs_jax_jvp_worst": worst_against_bound(
            ours_t, theirs_t, ag.tangent_table(graph, tangent_rounding), eps),
        "reverse_vs_jax_vjp_worst": worst_against_bound(
            ours_a, theirs_a, ag.adjoint_table(graph, adjoint_rounding), eps),
        "forward_vs_reverse": each("forward", "reverse"),
        "reverse_vs_jax_grad": each("reverse", "jax_grad"),
        f"finite_difference_vs_{fd_reference}": each("finite_difference", fd_reference),
        # the bound relative to the same reference, where the error is largest relative to its bound
        "finite_difference_bound": max(_rel(routes[n][fd_reference] + routes[n]["finite_difference_bound"],
                                            routes[n][fd_reference]) for n in graph.inputs),
        "finite_difference_within_bound": all(bool(np.all(fd_error[n] <= routes[n]["finite_difference_bound"]))
                                              for n in graph.inputs),
        "finite_difference_bound_is": "2 (|D(2h) - D(h)| / 3 + (eps/2) sum_v |dy/dv| |v| / h): truncation "
                                      "estimated by Richardson, first-order round-off of y over the step",
        # both routes round each of y's names v by eps |v| / 2 (NumPy's and XLA's kernels may differ by ulps), which
        # moves y by dy/dv times that: a relative bound of 8 eps (1 + sum_v |dy/dv v| / |y|), max over the points
        "round_off_bound": float(np.max(8 * eps * (1 + rounding_of_output(graph, walk["values"], walk["reverse"])
                                                   / (eps / 2) / np.abs(walk["values"][graph.output])))),
        "kind": "relative: max over points (and nodes) of |a - b| / |b|",
    }
    if with_closed:  # the inputs whose closed form the config gives
        errors |= {f"{route}_vs_closed_form": each(route, "closed_form", with_closed)
                   for route in ("forward", "reverse", "jax_grad")}
    return errors
