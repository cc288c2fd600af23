"""A safe expression language for the graphs of Problems 9 and 10 (any graph): parse, print, evaluate.

Grammar (no `eval`: a tokenizer and a recursive-descent parser build a small tree):

    expr  := term (("+" | "-") term)*
    term  := unary (("*" | "/") unary)*
    unary := ("-" | "+") unary | power
    power := atom ("**" unary)?                      right-associative: -x ** 2 = -(x ** 2), 2 ** -x allowed
    atom  := NUMBER | NAME | NAME "(" expr ("," expr)* ")" | "(" expr ")"

Primitives: exp, log, log1p, sin, cos, tan, tanh, sqrt, sigmoid, abs, sign, heaviside (one argument) and max, min
(two); their derivative rules are in `gradlab.problems.derivative`. `to_text` prints a tree with the fewest
parentheses that parse back to it.
`evaluate(e, env, xp)` computes a tree with numpy or jax.numpy elementwise; with `checked=True` it refuses a
domain error (log/sqrt of a negative value, division by zero, a real power of a negative value) naming the
operand and its value.
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
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a name: ASCII letters, digits and _, not starting with a digit


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


def operations(e: Expr, per_name: Mapping[str, int] | None = None) -> int:
    """Primitive operations to evaluate e once (each +, -, *, /, **, negation and function call counts one), a
    name counting per_name[name] (0 when absent: a value already computed)."""
    if isinstance(e, Name):
        return (per_name or {}).get(e.id, 0)
    if isinstance(e, Neg):
        return 1 + operations(e.arg, per_name)
    if isinstance(e, Bin):
        return 1 + operations(e.left, per_name) + operations(e.right, per_name)
    if isinstance(e, Call):
        return 1 + sum(operations(a, per_name) for a in e.args)
    return 0


def inlined_operations(e: Expr, definitions: Mapping[str, Expr]) -> int:
    """operations(inline(e, definitions)), counted without inlining: each definition once, in order (each uses
    only names defined before it). The inlined expression itself can double with every definition
    (n_i = tanh(n_{i-1}) + cos(n_{i-1}) uses n_{i-1} twice): 2^100 operations for a chain of 100."""
    per_name: dict[str, int] = {}
    for name, definition in definitions.items():
        per_name[name] = operations(definition, per_name)
    return operations(e, per_name)


# --------------------------------------------------------------------------------------------------------
# Parsing

_TOKEN = re.compile(r"\s*(?:(?P<num>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
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
    if isinstance(e, Neg) or isinstance(e, Num) and _number(e.value).startswith("-"):  # a negative constant
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
    elif _precedence(e.right) <= p:  # a + (b + c) is another sum than a + b + c in floating point
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


def _constant_power(a: float, b: float) -> float:
    """a ** b of two constants as NumPy would give it: nan for a negative base and a fractional power, inf past
    the largest float or for zero to a negative power."""
    try:
        return math.pow(a, b)
    except OverflowError:
        return math.inf
    except ValueError:
        return math.inf if a == 0 else math.nan


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
        # a constant power (2 ** 0.5) stays a Python float, at double precision, taking the points' dtype later
        return _constant_power(a, b) if isinstance(a, float) and isinstance(b, float) else np.power(a, b)
    return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b, "**": lambda: a**b}[e.op]()


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
