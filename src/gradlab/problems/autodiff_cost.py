"""What a gradient costs in forward and in reverse mode (Problem 10: "why not forward mode for deep nets?").

For a scalar loss L(theta) with P parameters, the gradient is one row of the Jacobian:

    reverse mode:  one vjp with cotangent 1             cost ~ c_rev * cost(L), c_rev a small constant
    forward mode:  P jvps, one per basis tangent e_i     cost ~ P * cost(L)

so the forward/reverse ratio grows like P (the cheap-gradient principle: cost(grad L) <= ~5 cost(L) in
reverse mode). For a map R^n -> R^m the full Jacobian takes n jvps or m vjps: a tall Jacobian (n = 1,
m = M outputs) is forward mode's case, a wide one (the loss) is reverse mode's.

Every loss here takes its data as arguments (`loss(theta, *data)`) so that XLA compiles shapes, not
embedded constants: closing over a 200 MB design matrix makes one compile take ~10 s.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

ROUTES = ("f", "rev", "fwd_batched", "fwd_sequential")  # the gradient's cost, and f's for reference
UNITS = ("empty", "jvp", "hvp")  # timed beside them: the call floor, one forward pass, one Hessian-vector product


# --------------------------------------------------------------------------------------------------------
# Model families: a scalar loss of a flat parameter vector theta in R^P


@dataclasses.dataclass(frozen=True)
class ScalarLoss:
    """loss(theta, *data) -> scalar, with the point theta and the data it is evaluated at."""

    family: str
    P: int
    loss: Callable[..., jax.Array]
    theta: jax.Array
    data: tuple
    describe: dict  # what set P (e.g. {"width": 64}), recorded next to P
    closed_form_grad: Callable[..., jax.Array] | None = None


def logistic_loss(theta, X, t):
    """Mean binary cross-entropy of a linear logistic model: L = mean_i [log(1 + e^{z_i}) - t_i z_i], z = X theta."""
    z = X @ theta
    return jnp.mean(jnp.logaddexp(0.0, z) - t * z)


def logistic_grad(theta, X, t):
    """Closed form dL/dtheta = X^T (sigmoid(X theta) - t) / N in numpy: an independent check of all routes."""
    theta, X, t = (np.asarray(a, dtype=np.float64) for a in (theta, X, t))
    return X.T @ (1.0 / (1.0 + np.exp(-(X @ theta))) - t) / X.shape[0]


def _float_dtype():
    """float64 under jax_enable_x64, else float32: the precision the run was started with."""
    return jax.dtypes.canonicalize_dtype(np.float64)


def _on_device(*arrays):
    # Data is drawn with numpy: no eager XLA op (each one a compile per new shape) on the measured path.
    return tuple(jnp.asarray(a, dtype=_float_dtype()) for a in arrays)


def linear_family(P: int, n_samples: int, rng: np.random.Generator) -> ScalarLoss:
    """Logistic regression with P weights on n_samples Gaussian inputs: cost(L) ~ 2 N P FLOPs."""
    X = rng.standard_normal((n_samples, P)) / math.sqrt(P)
    t = (rng.random(n_samples) < 0.5).astype(np.float64)
    theta, X, t = _on_device(rng.standard_normal(P), X, t)
    return ScalarLoss("linear", P, logistic_loss, theta, (X, t), {}, logistic_grad)


def mlp_shapes(input_dim: int, width: int, depth: int) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of each dense layer: input -> depth hidden layers of `width` -> 1 output."""
    dims = [input_dim] + [width] * depth + [1]
    return list(zip(dims[:-1], dims[1:], strict=True))


def mlp_parameter_count(input_dim: int, width: int, depth: int) -> int:
    """P = sum over layers of fan_in * fan_out + fan_out (weights and biases)."""
    return sum(a * b + b for a, b in mlp_shapes(input_dim, width, depth))


def make_mlp_loss(input_dim: int, width: int, depth: int) -> Callable[..., jax.Array]:
    """Mean binary cross-entropy of a tanh MLP classifier (the logistic model with hidden layers),
    L = mean_i [log(1 + e^{z_i}) - t_i z_i], z_i the net's output; weights and biases read off one flat theta.

    Feature-major: X is (input_dim, n_samples) and h_l = tanh(W_l h_{l-1} + b_l) is (width, n_samples), so every
    operation runs along the samples, the long contiguous axis. Sample-major ((n_samples, width), width 2-74) costs
    each row a fixed overhead that the reverse pass pays in more operations than a tangent pass: the forward -
    reverse time slope then measured 1.1-1.3; feature-major, 0.98-1.12 (the scaling study's MLP sizes, 2 cores).
    """
    shapes = mlp_shapes(input_dim, width, depth)

    def loss(theta, X, t):
        h, offset = X, 0
        for i, (fan_in, fan_out) in enumerate(shapes):
            W = theta[offset : offset + fan_in * fan_out].reshape(fan_out, fan_in)
            offset += fan_in * fan_out
            b = theta[offset : offset + fan_out]
            offset += fan_out
            h = W @ h + b[:, None]
            if i < len(shapes) - 1:
                h = jnp.tanh(h)
        z = h[0]
        return jnp.mean(jnp.logaddexp(0.0, z) - t * z)

    return loss


