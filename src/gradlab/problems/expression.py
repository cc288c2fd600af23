"""A safe expression language for the graphs of Problems 9 and 10 (any graph): parse, evaluate, differentiate.

Grammar (no `eval`: a tokenizer and a recursive-descent parser build a small tree):

    expr  := term (("+" | "-") term)*
    term  := unary (("*" | "/") unary)*
    unary := ("-" | "+") unary | power
    power := atom ("**" unary)?                      right-associative: -x ** 2 = -(x ** 2), 2 ** -x allowed
    atom  := NUMBER | NAME | NAME "(" expr ("," expr)* ")" | "(" expr ")"

Primitives: exp, log, log1p, sin, cos, tan, tanh, sqrt, sigmoid, abs, sign, heaviside (one argument) and max, min
(two). `differentiate(e, v)` applies the chain rule symbolically, one rule per primitive:

    d exp(u) = exp(u) du      d log(u) = du / u        d log1p(u) = du / (1 + u)     d sqrt(u) = du / (2 sqrt(u))
    d sin(u) = cos(u) du      d cos(u) = -sin(u) du    d tan(u) = du / cos(u)^2      d tanh(u) = (1 - tanh(u)^2) du
    d sigmoid(u) = sigmoid(u) (1 - sigmoid(u)) du      d abs(u) = sign(u) du         d sign = d heaviside = 0
    d max(a, b) = heaviside(a - b) da + heaviside(b - a) db  (H(0) = 1/2: a tie splits the derivative, as JAX does)
    d a^b = b a^(b-1) da  (b constant),  a^b log(a) db  (a constant),  a^b (db log a + b da / a)  otherwise

and simplifies as it goes (0 u = 0, 1 u = u, u + 0 = u, constants folded), so that d(f1 ** 2)/d f1 reads 2 * f1.
`evaluate(e, env, xp)` computes a tree with numpy or jax.numpy elementwise; with `checked=True` it refuses a
domain error (log/sqrt of a negative value, division by zero, a real power of a negative value) naming the
sub-expression and the value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_CHARS = 400  # an expression longer than this is refused (split it into nodes)
MAX_DEPTH = 40  # nesting depth of the parsed tree (a chain a + b + c + ... counts one level a term)

UNARY = ("exp", "log", "log1p", "sin", "cos", "tan", "tanh", "sqrt", "sigmoid", "abs", "sign", "heaviside")
BINARY = ("max", "min")
FUNCTIONS = UNARY + BINARY


class ExpressionError(ValueError):
    """An expression that cannot be parsed or used; `column` (1-based) points at the culprit, if known."""

    def __init__(self, message: str, column: int | None = None):
        self.message, self.column = message, column
        super().__init__(message + (f" (column {column})" if column else ""))


class DomainError(ValueError):
    """A primitive applied outside its domain at some point: why, the operand's text, its value, which point."""

    def __init__(self, text: str, reason: str, value: float, index: int):
        self.text, self.reason, self.value, self.index = text, reason, value, index
        super().__init__(f"{reason}: {text} = {value!r}")


# --------------------------------------------------------------------------------------------------------
# The tree


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Name:
    id: str


@dataclass(frozen=True)
class Neg:
    arg: Expr


@dataclass(frozen=True)
class Bin:
    op: str  # + - * / **
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple


Expr = Num | Name | Neg | Bin | Call
ZERO, ONE = Num(0.0), Num(1.0)


def names(e: Expr) -> list[str]:
    """The names an expression uses, in order of first appearance."""
    if isinstance(e, Name):
        return [e.id]
    children = {Neg: lambda: (e.arg,), Bin: lambda: (e.left, e.right), Call: lambda: e.args}.get(type(e))
    found: list[str] = []
    for child in children() if children else ():
        found += [n for n in names(child) if n not in found]
    return found


def depth(e: Expr) -> int:
    if isinstance(e, Neg):
        return 1 + depth(e.arg)
    if isinstance(e, Bin):
        return 1 + max(depth(e.left), depth(e.right))
    if isinstance(e, Call):
        return 1 + max(depth(a) for a in e.args)
    return 1


def operations(e: Expr) -> int:
    """Primitive operations to evaluate e once (each +, -, *, /, **, negation and function call counts one)."""
    if isinstance(e, Neg):
        return 1 + operations(e.arg)
    if isinstance(e, Bin):
        return 1 + operations(e.left) + operations(e.right)
    if isinstance(e, Call):
        return 1 + sum(operations(a) for a in e.args)
    return 0


# --------------------------------------------------------------------------------------------------------
# Parsing

