"""Resolved filters and sort keys (app/protocol/resolved.py) compiled to parameterised PostgreSQL over jsonb.

The same semantics as the SQLite compiler, by the same means where PostgreSQL allows: every expression is a boolean
that is never NULL (absent attributes are false, so `NOT` inverts exactly); a case-insensitive string is compared
in its folded form, read from `doc_folded` (the document with every string folded by app/protocol/folding.py when
it was written), so folding is the application's one rule on both engines, never PostgreSQL's lower(); `co`, `sw`
and `ew` are strpos / starts_with / right, which have no wildcards to escape. Values travel only as `%s`
parameters; the only text spliced into SQL is column names from the table below and aliases made here, and JSON
keys always travel as parameters (a text[] path), never as SQL text.

A resource row is aliased `r` (users or groups); a membership row `gm` (group_members); a document collection's
element `e<n>`, with its folded twin, from ROWS FROM (jsonb_array_elements(doc), jsonb_array_elements(doc_folded)),
which walks both arrays in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.protocol.folding import fold_case
from app.protocol.resolved import (
    CONSTANT,
    DOCUMENT,
    ELEMENT,
    FIELD,
    GROUP_ID,
    GROUP_NAME,
    MEMBER_ID,
    All,
    AnyOf,
    Collection,
    Compare,
    Constant,
    Node,
    Not,
    Present,
    Some,
    SortKey,
    Value,
)
from app.protocol.schema_defs import ResourceType

_STRING_TYPES = frozenset({"string", "reference", "binary"})
_NUMBER_TYPES = frozenset({"integer", "decimal"})
_ORDER_OPS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}

# FIELD values: (column, holds folded text, never NULL), by resource type and attribute name.
_COLUMNS: dict[tuple[str, str], tuple[str, bool, bool]] = {
    ("User", "id"): ("id", False, True),
    ("User", "externalId"): ("external_id", False, False),
    ("User", "userName"): ("user_name_key", True, True),
    ("User", "active"): ("active", False, True),
    ("User", "created"): ("created", False, True),
    ("User", "lastModified"): ("last_modified", False, True),
    ("Group", "id"): ("id", False, True),
    ("Group", "externalId"): ("external_id", False, False),
    ("Group", "displayName"): ("display_name_key", True, True),
    ("Group", "created"): ("created", False, True),
    ("Group", "lastModified"): ("last_modified", False, True),
}


@dataclass(frozen=True)
class _Operand:
    """A scalar SQL expression and how to compare against it."""

    expr: str
    params: tuple[Any, ...]
    type: str
    nullable: bool
    boolean_as_int: bool = False  # the `active` column keeps a boolean as 0/1


@dataclass(frozen=True)
class _Element:
    """The element a Some iterates: its jsonb value and its folded twin."""

    value: str
    folded: str


class Compiler:
    """One compilation: SQL text plus its parameters, in order."""

    def __init__(self, resource_type: str | None, alias: str = "r", membership_alias: str = "gm") -> None:
        self.resource_type = resource_type
        self.alias = alias
        self.membership_alias = membership_alias
        self.params: list[Any] = []
        self._aliases = 0
        self._element: _Element | None = None

    def fresh(self, prefix: str) -> str:
        self._aliases += 1
        return f"{prefix}{self._aliases}"

    # -- filters ---------------------------------------------------------------------------------------
    def condition(self, node: Node) -> str:
        if isinstance(node, All | AnyOf):
            joiner = " AND " if isinstance(node, All) else " OR "
            if not node.terms:
                return "TRUE" if isinstance(node, All) else "FALSE"
            return "(" + joiner.join(self.condition(term) for term in node.terms) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.condition(node.inner)})"
        if isinstance(node, Constant):
            return "TRUE" if node.truth else "FALSE"
        if isinstance(node, Present):
            return self._present(f"{self.alias}.doc", node.keys)
        if isinstance(node, Some):
            return self._some(node)
        if isinstance(node, Compare):
            return self._compare(node)
        raise TypeError(f"not a resolved filter node: {node!r}")  # pragma: no cover

    def _some(self, node: Some) -> str:
        source, correlation, element = self._collection(node.collection)
        outer, self._element = self._element, element
        try:
            condition = f" AND {self.condition(node.condition)}" if node.condition is not None else ""
        finally:
            self._element = outer
        return f"EXISTS (SELECT 1 FROM {source} WHERE {correlation}{condition})"

    def _collection(self, collection: Collection) -> tuple[str, str, _Element | None]:
        gm = self.membership_alias
        if collection.source == MEMBER_ID:
            return f"group_members {gm}", f"{gm}.group_id = {self.alias}.id", None
        if collection.source == GROUP_ID:
            return f"group_members {gm}", f"{gm}.user_id = {self.alias}.id", None
        if collection.source != DOCUMENT:  # pragma: no cover - resolved.py names no other
            raise ValueError(f"not a collection source: {collection.source!r}")
        e = self.fresh("e")
        arrays = []
        for column in ("doc", "doc_folded"):
            def value(column: str = column) -> str:
                return f"({self.alias}.{column} #> {self._param(list(collection.keys))})"
            # Not an array (absent, null, or bad data): no elements, rather than an error.
            arrays.append(f"jsonb_array_elements(CASE WHEN jsonb_typeof({value()}) = 'array' THEN {value()} END)")
        source = f"ROWS FROM ({arrays[0]}, {arrays[1]}) WITH ORDINALITY AS {e} (value, folded, n)"
        return source, f"jsonb_typeof({e}.value) = 'object'", _Element(f"{e}.value", f"{e}.folded")

    def _present(self, doc: str, keys: tuple[str, ...]) -> str:
        """RFC 7644 `pr` of a complex attribute: present with a value; null, "", [] and {} are absent."""
        def value() -> str:
            return f"({doc} #> {self._param(list(keys))})"
        return (f"coalesce(CASE coalesce(jsonb_typeof({value()}), 'null') WHEN 'null' THEN FALSE "
                f"WHEN 'string' THEN {value()} <> '\"\"'::jsonb WHEN 'array' THEN jsonb_array_length({value()}) > 0 "
                f"WHEN 'object' THEN {value()} <> '{{}}'::jsonb ELSE TRUE END, FALSE)")

    def _compare(self, node: Compare) -> str:
        operand = self.operand(node.value, folded=not node.value.case_exact)
        op = node.op
        if op == "absent":
            return f"(NOT {self._present_value(operand)})"
        if op == "pr":
            return self._present_value(operand)
        self.params.extend(operand.params)
        x = operand.expr
        value = node.operand
        if operand.boolean_as_int:
            value = int(bool(value))
        if op in ("eq", "ne"):
            if op == "eq" and operand.nullable and not operand.params:
                # Not IS NOT DISTINCT FROM, which no index answers (`externalId eq` scanned every user): `=`
                # is NULL on a NULL column, and NULL AND FALSE is FALSE, so this is never NULL either.
                return f"({x} = {self._param(value, operand)} AND {x} IS NOT NULL)"
            if operand.nullable:
                sql_op = "IS NOT DISTINCT FROM" if op == "eq" else "IS DISTINCT FROM"
            else:
                sql_op = "=" if op == "eq" else "<>"
            return f"({x} {sql_op} {self._param(value, operand)})"
        if op in _ORDER_OPS:
            comparison = f"{x} {_ORDER_OPS[op]} {self._param(value, operand)}"
            return f"coalesce({comparison}, FALSE)" if operand.nullable else f"({comparison})"
        if value == "":
            return f"({x} IS NOT NULL)"
        if op == "co":
            return f"coalesce(strpos({x}, {self._param(value)}) > 0, FALSE)"
        if op == "sw":
            return f"coalesce(starts_with({x}, {self._param(value)}), FALSE)"
        if op == "ew":
            return f"coalesce(right({x}, char_length({self._param(value)})) = {self._param(value)}, FALSE)"
        raise ValueError(f"not an operator: {op!r}")  # pragma: no cover

    def _present_value(self, operand: _Operand) -> str:
        self.params.extend(operand.params)
        if operand.type in _STRING_TYPES:
            return f"coalesce({operand.expr} <> '', FALSE)" if operand.nullable else f"({operand.expr} <> '')"
        return f"({operand.expr} IS NOT NULL)"

    # -- operands --------------------------------------------------------------------------------------
    def operand(self, value: Value, folded: bool) -> _Operand:
        """The SQL for `value`, its own parameters not yet added (the caller adds them where the text goes)."""
        folded = folded and value.type in _STRING_TYPES
        if value.source == FIELD:
            assert self.resource_type is not None
            column, holds_folded, not_null = _COLUMNS[(self.resource_type, value.keys[0])]
            if folded and not holds_folded:  # pragma: no cover - resolved.py marks such fields case-exact
                raise ValueError(f"{value.label} has no folded column")
            return _Operand(f"{self.alias}.{column}", (), value.type, not not_null,
                            boolean_as_int=value.type == "boolean")
        if value.source == CONSTANT:
            return _Operand("%s::text", (fold_case(value.keys[0]) if folded else value.keys[0],), "string", False)
        gm = self.membership_alias
        if value.source == MEMBER_ID:
            return _Operand(f"{gm}.user_id", (), "string", False)
        if value.source == GROUP_ID:
            return _Operand(f"{gm}.group_id", (), "string", False)
        if value.source == GROUP_NAME:
            g = self.fresh("g")
            return _Operand(f"(SELECT {g}.display_name_key FROM groups {g} WHERE {g}.id = {gm}.group_id)", (),
                            "string", True)
        if value.source == DOCUMENT:
            base = f"{self.alias}.doc_folded" if folded else f"{self.alias}.doc"
        elif value.source == ELEMENT:
            assert self._element is not None, "an ELEMENT value outside a Some"
            base = self._element.folded if folded else self._element.value
        else:  # pragma: no cover
            raise ValueError(f"not a value source: {value.source!r}")
        return self._json_scalar(base, value)

    @staticmethod
    def _json_scalar(base: str, value: Value) -> _Operand:
        path = list(value.keys)
        json = f"({base} #> %s::text[])"
        if value.type == "boolean":
            expr = f"(CASE WHEN jsonb_typeof({json}) = 'boolean' THEN ({json})::boolean END)"
            return _Operand(expr, (path, path), value.type, True)
        if value.type in _NUMBER_TYPES:
            expr = f"(CASE WHEN jsonb_typeof({json}) = 'number' THEN ({json})::double precision END)"
            return _Operand(expr, (path, path), value.type, True)
        # Text of a JSON string only: a number or an object where a string belongs is not that string.
        expr = f"(CASE WHEN jsonb_typeof({json}) = 'string' THEN {base} #>> %s::text[] END)"
        return _Operand(expr, (path, path), value.type, True)

    def _param(self, value: Any, operand: _Operand | None = None) -> str:
        self.params.append(value)
        if isinstance(value, list):
            return "%s::text[]"
        if operand is not None and operand.boolean_as_int:
            return "%s::integer"
        if isinstance(value, bool):
            return "%s::boolean"
        if isinstance(value, int | float) and not isinstance(value, bool):
            return "%s::double precision"
        return "%s::text"

    # -- sorting ---------------------------------------------------------------------------------------
    def sort_expression(self, key: SortKey) -> tuple[str, list[Any]]:
        """An expression to ORDER BY (NULL for a resource without a value), and its parameters."""
        start = len(self.params)
        if key.value is None:
            return "NULL", []
        folded = not key.value.case_exact
        if key.collection is None:
            operand = self.operand(key.value, folded)
            self.params.extend(operand.params)
            return operand.expr, self.params[start:]
        source, correlation, element = self._collection(key.collection)
        collection_params = self.params[start:]
        del self.params[start:]
        outer, self._element = self._element, element
        try:
            operand = self.operand(key.value, folded)
        finally:
            self._element = outer
        if element is None:  # memberships have no order of their own: the smallest value is the stable choice
            return f"(SELECT min({operand.expr}) FROM {source} WHERE {correlation})", [*operand.params,
                                                                                      *collection_params]
        primary = f"coalesce({element.value} -> 'primary' = 'true'::jsonb, FALSE)"
        e = element.value.rsplit(".", 1)[0]
        sql = (f"(SELECT {operand.expr} FROM {source} WHERE {correlation} "
               f"ORDER BY {primary} DESC, {e}.n LIMIT 1)")
        return sql, [*operand.params, *collection_params]


def compile_filter(resource_type: ResourceType, node: Node, alias: str = "r") -> tuple[str, list[Any]]:
    """A boolean SQL expression over a `users` / `groups` row aliased `alias`, never NULL, and its parameters."""
    compiler = Compiler(resource_type.name, alias)
    return compiler.condition(node), compiler.params


def compile_member_filter(node: Node, alias: str = "m") -> tuple[str, list[Any]]:
    """For PATCH `members[<filter>]`: a boolean SQL expression over a group_members row aliased `alias`."""
    compiler = Compiler(None, membership_alias=alias)
    return compiler.condition(node), compiler.params


def compile_sort(resource_type: ResourceType, key: SortKey, alias: str = "r") -> tuple[str, list[Any]]:
    """An expression to ORDER BY for a resolved sortBy (NULL when absent), and its parameters."""
    return Compiler(resource_type.name, alias).sort_expression(key)
