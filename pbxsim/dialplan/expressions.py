"""``$[...]`` expressions, as Asterisk's expression parser (main/ast_expr2.y) evaluates them.

By the time an expression is evaluated its ``${...}`` are already substituted; what is left is
tokens and operators. A token made of digits and dots is a number, anything else a string:
quotes stay part of a quoted string (``"FAILURE"`` equals ``"FAILURE"``, not ``FAILURE``), so a
quoted number compares as a string. Comparisons (``= == != < > <= >=``) are numeric when both
sides are numbers and string comparisons otherwise, and give 1 or 0; ``a | b`` is ``a`` unless
it is empty or zero, else ``b``; ``a & b`` is ``a`` unless either is empty or zero, else 0;
``c ? a :: b``, ``!``, unary ``-``, ``+ - * / %``, ``a : regex`` / ``a =~ regex`` (the match
or its first group) and ``a ~~ b`` (concatenation) and parentheses work too. A syntax error
raises `ExpressionError` (Asterisk would log it and substitute an empty string); dialplan
functions inside an expression (``$[LEN(x)]``) are not implemented.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NoReturn

from pbxsim.dialplan.errors import ExpressionError

_OPERATORS: Final = (
    "||", "&&", "==", "=~", "~~", ">=", "<=", "!=", "::",
    "|", "&", "=", ">", "<", "+", "-", "*", "/", "%", "?", "!", ":", "(", ")", ",",
)  # fmt: skip
_WORD_STOP: Final = frozenset(' \t\r\n"|&=<>!+-*/%?:(),')
_COMPARISONS: Final[dict[str, Callable[[int, int], bool]]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}  # applied to (order, 0): order is -1, 0 or 1
_ALIASES: Final = {"||": "|", "&&": "&", "==": "="}


@dataclass(frozen=True)
class _Value:
    text: str
    computed: float | None = None  # the result of arithmetic or a comparison: a number

    @property
    def number(self) -> float | None:
        """The value as a number, if it is one (computed, or a token of digits and dots)."""
        if self.computed is not None:
            return self.computed
        if not self.text or any(char not in "0123456789." for char in self.text):
            return None
        match = re.match(r"\d*\.?\d*", self.text)
        digits = match.group(0) if match else ""
        try:
            return float(digits)
        except ValueError:
            return 0.0

    @property
    def false(self) -> bool:
        number = self.number
        return self.text == "" or (number is not None and number == 0)


def evaluate(expression: str) -> str:
    """The value of an expression as Asterisk prints it (``1``, ``0``, ``2.5``, ``"a"``)."""
    parser = _Parser(expression, _tokens(expression))
    value = parser.conditional()
    if parser.peek() is not None:
        parser.fail(f"unexpected {parser.peek()!r}")
    return value.text


def _tokens(expression: str) -> list[tuple[str, str]]:
    """(kind, text) pairs: kind is "op" or "word"."""
    tokens: list[tuple[str, str]] = []
    at = 0
    while at < len(expression):
        char = expression[at]
        if char in " \t\r\n":
            at += 1
        elif char == '"':
            end = expression.find('"', at + 1)
            if end < 0:
                raise ExpressionError(f"unterminated quote in $[{expression}]")
            tokens.append(("word", expression[at : end + 1]))
            at = end + 1
        elif (
            op := next((o for o in _OPERATORS if expression.startswith(o, at)), None)
        ) is not None:
            tokens.append(("op", _ALIASES.get(op, op)))
            at += len(op)
        else:
            end = at
            while end < len(expression) and expression[end] not in _WORD_STOP:
                end += 1
            tokens.append(("word", expression[at:end]))
            at = end
    return tokens


def _number(number: float) -> _Value:
    return _Value(f"{number:.18g}", number)


class _Parser:
    """Precedence climbing over the tokens, loosest first: ?:: | & comparisons + - * / %
    unary : =~ ~~."""

    def __init__(self, expression: str, tokens: list[tuple[str, str]]) -> None:
        self._expression = expression
        self._tokens = tokens
        self._at = 0

    def fail(self, message: str) -> NoReturn:
        raise ExpressionError(f"$[{self._expression}]: {message}")

    def peek(self) -> str | None:
        """The next token's text, or None at the end."""
        return self._tokens[self._at][1] if self._at < len(self._tokens) else None

    def _take_op(self, *ops: str) -> str | None:
        if self._at < len(self._tokens):
            kind, text = self._tokens[self._at]
            if kind == "op" and text in ops:
                self._at += 1
                return text
        return None

    def conditional(self) -> _Value:
        condition = self._or()
        if self._take_op("?") is None:
            return condition
        if_true = self.conditional()
        if self._take_op("::") is None:
            self.fail("'?' without '::'")
        if_false = self.conditional()
        return if_false if condition.false else if_true

    def _or(self) -> _Value:
        left = self._and()
        while self._take_op("|"):
            right = self._and()
            left = right if left.false else left
        return left

    def _and(self) -> _Value:
        left = self._comparison()
        while self._take_op("&"):
            right = self._comparison()
            left = _number(0) if left.false or right.false else left
        return left

    def _comparison(self) -> _Value:
        left = self._sum()
        while (op := self._take_op(*_COMPARISONS)) is not None:
            right = self._sum()
            left_number, right_number = left.number, right.number
            if left_number is not None and right_number is not None:
                order = (left_number > right_number) - (left_number < right_number)
            else:
                order = (left.text > right.text) - (left.text < right.text)
            result = _COMPARISONS[op](order, 0)
            left = _number(1 if result else 0)
        return left

    def _sum(self) -> _Value:
        left = self._product()
        while (op := self._take_op("+", "-")) is not None:
            right = self._product()
            a, b = self._numbers(left, right, op)
            left = _number(a + b if op == "+" else a - b)
        return left

    def _product(self) -> _Value:
        left = self._unary()
        while (op := self._take_op("*", "/", "%")) is not None:
            right = self._unary()
            a, b = self._numbers(left, right, op)
            if op != "*" and b == 0:
                self.fail("division by zero")
            result = a * b if op == "*" else a / b if op == "/" else float(int(a) % int(b))
            left = _number(result)
        return left

    def _unary(self) -> _Value:
        if self._take_op("!"):
            return _number(1 if self._unary().false else 0)
        if self._take_op("-"):
            value = self._unary()
            number = value.number
            if number is None:
                self.fail(f"non-numeric argument {value.text!r} to '-'")
            return _number(-(number or 0.0))
        return self._match()

    def _match(self) -> _Value:
        left = self._primary()
        while (op := self._take_op(":", "=~", "~~")) is not None:
            right = self._primary()
            text, pattern = left.text.strip('"'), right.text.strip('"')
            if op == "~~":
                left = _Value(text + pattern)
                continue
            found = (re.match if op == ":" else re.search)(pattern, text)
            if found is None:
                left = _Value("" if re.compile(pattern).groups else "0")
            elif found.groups():
                left = _Value(found.group(1) or "")
            else:
                left = _Value(str(found.end() - found.start()))
        return left

    def _primary(self) -> _Value:
        if self._take_op("("):
            value = self.conditional()
            if self._take_op(")") is None:
                self.fail("missing ')'")
            return value
        if self._at >= len(self._tokens):
            self.fail("an operand is missing")
        kind, text = self._tokens[self._at]
        if kind != "word":
            self.fail(f"an operand is missing before {text!r}")
        self._at += 1
        if self._at < len(self._tokens) and self._tokens[self._at] == ("op", "("):
            self.fail(f"function {text}() in an expression is not implemented by the simulator")
        return _Value(text)

    def _numbers(self, left: _Value, right: _Value, op: str) -> tuple[float, float]:
        a, b = left.number, right.number
        if a is None or b is None:
            self.fail(f"non-numeric argument to {op!r}: {left.text!r} {op} {right.text!r}")
        return a or 0.0, b or 0.0