_TOKEN = re.compile(r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_]\w*)"
                    r"|(?P<op>\*\*|[-+*/(),]))")


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match:
            bad = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise ExpressionError(f"unexpected character {text[bad]!r}", bad + 1)
        kind = match.lastgroup
        tokens.append((kind, match.group(kind), match.start(kind) + 1))
        pos = match.end()
    tokens.append(("end", "", len(text) + 1))
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.tokens, self.i, self.level = _tokens(text), 0, 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self, value: str | None = None) -> tuple[str, str, int]:
        token = self.tokens[self.i]
        if value is not None and token[1] != value:
            found = f"{token[1]!r}" if token[0] != "end" else "the end"
            raise ExpressionError(f"expected {value!r}, found {found}", token[2])
        self.i += 1
        return token

    def nest(self, column: int) -> None:
        self.level += 1
        if self.level > MAX_DEPTH:
            raise ExpressionError(f"nested deeper than {MAX_DEPTH} levels", column)

    def expr(self) -> Expr:
        left = self.term()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            left = Bin(op, left, self.term())
        return left

    def term(self) -> Expr:
        left = self.unary()
        while self.peek()[1] in ("*", "/"):
            op = self.take()[1]
            left = Bin(op, left, self.unary())
        return left

    def unary(self) -> Expr:
        kind, value, column = self.peek()
        if value in ("-", "+"):
            self.take()
            self.nest(column)
            arg = self.unary()
            self.level -= 1
            return Neg(arg) if value == "-" else arg
        return self.power()

    def power(self) -> Expr:
        base = self.atom()
        if self.peek()[1] == "**":
            column = self.take()[2]
            self.nest(column)
            exponent = self.unary()
            self.level -= 1
            return Bin("**", base, exponent)
        return base

    def atom(self) -> Expr:
        kind, value, column = self.take()
        if kind == "num":
            return Num(float(value))
        if kind == "name":
            if self.peek()[1] != "(":
                if value in FUNCTIONS:
                    raise ExpressionError(f"{value} is a function: write {value}(...)", column)
                return Name(value)
            if value not in FUNCTIONS:
                raise ExpressionError(f"unknown function {value!r} (known: {', '.join(FUNCTIONS)})", column)
            self.take("(")
            self.nest(column)
            args = [self.expr()]
            while self.peek()[1] == ",":
                self.take()
                args.append(self.expr())
            self.level -= 1
            self.take(")")
            arity = 2 if value in BINARY else 1
            if len(args) != arity:
                raise ExpressionError(f"{value} takes {arity} argument{'s' * (arity > 1)}, not {len(args)}", column)
            return Call(value, tuple(args))
        if value == "(":
            self.nest(column)
            inner = self.expr()
            self.level -= 1
            self.take(")")
            return inner
        found = f"{value!r}" if kind != "end" else "the end"
        raise ExpressionError(f"expected a number, a name or '(', found {found}", column)


