"""The graph expression language (Problems 9/10 on any graph): a safe parser, its printer, and the symbolic
derivative rules (problems/derivative.py) checked against jax.grad of the same tree evaluated with jax.numpy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from gradlab.problems import derivative as dv
from gradlab.problems import expression as ex

# Random trees over x and z: every primitive whose derivative rule is checked, arguments kept inside its domain
# (log/sqrt of 1 + u^2, log1p of u^2, tan of a bounded value) so that any point is a valid point.
SAFE_UNARY = {
    "exp": lambda u: dv.call("exp", dv.call("tanh", u)),
    "sin": lambda u: dv.call("sin", u),
    "cos": lambda u: dv.call("cos", u),
    "tanh": lambda u: dv.call("tanh", u),
    "sigmoid": lambda u: dv.call("sigmoid", u),
    "log": lambda u: dv.call("log", ex.Bin("+", ex.ONE, ex.Bin("**", u, ex.Num(2.0)))),
    "log1p": lambda u: dv.call("log1p", ex.Bin("**", u, ex.Num(2.0))),
    "sqrt": lambda u: dv.call("sqrt", ex.Bin("+", ex.ONE, ex.Bin("**", u, ex.Num(2.0)))),
    "tan": lambda u: dv.call("tan", ex.Bin("*", ex.Num(0.5), dv.call("tanh", u))),
    "neg": lambda u: ex.Neg(u),
    "cube": lambda u: ex.Bin("**", u, ex.Num(3.0)),
    "real power": lambda u: ex.Bin("**", ex.Bin("+", ex.Num(2.0), dv.call("sin", u)), ex.Num(1.5)),
    "power of u": lambda u: ex.Bin("**", ex.Num(1.7), u),
    "u to the u": lambda u: ex.Bin("**", ex.Bin("+", ex.Num(2.0), dv.call("cos", u)), dv.call("sin", u)),
}
leaves = st.one_of(st.sampled_from([ex.Name("x"), ex.Name("z")]),
                   st.floats(-3.0, 3.0, allow_nan=False).map(lambda v: ex.Num(round(v, 3))))


def _extend(children):
    binary = st.tuples(st.sampled_from(["+", "-", "*", "/"]), children, children).map(
        lambda t: ex.Bin(t[0], t[1], t[2]) if t[0] != "/" else
        ex.Bin("/", t[1], ex.Bin("+", ex.Num(2.0), dv.call("sin", t[2]))))  # a denominator in [1, 3]
    unary = st.tuples(st.sampled_from(sorted(SAFE_UNARY)), children).map(lambda t: SAFE_UNARY[t[0]](t[1]))
    two = st.tuples(st.sampled_from(["max", "min"]), children, children).map(lambda t: dv.call(t[0], t[1], t[2]))
    return st.one_of(binary, unary, two)


trees = st.recursive(leaves, _extend, max_leaves=6)
points = st.tuples(st.floats(-2.0, 2.0, allow_nan=False), st.floats(-2.0, 2.0, allow_nan=False))


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(trees, points)
@example(ex.Bin("**", ex.Num(-0.0), ex.Num(3.0)), (0.0, 0.0))  # -0.0 prints as 0: no parentheses needed
@example(ex.Bin("**", ex.Num(-2.0), ex.Num(2.0)), (0.0, 0.0))  # (-2) ** 2 = 4, not -(2 ** 2)
@example(ex.Bin("+", ex.Name("z"), ex.Bin("+", ex.Name("x"), ex.Name("x"))), (0.3, 0.25))  # z + (x + x): kept
def test_printed_text_parses_back_to_the_same_function(tree, point):
    """Printing adds only the parentheses needed: the text parses to a tree that prints the same and computes the
    same (a negative constant comes back as a negation, the one way the trees may differ)."""
    again = ex.parse(ex.to_text(tree))
    assert ex.to_text(again) == ex.to_text(tree)
    env = {"x": np.float64(point[0]), "z": np.float64(point[1])}
    with np.errstate(all="ignore"):
        ours, theirs = ex.evaluate(tree, env), ex.evaluate(again, env)
    assert ours == theirs or np.isnan(ours) and np.isnan(theirs)


@pytest.mark.slow
@settings(max_examples=20, deadline=None)
@given(trees, st.lists(points, min_size=8, max_size=8))
def test_symbolic_derivative_matches_jax_grad(tree, batch):
    env = {"x": np.array([p[0] for p in batch]), "z": np.array([p[1] for p in batch])}
    with np.errstate(all="ignore"):
        values = [np.broadcast_to(ex.evaluate(t, env), (8,)) for t in
                  (tree, dv.differentiate(tree, "x"), dv.differentiate(tree, "z"))]
    # keep the points where everything is finite and no kink of max/min lies within round-off
    keep = np.all(np.isfinite(values), axis=0)
    for a, b in _ties(tree, env):
        keep &= np.abs(a - b) > 1e-9 * (1 + np.abs(a))
    assume(keep.any())
    grad = jax.vmap(jax.grad(lambda p: ex.evaluate(tree, p, jnp) + 0.0 * p["x"]))
    theirs = grad({k: jnp.asarray(v) for k, v in env.items()})
    for ours, var in zip(values[1:], ("x", "z"), strict=True):
        np.testing.assert_allclose(ours[keep], np.asarray(theirs[var])[keep], rtol=1e-9, atol=1e-9,
                                   err_msg=f"{ex.to_text(tree)} d/d{var}")


def _ties(tree, env):
    if isinstance(tree, ex.Call) and tree.fn in ex.BINARY:
        yield tuple(np.asarray(ex.evaluate(a, env), dtype=float) for a in tree.args)
    for child in {ex.Neg: lambda t: (t.arg,), ex.Bin: lambda t: (t.left, t.right),
                  ex.Call: lambda t: t.args}.get(type(tree), lambda t: ())(tree):
        yield from _ties(child, env)


@pytest.mark.parametrize(
    ("text", "derivative"),
    [
        ("exp(x)", "exp(x)"),
        ("x ** 2", "2 * x"),
        ("-x ** 2", "-(2 * x)"),
        ("x * z", "z"),
        ("log(x)", "1 / x"),
        ("1 / x", "-1 / x ** 2"),
        ("sqrt(x)", "1 / (2 * sqrt(x))"),
        ("sigmoid(x)", "sigmoid(x) * (1 - sigmoid(x))"),
        ("max(x, z)", "heaviside(x - z)"),
        ("abs(x)", "sign(x)"),
        ("x ** x", "x ** x * (log(x) + x / x)"),
        ("3", "0"),
    ],
)
def test_derivative_rules_read_as_by_hand(text, derivative):
    assert ex.to_text(dv.differentiate(ex.parse(text), "x")) == derivative


def test_max_tie_splits_the_derivative_as_jax_does():
    tree = ex.parse("max(x, z)")
    env = {"x": np.float64(1.0), "z": np.float64(1.0)}
    ours = [float(ex.evaluate(dv.differentiate(tree, v), env)) for v in ("x", "z")]
    theirs = jax.grad(lambda p: ex.evaluate(tree, p, jnp))({k: jnp.asarray(v) for k, v in env.items()})
    assert ours == [0.5, 0.5] == [float(theirs["x"]), float(theirs["z"])]


def test_precedence_and_associativity():
    env = {"x": 2.0}
    cases = {"-x ** 2": -4.0, "2 ** 3 ** 2": 512.0, "2 ** -1": 0.5, "8 / 2 / 2": 2.0, "1 - 2 - 3": -4.0,
             "(1 - 2) * 3": -3.0, "+x": 2.0, "--x": 2.0, "1.5e1 + .5": 15.5, "min(x, 3) * max(-x, 1)": 2.0}
    for text, value in cases.items():
        assert ex.evaluate(ex.parse(text), env) == value, text


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("x +", "found the end", 4),
        ("foo(x)", "unknown function 'foo'", 1),
        ("x $ 2", "unexpected character '$'", 3),
        ("(x", "expected ')'", 3),
        ("max(x)", "max takes 2 arguments", 1),
        ("exp", "exp is a function", 1),
        ("3 x", "unexpected 'x'", 3),
        ("__import__('os')", "unexpected character \"'\"", 12),
        ("__import__(os)", "unknown function '__import__'", 1),
        ("x.real", "unexpected character '.'", 2),
        ("x ^ 2", "unexpected character '^'", 3),
        ("", "an empty expression", None),
    ],
)
def test_syntax_errors_name_the_column(text, message, column):
    with pytest.raises(ex.ExpressionError) as err:
        ex.parse(text)
    assert message in str(err.value) and err.value.column == column


def test_limits_on_length_and_depth():
    with pytest.raises(ex.ExpressionError, match="more than the limit of"):
        ex.parse("x + " * 150 + "x")
    deep = "(" * (ex.MAX_DEPTH + 1) + "x" + ")" * (ex.MAX_DEPTH + 1)
    with pytest.raises(ex.ExpressionError, match="nested deeper"):
        ex.parse(deep)
    with pytest.raises(ex.ExpressionError, match="levels deep"):
        ex.parse(" + ".join(["x"] * (ex.MAX_DEPTH + 1)))
    with pytest.raises(ex.ExpressionError, match="nested deeper"):
        ex.parse("-" * 100 + "x")  # no Python recursion error: the unary chain counts as depth too


@pytest.mark.parametrize(
    ("text", "x", "reason", "operand", "value"),
    [
        ("log(x - 1)", [2.0, 0.5], "log of a negative value", "x - 1", -0.5),
        ("log(x)", [0.0], "log of zero", "x", 0.0),
        ("sqrt(x)", [1.0, 4.0, -9.0], "sqrt of a negative value", "x", -9.0),
        ("1 / (x - 2)", [2.0], "division by zero", "x - 2", 0.0),
        ("x ** 0.5", [-1.0], "a non-integer power of a negative value", "x", -1.0),
        ("x ** -1", [0.0], "zero to a negative power", "-1", -1.0),
        ("log1p(x)", [-1.0], "log1p of -1", "x", -1.0),
    ],
)
def test_domain_errors_name_the_operand_value_and_point(text, x, reason, operand, value):
    with pytest.raises(ex.DomainError) as err:
        ex.evaluate(ex.parse(text), {"x": np.asarray(x)}, checked=True)
    assert (err.value.reason, err.value.text, err.value.value, err.value.index) == (reason, operand, value, len(x) - 1)


def test_constant_powers_keep_double_precision():
    # a power of two constants once went through float32 (hypothesis: sqrt(1 + 0 ** 2) lost 8 digits)
    env = {"x": np.asarray([3.0])}
    assert ex.evaluate(ex.parse("2 ** 0.5 * x"), env)[0] == 3 * 2**0.5
    assert ex.evaluate(ex.parse("sqrt(1 + 0 ** 2) + x"), env).dtype == np.float64


def test_integer_power_of_a_negative_value_is_allowed():
    assert ex.evaluate(ex.parse("x ** 3"), {"x": np.asarray([-2.0])}, checked=True)[0] == -8.0
