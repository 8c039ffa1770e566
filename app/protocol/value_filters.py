"""Value filters evaluated in memory (RFC 7644 §3.4.2.2): `emails[type eq "work"]` over the values of one
multi-valued complex attribute, for PATCH paths and for attributes/excludedAttributes projections alike. The one
in-memory filter evaluator: filters over whole resources run in the storage engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.protocol.attribute_values import coerce_boolean
from app.protocol.errors import invalid_filter
from app.protocol.filters import And, AttrPath, Compare, Filter, Not, Or, operands
from app.protocol.folding import fold_case
from app.protocol.schema_defs import Attribute

# One value of a multi-valued complex attribute -> whether the filter keeps it.
Predicate = Callable[[dict[str, Any]], bool]


def value_predicate(node: Filter, attribute: Attribute) -> tuple[Predicate, int]:
    """The value filter `node` over values of the multi-valued complex `attribute`, resolved once (a filter is
    applied to every value), and how many comparisons it makes per value. Raises invalidFilter for a
    sub-attribute `attribute` does not have, before any value is looked at."""
    if isinstance(node, And | Or):
        compiled = [value_predicate(term, attribute) for term in operands(node)]  # chains: no deep recursion
        predicates = [predicate for predicate, _ in compiled]
        cost = sum(cost for _, cost in compiled)
        if isinstance(node, And):
            return (lambda item: all(predicate(item) for predicate in predicates)), cost
        return (lambda item: any(predicate(item) for predicate in predicates)), cost
    if isinstance(node, Not):
        inner, cost = value_predicate(node.inner, attribute)
        return (lambda item: not inner(item)), cost
    if isinstance(node, Compare):
        sub = filter_sub_attribute(node.path, attribute)
        op, expected, name = node.op, node.value, sub.name
        return (lambda item: _compare(op, sub_value(item, name), expected, sub)), 1
    raise invalid_filter(f"A filter on {attribute.name!r} cannot nest another value filter.")


def matches(node: Filter, item: dict[str, Any], attribute: Attribute) -> bool:
    """Whether `item`, one value of the multi-valued complex `attribute`, satisfies the value filter `node`."""
    return value_predicate(node, attribute)[0](item)


def filter_sub_attribute(path: AttrPath, attribute: Attribute) -> Attribute:
    name = path.name
    if path.sub is not None and path.uri is None and path.name.lower() == attribute.name.lower():
        name = path.sub  # `emails[emails.type eq "work"]`: tolerated
    elif path.sub is not None or path.uri is not None:
        name = ""
    sub = attribute.sub(name) if name else None
    if sub is None:
        raise invalid_filter(f"{attribute.name!r} has no sub-attribute {str(path)!r} to filter on.")
    return sub


def _compare(op: str, actual: Any, expected: Any, sub: Attribute) -> bool:
    if op == "pr":
        return actual not in (None, "", [], {})
    if sub.type == "boolean":
        if op not in ("eq", "ne"):
            raise invalid_filter(f"{sub.name!r} is a boolean; only eq, ne and pr apply to it.")
        actual, expected = coerce_boolean(actual), coerce_boolean(expected)
    elif sub.type == "binary" and op in ("gt", "ge", "lt", "le"):
        raise invalid_filter(f"{sub.name!r} is binary; gt, ge, lt and le do not apply to it.")
    if expected is None or actual is None:
        if op == "eq":
            return actual is None and expected is None
        return op == "ne" and (actual is None) != (expected is None)
    if isinstance(actual, str) and isinstance(expected, str):
        if not sub.case_exact:
            actual, expected = fold_case(actual), fold_case(expected)
        return _ORDERED_OPS[op](actual, expected)
    numeric = (int, float)
    if (isinstance(actual, numeric) and isinstance(expected, numeric)
            and not isinstance(actual, bool) and not isinstance(expected, bool)):
        return op not in ("co", "sw", "ew") and _ORDERED_OPS[op](actual, expected)
    if op == "eq":
        return bool(actual == expected)
    if op == "ne":
        return bool(actual != expected)
    return False


_ORDERED_OPS: dict[str, Any] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "co": lambda a, b: b in a,
    "sw": lambda a, b: a.startswith(b),
    "ew": lambda a, b: a.endswith(b),
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}


def sub_value(item: dict[str, Any], name: str) -> Any:
    if name in item:
        return item[name]
    lowered = name.lower()
    return next((value for key, value in item.items() if key.lower() == lowered), None)

