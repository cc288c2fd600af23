"""Symbolic derivatives of expression trees (`gradlab.problems.expression`): the local derivative on each edge of a
computational graph (Problems 9 and 10), one chain rule per primitive:

    d exp(u) = exp(u) du      d log(u) = du / u        d log1p(u) = du / (1 + u)     d sqrt(u) = du / (2 sqrt(u))
    d sin(u) = cos(u) du      d cos(u) = -sin(u) du    d tan(u) = du / cos(u)^2      d tanh(u) = (1 - tanh(u)^2) du
    d sigmoid(u) = sigmoid(u) (1 - sigmoid(u)) du      d abs(u) = sign(u) du         d sign = d heaviside = 0
    d max(a, b) = heaviside(a - b) da + heaviside(b - a) db  (H(0) = 1/2: a tie splits the derivative, as JAX does)
    d a^b = b a^(b-1) da  (b constant),  a^b log(a) db  (a constant),  a^b (db log a + b da / a)  otherwise

The tree is simplified as it is built (0 u = 0, 1 u = u, u + 0 = u, constants folded), so that d(f1 ** 2)/d f1
reads 2 * f1; `substitute` lets a node's derivative reuse its own value (d exp(x)/dx = f1 for f1 = exp(x)).
"""

from __future__ import annotations

from gradlab.problems.expression import BINARY, ONE, ZERO, Bin, Call, Expr, Name, Neg, Num


def add(a: Expr, b: Expr) -> Expr:
    if isinstance(a, Num) and isinstance(b, Num):
        return Num(a.value + b.value)
    if a == ZERO:
        return b
    if b == ZERO:
        return a
    if isinstance(b, Neg):
        return sub(a, b.arg)
    return Bin("+", a, b)


def sub(a: Expr, b: Expr) -> Expr:
    if isinstance(a, Num) and isinstance(b, Num):
        return Num(a.value - b.value)
    if b == ZERO:
        return a
    if a == ZERO:
        return neg(b)
    return Bin("-", a, b)


def neg(a: Expr) -> Expr:
    if isinstance(a, Num):
        return Num(-a.value)
    if isinstance(a, Neg):
        return a.arg
    if isinstance(a, Bin) and a.op == "/" and isinstance(a.left, Num):  # -(1 / u) reads -1 / u
        return Bin("/", Num(-a.left.value), a.right)
    return Neg(a)


def mul(a: Expr, b: Expr) -> Expr:
    if isinstance(a, Num) and isinstance(b, Num):
        return Num(a.value * b.value)
    if ZERO in (a, b):
        return ZERO
    if a == ONE:
        return b
    if b == ONE:
        return a
    if a == Num(-1.0):
        return neg(b)
    if b == Num(-1.0):
        return neg(a)
    if isinstance(b, Num):  # constants first: 2 * f1, not f1 * 2
        return mul(b, a)
    if isinstance(a, Neg):
        return neg(mul(a.arg, b))
    if isinstance(b, Neg):
        return neg(mul(a, b.arg))
    return Bin("*", a, b)


def div(a: Expr, b: Expr) -> Expr:
    if a == ZERO:
        return ZERO
    if b == ONE:
        return a
    if isinstance(a, Num) and isinstance(b, Num) and b.value != 0:
        return Num(a.value / b.value)
    return Bin("/", a, b)


def power(a: Expr, b: Expr) -> Expr:
    if b == ONE:
        return a
    if b == ZERO:
        return ONE
    return Bin("**", a, b)


def call(fn: str, *args: Expr) -> Expr:
    return Call(fn, tuple(args))


def _chain(fn: str, u: Expr, e: Expr) -> Expr:
    """d fn(u) / du, reusing e = fn(u) itself where the derivative is the function (exp)."""
    rules = {
        "exp": lambda: e,
        "log": lambda: div(ONE, u),
        "log1p": lambda: div(ONE, add(ONE, u)),
        "sin": lambda: call("cos", u),
        "cos": lambda: neg(call("sin", u)),
        "tan": lambda: div(ONE, power(call("cos", u), Num(2.0))),
        "tanh": lambda: sub(ONE, power(e, Num(2.0))),
        "sqrt": lambda: div(ONE, mul(Num(2.0), e)),
        "sigmoid": lambda: mul(e, sub(ONE, e)),
        "abs": lambda: call("sign", u),
        "sign": lambda: ZERO,
        "heaviside": lambda: ZERO,
    }
    return rules[fn]()


def differentiate(e: Expr, var: str) -> Expr:
    """d e / d var, symbolically (the rules of the module docstring)."""
    if isinstance(e, Num):
        return ZERO
    if isinstance(e, Name):
        return ONE if e.id == var else ZERO
    if isinstance(e, Neg):
        return neg(differentiate(e.arg, var))
    if isinstance(e, Call):
        if e.fn in BINARY:
            a, b = e.args
            first, second = (a, b) if e.fn == "max" else (b, a)  # min(a, b) = -max(-a, -b): a wins when b > a
            da, db = differentiate(a, var), differentiate(b, var)
            wins_a = call("heaviside", sub(first, second))
            wins_b = call("heaviside", sub(second, first))
            return add(mul(wins_a, da), mul(wins_b, db))
        (u,) = e.args
        return mul(_chain(e.fn, u, e), differentiate(u, var))
    a, b = e.left, e.right
    da, db = differentiate(a, var), differentiate(b, var)
    if e.op == "+":
        return add(da, db)
    if e.op == "-":
        return sub(da, db)
    if e.op == "*":
        return add(mul(da, b), mul(a, db))
    if e.op == "/":
        return sub(div(da, b), div(mul(a, db), power(b, Num(2.0))))
    if db == ZERO:  # a ** c with c constant in var
        exponent = sub(b, ONE)
        return mul(mul(b, power(a, exponent)), da)
    if da == ZERO:  # c ** b
        return mul(mul(e, call("log", a)), db)
    return mul(e, add(mul(db, call("log", a)), div(mul(b, da), a)))


def substitute(e: Expr, target: Expr, name: str) -> Expr:
    """e with every sub-tree equal to target replaced by Name(name) (a node's derivative reuses its own value)."""
    if e == target:
        return Name(name)
    if isinstance(e, Neg):
        return Neg(substitute(e.arg, target, name))
    if isinstance(e, Bin):
        return Bin(e.op, substitute(e.left, target, name), substitute(e.right, target, name))
    if isinstance(e, Call):
        return Call(e.fn, tuple(substitute(a, target, name) for a in e.args))
    return e