def mlp_family(width: int, depth: int, input_dim: int, n_samples: int, rng: np.random.Generator) -> ScalarLoss:
    """A tanh MLP of `depth` hidden layers of `width`: P ~ depth * width^2, cost(L) ~ 2 N P FLOPs. X is
    feature-major, (input_dim, n_samples) (see `make_mlp_loss`)."""
    P = mlp_parameter_count(input_dim, width, depth)
    theta = rng.standard_normal(P) / math.sqrt(max(width, input_dim))
    X = rng.standard_normal((n_samples, input_dim)).T
    theta, X, t = _on_device(theta, X, (rng.random(n_samples) < 0.5).astype(np.float64))
    loss = make_mlp_loss(input_dim, width, depth)
    return ScalarLoss("mlp", P, loss, theta, (X, t), {"width": width, "depth": depth})


# --------------------------------------------------------------------------------------------------------
# The three gradient routes


def reverse_gradient(loss):
    """One reverse pass: jax.grad, i.e. the vjp of L with cotangent 1."""
    return jax.grad(loss)


def batched_forward_gradient(loss):
    """P jvps at once: jax.jacfwd pushes the P basis tangents through L as one vmapped (P, ...) batch."""
    return jax.jacfwd(loss)


def one_jvp(loss):
    """One forward pass with one tangent: the unit whose cost forward mode pays P times."""

    def jvp(theta, tangent, *data):
        return jax.jvp(lambda th: loss(th, *data), (theta,), (tangent,))[1]

    return jvp


def sequential_forward_gradient(loss):
    """P jvps one after another (lax.map over i, tangent e_i): forward mode in O(cost(L)) memory.

    XLA's cost analysis counts the loop body once, so this route's FLOPs are read as P x one jvp.
    """
    jvp = one_jvp(loss)

    def grad(theta, *data):
        basis = lambda i: jax.nn.one_hot(i, theta.shape[0], dtype=theta.dtype)  # noqa: E731
        return jax.lax.map(lambda i: jvp(theta, basis(i), *data), jnp.arange(theta.shape[0]))

    return grad


def unrolled_sequential_forward_gradient(loss, P: int):
    """P jvps in a Python-unrolled loop (no while loop): its XLA FLOPs can be read directly (small P only)."""
    jvp = one_jvp(loss)

    def grad(theta, *data):
        eye = jnp.eye(P, dtype=theta.dtype)
        return jnp.stack([jvp(theta, eye[i], *data) for i in range(P)])

    return grad


def empty_call(theta, *data):
    """The identity in theta with the same arguments as f: what a compiled call costs when it computes nothing
    (dispatch, argument checks, the output buffer). A time within ~10x of it is overhead, not the route's cost."""
    del data
    return theta


def hessian_vector_product(loss):
    """Forward over reverse: H v = d/de grad L(theta + e v) at e = 0, one jvp of jax.grad (cost ~ a few f)."""

    def hvp(theta, v, *data):
        return jax.jvp(lambda th: jax.grad(loss)(th, *data), (theta,), (v,))[1]

    return hvp


def logistic_hvp(theta, v, X, t):
    """Closed form H v = X^T diag(p (1 - p)) X v / N, p = sigmoid(X theta), in numpy (independent of JAX)."""
    del t
    theta, v, X = (np.asarray(a, dtype=np.float64) for a in (theta, v, X))
    p = 1.0 / (1.0 + np.exp(-(X @ theta)))
    return X.T @ (p * (1.0 - p) * (X @ v)) / X.shape[0]


def routes(loss) -> dict[str, Callable]:
    return {
        "f": loss,
        "rev": reverse_gradient(loss),
        "fwd_batched": batched_forward_gradient(loss),
        "fwd_sequential": sequential_forward_gradient(loss),
    }


# --------------------------------------------------------------------------------------------------------
# Mirror case: full Jacobians of R^n -> R^m


def two_layer_map(x, A, B):
    """g(x) = tanh(B tanh(A x)), R^n -> R^m through `hidden` units: cost(g) ~ 2 hidden (n + m)."""
    return jnp.tanh(B @ jnp.tanh(A @ x))


def two_layer_problem(n_in: int, n_out: int, hidden: int, rng: np.random.Generator):
    """(x, A, B) for g: R^n_in -> R^n_out. Tall Jacobian: n_in = 1; wide: n_out = 1."""
    x = rng.standard_normal(n_in)
    A = rng.standard_normal((hidden, n_in)) / math.sqrt(n_in)
    B = rng.standard_normal((n_out, hidden)) / math.sqrt(hidden)
    return _on_device(x, A, B)


