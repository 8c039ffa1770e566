"""Compile resolved queries (app/protocol/resolved.py) into parameterised SQLite expressions.

The storage layout this targets (schema.sql): a resource row aliased `r` with a few indexed columns
(ids, case-folded userName / Group displayName keys, timestamps) and a JSON `doc` holding every
client-writable attribute under its canonical name; memberships live in `group_members`.

Every expression produced here is 0 or 1, never NULL, so that `NOT` inverts it properly: SQL's
three-valued logic would otherwise drop users without a title from `not (title eq "x")`.
Values only ever travel as `?` parameters; the only identifiers spliced into SQL are canonical
attribute names from schema_defs (resolution put them in the tree), never the text the client wrote.
The tree is resolved already, so nothing here can fail on a client's input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.protocol import resolved as r
from app.protocol.folding import fold_case
from app.protocol.schema_defs import ResourceType

_STRING_TYPES = frozenset({"string", "reference", "binary"})
_ORDER_OPS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _json_path(*names: str) -> str:
    """`$."a"."b"` as an SQL literal. Names come from schema_defs only; quoting each key is what lets
    extension URNs (full of dots and colons) be keys at all."""
    for name in names:
        if '"' in name or "\\" in name:  # pragma: no cover - schema_defs never defines such a name
            raise ValueError(f"attribute name {name!r} cannot be used in a JSON path")
    return _literal("$" + "".join(f'."{name}"' for name in names))


@dataclass(frozen=True)
class _Operand:
    """A scalar SQL expression standing for one Value, and how to compare against it."""

    expr: str
    type: str = "string"
    case_exact: bool = False
    folded: bool = False  # expr already holds case-folded text (a *_key column or a folded constant)
    nullable: bool = True

    @property
    def compared(self) -> str:
        if self.type in _STRING_TYPES and not self.case_exact and not self.folded:
            return f"scim_fold({self.expr})"
        return self.expr


# The columns of resolved.FIELDS: (column, folded, nullable), by resource type and field name.
_COLUMNS: dict[tuple[str, str], tuple[str, bool, bool]] = {
    ("User", "id"): ("id", False, False),
    ("User", "externalId"): ("external_id", False, True),
    ("User", "userName"): ("user_name_key", True, False),
    ("User", "active"): ("active", False, False),
    ("User", "created"): ("created", False, False),
    ("User", "lastModified"): ("last_modified", False, False),
    ("Group", "id"): ("id", False, False),
    ("Group", "externalId"): ("external_id", False, True),
    ("Group", "displayName"): ("display_name_key", True, False),
    ("Group", "created"): ("created", False, False),
    ("Group", "lastModified"): ("last_modified", False, False),
}


@dataclass(frozen=True)
class _Rows:
    """The aliases of the collection element a Some is testing: a json_each row, or a group_members row."""

    element: str | None = None
    membership: str | None = None


@dataclass(frozen=True)
class _Source:
    """A collection as rows: `EXISTS (SELECT 1 FROM <source> WHERE <correlation> AND ...)`."""

    source: str
    correlation: str
    rows: _Rows


class _Compiler:
    def __init__(self, resource_type: ResourceType | None, alias: str) -> None:
        self.resource_type = resource_type
        self.alias = alias
        self.params: list[Any] = []
        self.aliases = 0

    def fresh(self, prefix: str) -> str:
        # Each EXISTS gets its own alias so that `emails[...] and emails[...]` never cross-correlate.
        self.aliases += 1
        return f"{prefix}{self.aliases}"

    def operand(self, value: r.Value, rows: _Rows | None) -> _Operand:
        source = value.source
        if source == r.FIELD:
            assert self.resource_type is not None
            column, folded, nullable = _COLUMNS[(self.resource_type.name, value.keys[0])]
            return _Operand(f"{self.alias}.{column}", value.type, value.case_exact, folded, nullable)
        if source == r.DOCUMENT:
            return _Operand(f"json_extract({self.alias}.doc, {_json_path(*value.keys)})", value.type,
                            value.case_exact)
        if source == r.CONSTANT:
            text = value.keys[0]
            return _Operand(_literal(text if value.case_exact else fold_case(text)), "string", value.case_exact,
                            folded=not value.case_exact, nullable=False)
        assert rows is not None, f"{source} outside the collection it belongs to"
        if source == r.ELEMENT:
            return _Operand(f"json_extract({rows.element}.value, {_json_path(*value.keys)})", value.type,
                            value.case_exact)
        gm = rows.membership
        if source == r.MEMBER_ID:
            return _Operand(f"{gm}.user_id", "string", case_exact=True, nullable=False)
        if source == r.GROUP_ID:
            return _Operand(f"{gm}.group_id", "string", case_exact=True, nullable=False)
        if source == r.GROUP_NAME:
            g = self.fresh("g")
            return _Operand(f"(SELECT {g}.display_name_key FROM groups {g} WHERE {g}.id = {gm}.group_id)",
                            "string", case_exact=False, folded=True)
        raise ValueError(f"unknown value source {source!r}")  # pragma: no cover

    def collection(self, collection: r.Collection) -> _Source:
        if collection.source == r.GROUP_ID:
            gm = self.fresh("gm")
            return _Source(f"group_members {gm}", f"{gm}.user_id = {self.alias}.id", _Rows(membership=gm))
        if collection.source == r.MEMBER_ID:
            gm = self.fresh("gm")
            return _Source(f"group_members {gm}", f"{gm}.group_id = {self.alias}.id", _Rows(membership=gm))
        element = self.fresh("e")
        source = f"json_each({self.alias}.doc, {_json_path(*collection.keys)}) AS {element}"
        # json_extract on a non-object element (bad data) would raise "malformed JSON"; skip those.
        return _Source(source, f"{element}.type = 'object'", _Rows(element=element))

    # -- filters -------------------------------------------------------------------------------
    # SQLite parses with a fixed stack of about 100 entries ("parser stack overflow" beyond it), and every
    # `x AND (` still open holds three. So the SQL is shaped to hold about one entry per level of the filter:
    # a chain `a and b and c` is one n-ary `(a AND b AND c)`, not `((a AND b) AND c)`; its deepest operand comes
    # first, where no `x AND` is pending; and `not` is pushed down to the comparisons (De Morgan; exact, since
    # every expression is 0 or 1) instead of wrapping each level in `NOT (`.
    def compile(self, node: r.Node, rows: _Rows | None = None) -> str:
        return self.emit(node, rows, negate=False)[0]

    def emit(self, node: r.Node, rows: _Rows | None, negate: bool) -> tuple[str, int]:
        """SQL for `node` (its negation when `negate`) and an estimate of the parser stack it holds."""
        if isinstance(node, r.All | r.AnyOf):
            conjunction = isinstance(node, r.All) != negate
            terms: list[tuple[int, str, list[Any]]] = []
            for term in node.terms:
                start = len(self.params)
                sql, cost = self.emit(term, rows, negate)
                terms.append((cost, sql, self.params[start:]))
                del self.params[start:]
            terms.sort(key=lambda term: -term[0])  # stable: operands of equal depth keep the order written
            for _, _, params in terms:
                self.params.extend(params)
            cost = max(1 + terms[0][0], 3 + terms[1][0]) if len(terms) > 1 else terms[0][0]
            return "(" + (" AND " if conjunction else " OR ").join(sql for _, sql, _ in terms) + ")", cost
        if isinstance(node, r.Not):
            return self.emit(node.inner, rows, not negate)
        if isinstance(node, r.Constant):
            return ("1" if node.truth != negate else "0"), 0
        if isinstance(node, r.Some):
            source = self.collection(node.collection)
            if node.condition is None:
                sql, cost = f"EXISTS (SELECT 1 FROM {source.source} WHERE {source.correlation})", 0
            else:
                # `not` cannot be pushed into EXISTS: "no value matches" is not "some value does not match".
                condition, inner = self.emit(node.condition, source.rows, negate=False)
                sql = f"EXISTS (SELECT 1 FROM {source.source} WHERE {source.correlation} AND {condition})"
                cost = inner + 8
            return (f"(NOT {sql})" if negate else sql), cost
        if isinstance(node, r.Present):
            sql = _json_present(f"{self.alias}.doc", _json_path(*node.keys))
            return (f"(NOT {sql})" if negate else sql), 0
        if isinstance(node, r.Compare):
            sql = self.leaf(self.operand(node.value, rows), node.op, node.operand)
            return (f"(NOT {sql})" if negate else sql), 0
        raise TypeError(f"not a resolved filter node: {node!r}")  # pragma: no cover

    # -- leaves --------------------------------------------------------------------------------
    def leaf(self, operand: _Operand, op: str, param: Any) -> str:
        if op == "absent":
            return f"(NOT {self.leaf(operand, 'pr', None)})"
        if op == "pr":
            x = operand.expr
            if operand.type in _STRING_TYPES:
                return f"coalesce({x} <> '', 0)" if operand.nullable else f"({x} <> '')"
            return f"({x} IS NOT NULL)"
        if isinstance(param, bool):
            param = int(param)  # JSON true/false and the active column read as 1/0
        x = operand.compared
        nullable = operand.nullable or x != operand.expr
        if op in ("eq", "ne"):
            # `IS` / `IS NOT` are NULL-safe (ne is true when the attribute is absent); plain `=` on NOT NULL
            # columns keeps `userName eq` and `members.value eq` on their indexes.
            sql_op = {"eq": ("IS", "="), "ne": ("IS NOT", "<>")}[op][0 if nullable else 1]
            self.params.append(param)
            return f"({x} {sql_op} ?)"
        if op in _ORDER_OPS:
            self.params.append(param)
            comparison = f"{x} {_ORDER_OPS[op]} ?"
            return f"coalesce({comparison}, 0)" if nullable else f"({comparison})"
        # co/sw/ew use instr/substr: LIKE is ASCII-only case-insensitive and treats % and _ as wildcards.
        if param == "":
            return f"({x} IS NOT NULL)"
        if op == "co":
            self.params.append(param)
            return f"coalesce(instr({x}, ?) > 0, 0)"
        self.params.extend([param, param])
        if op == "sw":
            return f"coalesce(substr({x}, 1, length(?)) = ?, 0)"
        return f"coalesce(substr({x}, -length(?)) = ?, 0)"

    def sort(self, key: r.SortKey) -> str:
        if key.value is None:
            return "NULL"  # absent from every resource of the type: sorted last, as absent values are
        if key.collection is None:
            return self.operand(key.value, None).compared
        source = self.collection(key.collection)
        expr = self.operand(key.value, source.rows).compared
        if source.rows.element is not None:
            element = source.rows.element
            order = f"coalesce(json_extract({element}.value, {_json_path('primary')}), 0) = 1 DESC, {element}.key"
            return f"(SELECT {expr} FROM {source.source} WHERE {source.correlation} ORDER BY {order} LIMIT 1)"
        # Memberships have no primary or order of their own: the smallest value is the stable choice.
        return f"(SELECT min({expr}) FROM {source.source} WHERE {source.correlation})"


def _json_present(doc: str, path: str) -> str:
    """RFC 7644 §3.4.2.2 `pr`: present with a non-empty value; null, "", [] and {} are absent."""
    return (f"(CASE coalesce(json_type({doc}, {path}), 'null') WHEN 'null' THEN 0 "
            f"WHEN 'text' THEN json_extract({doc}, {path}) <> '' "
            f"WHEN 'array' THEN json_array_length({doc}, {path}) > 0 "
            f"WHEN 'object' THEN json_extract({doc}, {path}) <> '{{}}' ELSE 1 END)")


def compile_filter(resource_type: ResourceType, node: r.Node, alias: str = "r") -> tuple[str, list[Any]]:
    """SQL boolean expression over a resource row aliased `alias` that is never NULL (0/1), plus its '?' params."""
    compiler = _Compiler(resource_type, alias)
    return compiler.compile(node), compiler.params


def compile_member_filter(node: r.Node, alias: str = "m") -> tuple[str, list[Any]]:
    """For PATCH `members[<filter>]`: a boolean SQL expression over a group_members row aliased `alias`."""
    compiler = _Compiler(None, alias)
    return compiler.compile(node, _Rows(membership=alias)), compiler.params


def compile_sort(resource_type: ResourceType, key: r.SortKey, alias: str = "r") -> str:
    """SQL expression to ORDER BY for a sort key (RFC 7644 §3.4.2.3): case-insensitive strings by their folded
    form, a multi-valued attribute by its primary (else first) value. Direction and NULLS LAST are the caller's."""
    return _Compiler(resource_type, alias).sort(key)
