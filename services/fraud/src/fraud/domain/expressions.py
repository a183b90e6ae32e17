"""The rule expression language: a small, safe subset of Python expressions (pure).

    card.velocity_1h_count > 5 and amount > 500000
    ip_country != card_country
    customer.email in @block_emails
    currency in ["USD", "EUR"] and not capture

Parsed with `ast` and checked against a whitelist of node types; names are resolved only
from the attribute catalogue, `@name` only from the named lists. Nothing is ever passed to
`eval`/`exec`, and there are no calls, subscripts, comprehensions or lambdas, so a rule can
only read attributes and compare them. A comparison with an unknown value (None) is False,
except the explicit presence tests `x == None` / `x != None`.
"""

from __future__ import annotations

import ast
import io
import operator
import re
import tokenize
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

MAX_LENGTH = 1000
LIST_PREFIX = "__list__"
LIST_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
}


class InvalidExpression(ValueError):
    """The expression does not parse, uses something not allowed, or names an unknown thing."""


@dataclass(frozen=True)
class Expression:
    source: str
    tree: ast.Expression
    names: frozenset[str]
    lists: frozenset[str]

    def evaluate(self, attributes: Mapping[str, Any], lists: Mapping[str, Collection[Any]]) -> bool:
        """True when the condition holds. Unknown names evaluate as None (never raise)."""
        return _truthy(_Evaluator(attributes, lists).value(self.tree.body))


def parse(
    source: str, known_names: Collection[str], known_lists: Collection[str] | None = None
) -> Expression:
    """Parse and validate. `known_lists=None` accepts any well-formed list name."""
    if not source.strip():
        raise InvalidExpression("the expression is empty")
    if len(source) > MAX_LENGTH:
        raise InvalidExpression(f"the expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(_replace_list_refs(source).strip(), mode="eval")
    except (SyntaxError, tokenize.TokenError) as exc:
        raise InvalidExpression(
            f"syntax error: {exc.msg if hasattr(exc, 'msg') else exc}"
        ) from None
    names: set[str] = set()
    lists: set[str] = set()
    _check(tree.body, names, lists)
    unknown = sorted(names - set(known_names))
    if unknown:
        raise InvalidExpression(f"unknown attribute: {', '.join(unknown)}")
    if known_lists is not None:
        missing = sorted(lists - set(known_lists))
        if missing:
            raise InvalidExpression(f"unknown list: {', '.join('@' + m for m in missing)}")
    return Expression(source, tree, frozenset(names), frozenset(lists))


def _replace_list_refs(source: str) -> str:
    """`@name` -> a plain identifier; `@` anywhere else is refused (Python's matmul)."""
    out: list[tokenize.TokenInfo] = []
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == tokenize.OP and token.string == "@":
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            if following is None or following.type != tokenize.NAME:
                raise InvalidExpression("`@` must be followed by a list name")
            if not LIST_NAME.match(following.string):
                raise InvalidExpression(f"bad list name {following.string!r}")
            out.append(token._replace(type=tokenize.NAME, string=LIST_PREFIX + following.string))
            i += 2
            continue
        out.append(token)
        i += 1
    return tokenize.untokenize((t.type, t.string) for t in out)


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _check(node: ast.AST, names: set[str], lists: set[str]) -> None:
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, names, lists)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
        _check(node.operand, names, lists)
    elif isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        _check(node.left, names, lists)
        _check(node.right, names, lists)
    elif isinstance(node, ast.Compare):
        if any(type(op) not in _COMPARE for op in node.ops):
            raise InvalidExpression("only ==, !=, <, <=, >, >=, in, not in compare")
        for part in (node.left, *node.comparators):
            _check(part, names, lists)
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, bool | int | float | str | None):
            raise InvalidExpression(f"literal {node.value!r} is not allowed")
    elif isinstance(node, ast.List | ast.Tuple | ast.Set):
        for element in node.elts:
            if not isinstance(element, ast.Constant):
                raise InvalidExpression("a literal list holds literals only")
            _check(element, names, lists)
    elif isinstance(node, ast.Name | ast.Attribute):
        dotted = _dotted(node)
        if dotted is None:
            raise InvalidExpression("an attribute is a dotted name like card.bin")
        if dotted.startswith(LIST_PREFIX):
            lists.add(dotted.removeprefix(LIST_PREFIX))
        else:
            names.add(dotted)
    else:
        raise InvalidExpression(f"{type(node).__name__} is not allowed in a rule")


def _truthy(value: Any) -> bool:
    return bool(value) if value is not None else False


class _Evaluator:
    def __init__(self, attributes: Mapping[str, Any], lists: Mapping[str, Collection[Any]]):
        self.attributes = attributes
        self.lists = lists

    def value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.BoolOp):
            results = (_truthy(self.value(v)) for v in node.values)
            return all(results) if isinstance(node.op, ast.And) else any(results)
        if isinstance(node, ast.UnaryOp):
            operand = self.value(node.operand)
            if isinstance(node.op, ast.Not):
                return not _truthy(operand)
            return -operand if isinstance(operand, int | float) else None
        if isinstance(node, ast.BinOp):
            return self._arithmetic(node)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            return frozenset(self.value(e) for e in node.elts)
        dotted = _dotted(node) or ""
        if dotted.startswith(LIST_PREFIX):
            return self.lists.get(dotted.removeprefix(LIST_PREFIX), frozenset())
        return self.attributes.get(dotted)

    def _arithmetic(self, node: ast.BinOp) -> Any:
        left, right = self.value(node.left), self.value(node.right)
        if not (_is_number(left) and _is_number(right)):
            return None
        if isinstance(node.op, ast.Div | ast.Mod) and right == 0:
            return None
        return _ARITHMETIC[type(node.op)](left, right)

    def _compare(self, node: ast.Compare) -> bool:
        left_node, left = node.left, self.value(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.value(right_node)
            if not self._holds(op, left_node, left, right_node, right):
                return False
            left_node, left = right_node, right
        return True

    @staticmethod
    def _holds(
        op: ast.cmpop, left_node: ast.AST, left: Any, right_node: ast.AST, right: Any
    ) -> bool:
        if left is None or right is None:
            explicit = _is_none_literal(left_node) or _is_none_literal(right_node)
            if explicit and isinstance(op, ast.Eq | ast.NotEq):
                return _COMPARE[type(op)](left, right)
            return False
        try:
            return bool(_COMPARE[type(op)](left, right))
        except TypeError:  # e.g. "abc" > 5: a type mismatch is simply not a match
            return False


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_none_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None