def parse(text: str) -> Expr:
    """The tree of `text`; ExpressionError (with the column) if it is not in the grammar or too long/deep."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("an empty expression")
    if len(text) > MAX_CHARS:
        raise ExpressionError(f"{len(text)} characters, more than the limit of {MAX_CHARS}: split it into nodes")
    parser = _Parser(text)
    tree = parser.expr()
    kind, value, column = parser.peek()
    if kind != "end":
        raise ExpressionError(f"unexpected {value!r}", column)
    if depth(tree) > MAX_DEPTH:
        raise ExpressionError(f"{depth(tree)} levels deep, more than the limit of {MAX_DEPTH}: split it into nodes")
    return tree


# --------------------------------------------------------------------------------------------------------
# Printing: the fewest parentheses that parse back to the same tree

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "**": 4}


def _precedence(e: Expr) -> int:
    if isinstance(e, Bin):
        return _PRECEDENCE[e.op]
    if isinstance(e, Neg) or isinstance(e, Num) and (e.value < 0 or math.copysign(1.0, e.value) < 0):
        return 3
    return 5


def _number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def to_text(e: Expr) -> str:
    if isinstance(e, Num):
        return _number(e.value)
    if isinstance(e, Name):
        return e.id
    if isinstance(e, Call):
        return f"{e.fn}({', '.join(to_text(a) for a in e.args)})"
    if isinstance(e, Neg):
        inner = to_text(e.arg)
        return f"-{inner}" if _precedence(e.arg) >= 3 and not inner.startswith("-") else f"-({inner})"
    p = _PRECEDENCE[e.op]
    left, right = to_text(e.left), to_text(e.right)
    if _precedence(e.left) < p or e.op == "**" and _precedence(e.left) <= 4:
        left = f"({left})"
    if e.op == "**":
        if _precedence(e.right) < 3:
            right = f"({right})"
    elif _precedence(e.right) < p or _precedence(e.right) == p and e.op in ("-", "/"):
        right = f"({right})"
    return f"{left} {e.op} {right}"


# --------------------------------------------------------------------------------------------------------
# Evaluation


def _sigmoid(xp: Any) -> Callable:
    if xp is np:
        # exp(-|u|) never overflows: 1 / (1 + e^-u) for u >= 0, e^u / (1 + e^u) below
        return lambda u: np.where(u >= 0, 1.0, np.exp(-np.abs(u))) / (1.0 + np.exp(-np.abs(u)))
    import jax  # the JAX route only

    return jax.nn.sigmoid


def _primitive(xp: Any, fn: str) -> Callable:
    special = {"sigmoid": lambda: _sigmoid(xp), "max": lambda: xp.maximum, "min": lambda: xp.minimum,
               "heaviside": lambda: lambda u: xp.heaviside(u, xp.asarray(0.5, dtype=xp.asarray(u).dtype))}
    return special[fn]() if fn in special else getattr(xp, fn)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(np.broadcast_to(mask, np.shape(mask)).ravel())[0]) if np.ndim(mask) else 0


def _check(operand: Expr, rules: list[tuple[str, Any]], value: Any) -> None:
    """Raise DomainError for the first rule whose mask holds anywhere, naming the operand and its value there."""
    for reason, mask in rules:
        mask = np.asarray(mask)
        if mask.any():
            index = int(np.flatnonzero(mask.ravel())[0]) if mask.ndim else 0
            shown = np.broadcast_to(np.asarray(value), mask.shape).ravel()[index] if mask.ndim else value
            raise DomainError(to_text(operand), reason, float(shown), index)


def _domain(e: Expr, args: list) -> None:
    """Refuse a primitive outside its domain (numpy route): the reason, the operand and its offending value."""
    if isinstance(e, Call):
        u = np.asarray(args[0])
        rules = {"log": [("log of a negative value", u < 0), ("log of zero", u == 0)],
                 "log1p": [("log1p of a value below -1", u < -1), ("log1p of -1", u == -1)],
                 "sqrt": [("sqrt of a negative value", u < 0)]}
        _check(e.args[0], rules.get(e.fn, []), u)
    elif isinstance(e, Bin) and e.op == "/":
        _check(e.right, [("division by zero", np.asarray(args[1]) == 0)], args[1])
    elif isinstance(e, Bin) and e.op == "**":
        a, b = np.asarray(args[0]), np.asarray(args[1])
        _check(e.left, [("a non-integer power of a negative value", (a < 0) & (b != np.round(b)))], a)
        _check(e.right, [("zero to a negative power", (a == 0) & (b < 0))], b)


def evaluate(e: Expr, env: Mapping[str, Any], xp: Any = np, *, checked: bool = False) -> Any:
    """e with every name taken from env, elementwise in numpy or jax.numpy (xp); checked: refuse domain errors."""
    if isinstance(e, Num):
        return e.value
    if isinstance(e, Name):
        return env[e.id]
    if isinstance(e, Neg):
        return -evaluate(e.arg, env, xp, checked=checked)
    args = [evaluate(a, env, xp, checked=checked) for a in ((e.left, e.right) if isinstance(e, Bin) else e.args)]
    if checked:
        _domain(e, args)
    if isinstance(e, Call):
        return _primitive(xp, e.fn)(*args)
    a, b = args
    if e.op == "**" and xp is np:
        return np.power(np.asarray(a, dtype=np.result_type(a, b, np.float32)), b)
    return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b, "**": lambda: a**b}[e.op]()


# --------------------------------------------------------------------------------------------------------
# Differentiation: the chain rule, symbolically, with simplification as the tree is built


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


def inline(e: Expr, definitions: Mapping[str, Expr]) -> Expr:
    """e with every name that has a definition replaced by it, recursively (a graph written as one expression)."""
    if isinstance(e, Name):
        return inline(definitions[e.id], definitions) if e.id in definitions else e
    if isinstance(e, Neg):
        return Neg(inline(e.arg, definitions))
    if isinstance(e, Bin):
        return Bin(e.op, inline(e.left, definitions), inline(e.right, definitions))
    if isinstance(e, Call):
        return Call(e.fn, tuple(inline(a, definitions) for a in e.args))
    return e