def deep_problem(depth: int, width: int, n_samples: int, rng: np.random.Generator):
    """(Ws, X): depth weight matrices scaled 1/sqrt(width) so tanh activations stay O(1), and a batch X."""
    Ws = rng.standard_normal((depth, width, width)) / math.sqrt(width)
    return _on_device(Ws, rng.standard_normal((n_samples, width)))


# --------------------------------------------------------------------------------------------------------
# Reverse mode's memory against depth, with and without jax.checkpoint


def _dense_tanh(h, W):
    return jnp.tanh(h @ W), None


def segment_length(depth: int) -> int:
    """The largest divisor of depth not above sqrt(depth): segments tile the layers exactly (a ragged last
    segment would make XLA concatenate the weight gradients, a D-sized temporary). For a perfect square
    it is sqrt(D); for a prime D it is 1, and the strategy degenerates to per-layer checkpointing."""
    return max(s for s in range(1, math.isqrt(depth) + 1) if depth % s == 0)


def deep_loss(strategy: str):
    """L(Ws, X) = mean(h_D^2), h_l = tanh(h_{l-1} W_l), a lax.scan over D layers.

    strategy "none": the backward pass keeps every layer's residuals (~3 activations per layer);
    "per_layer": jax.checkpoint on each layer keeps only its input and recomputes the rest (~1 per layer);
    "sqrt_segments": checkpointed segments of sqrt(D) layers (see `segment_length`) keep only segment
    boundaries, then recompute one segment at a time: memory ~ 4 sqrt(D) activations, one extra forward.
    """

    def loss(Ws, X):
        depth = Ws.shape[0]
        if strategy == "none":
            h, _ = jax.lax.scan(_dense_tanh, X, Ws)
        elif strategy == "per_layer":
            h, _ = jax.lax.scan(jax.checkpoint(_dense_tanh), X, Ws)
        elif strategy == "sqrt_segments":
            seg = segment_length(depth)

            @jax.checkpoint
            def segment(h, W_segment):
                return jax.lax.scan(_dense_tanh, h, W_segment)[0], None

            h, _ = jax.lax.scan(segment, X, Ws.reshape(depth // seg, seg, *Ws.shape[1:]))
        else:
            raise ValueError(f"unknown checkpoint strategy {strategy!r}")
        return jnp.mean(h**2)

    return loss


CHECKPOINT_STRATEGIES = ("none", "per_layer", "sqrt_segments")


# --------------------------------------------------------------------------------------------------------
# FLOPs counted on the program JAX traces (no XLA: the same count on every backend)


def dot_flops(fn, *args) -> int:
    """Multiply-add FLOPs of every matrix product in fn's jaxpr: 2 x (output elements) x (contracted size) per
    dot_general, scan bodies times their length. The textbook cost model of a dense net: elementwise work
    (n per activation) is lower order. Counted on jax.make_jaxpr, so it is exact and backend independent."""
    return _dot_flops(jax.make_jaxpr(fn)(*args).jaxpr)


def _dot_flops(jaxpr) -> int:
    total = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (lhs_contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            total += 2 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[i] for i in lhs_contract)
        times = eqn.params.get("length", 1) if eqn.primitive.name == "scan" else 1
        for sub in _sub_jaxprs(eqn.params):
            total += times * _dot_flops(sub)
    return total


def _sub_jaxprs(params: dict):
    for value in params.values():
        for item in value if isinstance(value, tuple | list) else (value,):
            if hasattr(item, "eqns"):
                yield item
            elif hasattr(item, "jaxpr") and hasattr(item.jaxpr, "eqns"):
                yield item.jaxpr


def mlp_grad_flop_ratio(shapes: list[tuple[int, int]]) -> float:
    """cost(grad)/cost(f) of a dense net in multiply-adds: the forward pass F = sum_l a_l b_l, the weight
    gradients another F, and the deltas through every layer but the first (the inputs need none) F - a_1 b_1:
    (3 F - a_1 b_1) / F = 3 - a_1 b_1 / F -> 3 when the hidden layers dominate. A logistic model is one
    layer: 2."""
    F = sum(a * b for a, b in shapes)
    return 3.0 - shapes[0][0] * shapes[0][1] / F


def crossovers(n_in, n_out, ratio) -> list[float | None]:
    """Per n_out (columns of ratio[i_in, j_out] = t_jacfwd / t_jacrev): the n_in where log ratio crosses 0,
    interpolated linearly in log n_in between the two grid points around the first crossing; None without one."""
    logs = np.log(np.asarray(ratio, dtype=float))
    x = np.log(np.asarray(n_in, dtype=float))
    found = []
    for j in range(len(n_out)):
        column, hit = logs[:, j], None
        for i in range(len(x) - 1):
            a, b = column[i], column[i + 1]
            if np.isfinite(a) and np.isfinite(b) and a <= 0.0 < b:
                hit = float(np.exp(x[i] + (x[i + 1] - x[i]) * (-a) / (b - a)))
                break
        found.append(hit)
    return found


def max_relative_difference(a: Any, b: Any) -> float:
    """max |a - b| / max |b|: one number for how far two gradient vectors are apart."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), np.finfo(float).tiny))
