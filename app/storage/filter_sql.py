"""Compile SCIM filters (RFC 7644 §3.4.2.2) and sortBy paths into parameterised SQLite expressions.

The storage layout this targets (schema.sql): a resource row aliased `r` with a few indexed columns
(ids, case-folded userName / Group displayName keys, timestamps) and a JSON `doc` holding every
client-writable attribute under its canonical name; memberships live in `group_members`.

Every expression produced here is 0 or 1, never NULL, so that `NOT` inverts it properly: SQL's
three-valued logic would otherwise drop users without a title from `not (title eq "x")`.
Values only ever travel as `?` parameters; the only identifiers spliced into SQL are canonical
attribute names taken from schema_defs, never the text the client wrote.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.protocol.errors import ScimError, invalid_filter, invalid_value
from app.protocol.filters import And, AttrPath, Compare, Filter, Not, Or, ValuePath, operands, parse_attr_path
from app.protocol.folding import fold_case
from app.protocol.schema_defs import (
    GROUP_RESOURCE,
    GROUP_SCHEMA,
    USER_SCHEMA,
    Attribute,
    ResolvedAttribute,
    ResourceType,
    resolve,
)
from app.protocol.timestamps import parse_datetime

_STRING_TYPES = frozenset({"string", "reference", "binary"})
_NUMBER_TYPES = frozenset({"integer", "decimal"})
_ORDER_OPS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_SUBSTRING_OPS = frozenset({"co", "sw", "ew"})


def fold(value: Any) -> Any:
    """SQL `scim_fold(x)`: the one case rule (app.protocol.folding), which SQLite's lower() and NOCASE lack."""
    return fold_case(value) if isinstance(value, str) else value


def register_functions(conn: sqlite3.Connection) -> None:
    """Register the SQL functions compiled filters call on a plain sqlite3 connection."""
    conn.create_function("scim_fold", 1, fold, deterministic=True)


def _parse_datetime(label: str, value: Any) -> str:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is not None:
        return parsed
    raise invalid_filter(f"{label} is a dateTime; {value!r} is not an xsd:dateTime such as "
                         f"\"2011-05-13T04:42:34Z\" or \"2011-05-13T06:42:34+02:00\".")


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
    """A scalar SQL expression standing for one (sub-)attribute, and how to compare against it."""

    expr: str
    label: str
    type: str = "string"
    case_exact: bool = False
    folded: bool = False  # expr already holds case-folded text (a *_key column or a folded constant)
    nullable: bool = True

    @classmethod
    def of(cls, expr: str, label: str, attr: Attribute, **overrides: Any) -> _Operand:
        return cls(expr, label, attr.type, attr.case_exact, **overrides)

    @property
    def compared(self) -> str:
        if self.type in _STRING_TYPES and not self.case_exact and not self.folded:
            return f"scim_fold({self.expr})"
        return self.expr


def _constant(text: str, label: str, case_exact: bool) -> _Operand:
    return _Operand(_literal(text if case_exact else fold_case(text)), label, "string", case_exact,
                    folded=not case_exact, nullable=False)


@dataclass(frozen=True)
class _Scope:
    """Where the sub-attributes of one complex attribute (or of one of its values) come from."""

    label: str
    parent: Attribute
    operand: Callable[[Attribute], _Operand]
    schema_id: str | None = None


@dataclass(frozen=True)
class _Collection:
    """A multi-valued attribute as rows: `EXISTS (SELECT 1 FROM <source> WHERE <correlation> AND ...)`."""

    source: str
    correlation: str
    scope: _Scope


def _reject_hidden(label: str, attr: Attribute) -> None:
    if attr.returned == "never" or attr.mutability == "writeOnly":
        raise invalid_filter(f"{label} is write-only and never returned, so it cannot be filtered or sorted on.")


def _meta_operand(resource_type: ResourceType, alias: str, sub: Attribute, error: Callable[[str], ScimError]
                  ) -> _Operand:
    label = f"meta.{sub.name}"
    if sub.name == "created":
        return _Operand.of(f"{alias}.created", label, sub, nullable=False)
    if sub.name == "lastModified":
        return _Operand.of(f"{alias}.last_modified", label, sub, nullable=False)
    if sub.name == "resourceType":
        return _constant(resource_type.name, label, sub.case_exact)
    raise error(f"{label} cannot be filtered or sorted on; use meta.created, meta.lastModified or "
                f"meta.resourceType.")


# Attributes with a column of their own, so that `userName eq` and friends can use an index.
# Keyed by (resource type, schema id or None for the common attributes, canonical name).
_COLUMNS: dict[tuple[str, str | None, str], tuple[str, dict[str, Any]]] = {
    ("User", None, "id"): ("id", {"nullable": False}),
    ("User", None, "externalId"): ("external_id", {}),
    ("User", USER_SCHEMA, "userName"): ("user_name_key", {"folded": True, "nullable": False}),
    ("User", USER_SCHEMA, "active"): ("active", {"nullable": False}),
    ("Group", None, "id"): ("id", {"nullable": False}),
    ("Group", None, "externalId"): ("external_id", {}),
    ("Group", GROUP_SCHEMA, "displayName"): ("display_name_key", {"folded": True, "nullable": False}),
}


class _Compiler:
    def __init__(self, resource_type: ResourceType | None, alias: str,
                 error: Callable[[str], ScimError] = invalid_filter, absent_unknown: bool = False) -> None:
        self.resource_type = resource_type
        self.alias = alias
        self.error = error
        self.absent_unknown = absent_unknown
        self.params: list[Any] = []
        self.aliases = 0

    def fresh(self, prefix: str) -> str:
        # Each EXISTS gets its own alias so that `emails[...] and emails[...]` never cross-correlate.
        self.aliases += 1
        return f"{prefix}{self.aliases}"

    # -- resolution ----------------------------------------------------------------------------
    def lacks(self, path: AttrPath) -> bool:
        """With `absent_unknown`: whether the resource type has no attribute `path` names at all. A search across
        types (POST /.search) treats such an attribute as absent from that type's resources (`pr` false, a
        comparison false, sorted last) rather than failing the type: a Group simply has no userName."""
        rt = self.resource_type
        if not self.absent_unknown or rt is None or resolve(rt, path.uri, path.name) is not None:
            return False
        return not (path.uri is not None and path.uri.lower() == rt.schema.id.lower()
                    and resolve(rt, None, path.name) is not None)

    def resolve(self, path: AttrPath) -> ResolvedAttribute:
        assert self.resource_type is not None
        resolved = resolve(self.resource_type, path.uri, path.name, path.sub)
        if resolved is None and path.uri is not None and path.uri.lower() == self.resource_type.schema.id.lower():
            # `urn:...:core:2.0:User:id`: common attributes qualified by the core schema's URN.
            resolved = resolve(self.resource_type, None, path.name, path.sub)
        if resolved is None:
            parent = resolve(self.resource_type, path.uri, path.name) if path.sub else None
            if parent is not None:
                subs = ", ".join(s.name for s in parent.attribute.sub_attributes) or "none"
                raise self.error(f"{parent.attribute.name} has no sub-attribute {path.sub!r} "
                                 f"(its sub-attributes are: {subs}).")
            raise self.error(f"Unknown attribute {str(path)!r} for the {self.resource_type.name} resource type.")
        label = self.label(resolved)
        _reject_hidden(label, resolved.attribute)
        if resolved.sub_attribute is not None:
            _reject_hidden(label, resolved.sub_attribute)
        return resolved

    def label(self, resolved: ResolvedAttribute) -> str:
        """How error details name the attribute: URN-qualified only for extension attributes."""
        name = resolved.attribute.name
        if resolved.sub_attribute is not None:
            name = f"{name}.{resolved.sub_attribute.name}"
        core = self.resource_type.schema.id if self.resource_type is not None else None
        if resolved.schema_id is not None and resolved.schema_id != core:
            return f"{resolved.schema_id}:{name}"
        return name

    def doc_keys(self, resolved: ResolvedAttribute) -> tuple[str, ...]:
        assert self.resource_type is not None
        if resolved.schema_id is not None and resolved.schema_id != self.resource_type.schema.id:
            return (resolved.schema_id, resolved.attribute.name)
        return (resolved.attribute.name,)

    def single_operand(self, resolved: ResolvedAttribute) -> _Operand:
        """The operand of a single-valued simple attribute or a sub-attribute of a single-valued complex one."""
        assert self.resource_type is not None
        attr, sub = resolved.attribute, resolved.sub_attribute
        label = self.label(resolved)
        if attr.name == "meta" and resolved.schema_id is None:
            assert sub is not None
            return _meta_operand(self.resource_type, self.alias, sub, self.error)
        column = _COLUMNS.get((self.resource_type.name, resolved.schema_id, attr.name)) if sub is None else None
        if column is not None:
            name, overrides = column
            return _Operand.of(f"{self.alias}.{name}", label, attr, **overrides)
        keys = self.doc_keys(resolved) + ((sub.name,) if sub is not None else ())
        return _Operand.of(f"json_extract({self.alias}.doc, {_json_path(*keys)})", label, sub or attr)

    def object_scope(self, resolved: ResolvedAttribute) -> _Scope:
        """Sub-attributes of a single-valued complex attribute, for `name[givenName eq "x"]`."""

        def operand(sub: Attribute) -> _Operand:
            return self.single_operand(ResolvedAttribute(resolved.schema_id, resolved.attribute, sub))

        return _Scope(self.label(resolved), resolved.attribute, operand, resolved.schema_id)

    def is_membership(self, resolved: ResolvedAttribute, resource_type: str, name: str) -> bool:
        """User.groups and Group.members live in group_members, not in doc."""
        rt = self.resource_type
        return (rt is not None and rt.name == resource_type and resolved.schema_id == rt.schema.id
                and resolved.attribute.name == name)

    def collection(self, resolved: ResolvedAttribute) -> _Collection:
        assert self.resource_type is not None
        attr = resolved.attribute
        label = self.label(resolved)
        if not attr.is_complex:  # pragma: no cover - every multi-valued attribute in schema_defs is complex
            raise self.error(f"Filtering on the simple multi-valued attribute {label} is not supported.")
        if self.is_membership(resolved, "User", "groups"):
            gm = self.fresh("gm")
            return _Collection(f"group_members {gm}", f"{gm}.user_id = {self.alias}.id",
                               _groups_scope(gm, self.fresh("g"), attr, self.error))
        if self.is_membership(resolved, "Group", "members"):
            gm = self.fresh("gm")
            return _Collection(f"group_members {gm}", f"{gm}.group_id = {self.alias}.id",
                               members_scope(gm, self.fresh("u"), attr, self.error))
        element = self.fresh("e")

        def operand(sub: Attribute) -> _Operand:
            return _Operand.of(f"json_extract({element}.value, {_json_path(sub.name)})", f"{label}.{sub.name}", sub)

        source = f"json_each({self.alias}.doc, {_json_path(*self.doc_keys(resolved))}) AS {element}"
        # json_extract on a non-object element (bad data) would raise "malformed JSON"; skip those.
        return _Collection(source, f"{element}.type = 'object'", _Scope(label, attr, operand, resolved.schema_id))

    # -- filters -------------------------------------------------------------------------------
    # SQLite parses with a fixed stack of about 100 entries ("parser stack overflow" beyond it), and every
    # `x AND (` still open holds three. So the SQL is shaped to hold about one entry per level of the filter:
    # a chain `a and b and c` is one n-ary `(a AND b AND c)`, not `((a AND b) AND c)`; its deepest operand comes
    # first, where no `x AND` is pending; and `not` is pushed down to the comparisons (De Morgan; exact, since
    # every expression is 0 or 1) instead of wrapping each level in `NOT (`.
    def compile(self, node: Filter, scope: _Scope | None = None) -> str:
        return self.emit(node, scope, negate=False)[0]

    def emit(self, node: Filter, scope: _Scope | None, negate: bool) -> tuple[str, int]:
        """SQL for `node` (its negation when `negate`) and an estimate of the parser stack it holds."""
        if isinstance(node, And | Or):
            conjunction = isinstance(node, And) != negate
            terms: list[tuple[int, str, list[Any]]] = []
            for term in operands(node):
                start = len(self.params)
                sql, cost = self.emit(term, scope, negate)
                terms.append((cost, sql, self.params[start:]))
                del self.params[start:]
            terms.sort(key=lambda term: -term[0])  # stable: operands of equal depth keep the order written
            for _, _, params in terms:
                self.params.extend(params)
            cost = max(1 + terms[0][0], 3 + terms[1][0]) if len(terms) > 1 else terms[0][0]
            return "(" + (" AND " if conjunction else " OR ").join(sql for _, sql, _ in terms) + ")", cost
        if isinstance(node, Not):
            return self.emit(node.inner, scope, not negate)
        if isinstance(node, ValuePath | Compare) and scope is None and self.lacks(node.path):
            return ("1" if negate else "0"), 0
        if isinstance(node, ValuePath):
            if scope is not None:
                raise self.error(f"A value filter cannot be nested inside {scope.label}[...].")
            return self.value_path(node, negate)
        if isinstance(node, Compare):
            sql = self.scoped_compare(node, scope) if scope is not None else self.compare(node)
            return (f"(NOT {sql})" if negate else sql), 0
        raise TypeError(f"not a filter node: {node!r}")  # pragma: no cover

    def value_path(self, node: ValuePath, negate: bool) -> tuple[str, int]:
        resolved = self.resolve(node.path)
        label = self.label(resolved)
        attr = resolved.attribute
        if not attr.is_complex or resolved.sub_attribute is not None:
            raise self.error(f"{label}[...] needs a complex attribute such as emails; {label} is a {attr.type}.")
        if attr.name == "meta" and resolved.schema_id is None:
            assert self.resource_type is not None
            rt, alias, error = self.resource_type, self.alias, self.error
            scope = _Scope("meta", attr, lambda sub: _meta_operand(rt, alias, sub, error))
            return self.emit(node.filter, scope, negate)
        if not attr.multi_valued:
            return self.emit(node.filter, self.object_scope(resolved), negate)
        collection = self.collection(resolved)
        # `not` cannot be pushed into EXISTS: "no value matches" is not "some value does not match".
        condition, cost = self.emit(node.filter, collection.scope, negate=False)
        sql = self.exists(collection, condition)
        return (f"(NOT {sql})" if negate else sql), cost + 8

    @staticmethod
    def exists(collection: _Collection, condition: str) -> str:
        return f"EXISTS (SELECT 1 FROM {collection.source} WHERE {collection.correlation} AND {condition})"

    def compare(self, node: Compare) -> str:
        resolved = self.resolve(node.path)
        attr, sub = resolved.attribute, resolved.sub_attribute
        label = self.label(resolved)
        op, value = self.normalise_null(node, label)
        if attr.multi_valued:
            if sub is None and op == "pr":
                return self.collection_present(resolved)
            if sub is None:
                sub = attr.sub("value")
                if sub is None:
                    raise self.error(f"{label} is a multi-valued complex attribute without a 'value' "
                                     f"sub-attribute; filter on one of its sub-attributes, e.g. "
                                     f"{label}.{attr.sub_attributes[0].name}, or use {label}[...].")
            collection = self.collection(resolved)
            if op == "ne":
                # RFC 7644 §3.4.2.2: a multi-valued attribute matches `eq` when any value does, so `ne`
                # is the negation of that, not "some value differs".
                return f"(NOT {self.exists(collection, self.leaf(collection.scope.operand(sub), 'eq', value))})"
            return self.exists(collection, self.leaf(collection.scope.operand(sub), op, value))
        if attr.is_complex and sub is None:
            if op == "pr":
                if attr.name == "meta" and resolved.schema_id is None:
                    return "1"
                return _json_present(f"{self.alias}.doc", _json_path(*self.doc_keys(resolved)))
            example = f"{label}.{attr.sub_attributes[0].name}" if attr.sub_attributes else label
            raise self.error(f"{label} is a complex attribute; compare one of its sub-attributes instead, "
                             f"e.g. {example}.")
        return self.leaf(self.single_operand(resolved), op, value)

    def scoped_compare(self, node: Compare, scope: _Scope) -> str:
        path = node.path
        sub_name = path.name
        if path.sub is not None:
            # `emails[emails.type eq "work"]`: tolerated when the prefix repeats the enclosing attribute.
            if path.name.lower() != scope.parent.name.lower():
                raise self.error(f"Inside {scope.label}[...] attribute paths name sub-attributes of "
                                 f"{scope.label}; {str(path)!r} does not.")
            sub_name = path.sub
        if path.uri is not None and (scope.schema_id is None or path.uri.lower() != scope.schema_id.lower()):
            raise self.error(f"Inside {scope.label}[...] attribute paths name sub-attributes of "
                             f"{scope.label}; {str(path)!r} does not.")
        sub = scope.parent.sub(sub_name)
        if sub is None:
            subs = ", ".join(s.name for s in scope.parent.sub_attributes)
            raise self.error(f"{scope.label} has no sub-attribute {sub_name!r} (its sub-attributes are: {subs}).")
        label = f"{scope.label}.{sub.name}"
        _reject_hidden(label, sub)
        op, value = self.normalise_null(node, label)
        return self.leaf(scope.operand(sub), op, value)

    def normalise_null(self, node: Compare, label: str) -> tuple[str, Any]:
        if node.op != "pr" and node.value is None:
            # RFC 7643 §2.5: null and absent are the same thing, so `eq null` asks for absence.
            if node.op == "eq":
                return "absent", None
            if node.op == "ne":
                return "pr", None
            raise self.error(f"{label} {node.op} null is meaningless; only eq null and ne null are allowed.")
        return node.op, node.value

    def collection_present(self, resolved: ResolvedAttribute) -> str:
        if self.is_membership(resolved, "User", "groups") or self.is_membership(resolved, "Group", "members"):
            collection = self.collection(resolved)
            return f"EXISTS (SELECT 1 FROM {collection.source} WHERE {collection.correlation})"
        return _json_present(f"{self.alias}.doc", _json_path(*self.doc_keys(resolved)))

    # -- leaves --------------------------------------------------------------------------------
    def leaf(self, operand: _Operand, op: str, value: Any) -> str:
        if op == "absent":
            return f"(NOT {self.leaf(operand, 'pr', None)})"
        if op == "pr":
            x = operand.expr
            if operand.type in _STRING_TYPES:
                return f"coalesce({x} <> '', 0)" if operand.nullable else f"({x} <> '')"
            return f"({x} IS NOT NULL)"
        param = self.coerce(operand, op, value)
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

    def coerce(self, operand: _Operand, op: str, value: Any) -> Any:
        label, kind = operand.label, operand.type
        if kind == "boolean":
            if op not in ("eq", "ne"):
                raise self.error(f"{label} is a boolean; '{op}' is not defined for booleans (use eq, ne or pr).")
            if isinstance(value, bool):
                return int(value)
            if isinstance(value, str) and value.strip().lower() in ("true", "false"):
                return int(value.strip().lower() == "true")
            raise self.error(f"{label} is a boolean; compare it with true or false, not {value!r}.")
        if kind in _NUMBER_TYPES:
            if op in _SUBSTRING_OPS:
                raise self.error(f"{label} is a number; '{op}' applies to strings (use eq, ne, gt, ge, lt or le).")
            if isinstance(value, bool):
                raise self.error(f"{label} is a number; compare it with a number, not {value!r}.")
            if isinstance(value, int | float):
                return value
            try:
                return int(value) if kind == "integer" else float(value)
            except (TypeError, ValueError):
                raise self.error(f"{label} is a number; compare it with a number, not {value!r}.") from None
        if kind == "dateTime":
            if op in _SUBSTRING_OPS:
                raise self.error(f"{label} is a dateTime; '{op}' is not defined for dates "
                                 f"(use eq, ne, gt, ge, lt or le).")
            return _parse_datetime(label, value)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(f"{label} is a string; compare it with a quoted string, not {value!r}.")
        text = value if isinstance(value, str) else str(value)
        return text if operand.case_exact else fold_case(text)


def _json_present(doc: str, path: str) -> str:
    """RFC 7644 §3.4.2.2 `pr`: present with a non-empty value; null, "", [] and {} are absent."""
    return (f"(CASE coalesce(json_type({doc}, {path}), 'null') WHEN 'null' THEN 0 "
            f"WHEN 'text' THEN json_extract({doc}, {path}) <> '' "
            f"WHEN 'array' THEN json_array_length({doc}, {path}) > 0 "
            f"WHEN 'object' THEN json_extract({doc}, {path}) <> '{{}}' ELSE 1 END)")


def _groups_scope(gm: str, g: str, attr: Attribute, error: Callable[[str], ScimError]) -> _Scope:
    """User.groups is derived from group_members; `type` is always "direct" (no nested groups)."""

    def operand(sub: Attribute) -> _Operand:
        label = f"groups.{sub.name}"
        if sub.name == "value":
            return _Operand(f"{gm}.group_id", label, "string", case_exact=True, nullable=False)
        if sub.name == "display":
            return _Operand(f"(SELECT {g}.display_name_key FROM groups {g} WHERE {g}.id = {gm}.group_id)", label,
                            "string", case_exact=False, folded=True)
        if sub.name == "type":
            return _constant("direct", label, sub.case_exact)
        raise error(f"{label} cannot be filtered on; use groups.value (the group id) or groups.display.")

    return _Scope("groups", attr, operand)


def members_scope(gm: str, u: str, attr: Attribute | None = None,
                  error: Callable[[str], ScimError] = invalid_filter) -> _Scope:
    """Group.members over a group_members row aliased `gm`; `u` aliases the member's users row."""
    if attr is None:
        attr = GROUP_RESOURCE.schema.attribute("members")
        assert attr is not None

    def operand(sub: Attribute) -> _Operand:
        label = f"members.{sub.name}"
        if sub.name == "value":
            return _Operand(f"{gm}.user_id", label, "string", case_exact=True, nullable=False)
        if sub.name == "type":
            return _constant("User", label, sub.case_exact)
        raise error(f"{label} cannot be filtered on; use members.value (the user id).")

    return _Scope("members", attr, operand)


def compile_filter(resource_type: ResourceType, node: Filter, alias: str = "r", absent_unknown: bool = False
                   ) -> tuple[str, list[Any]]:
    """SQL boolean expression that is never NULL (0/1), plus its positional '?' params.

    Raises a 400 invalidFilter ScimError for anything it cannot evaluate faithfully (unknown or
    write-only attributes, a complex attribute compared as a whole, ordering on booleans, bad dates).
    With `absent_unknown`, an attribute the type does not have is absent instead of unknown (_Compiler.lacks).
    """
    compiler = _Compiler(resource_type, alias, absent_unknown=absent_unknown)
    return compiler.compile(node), compiler.params


def compile_member_filter(node: Filter, group_alias: str = "m") -> tuple[str, list[Any]]:
    """For PATCH `members[<filter>]`: a boolean SQL expression over a group_members row aliased `group_alias`."""
    compiler = _Compiler(None, group_alias)
    scope = members_scope(group_alias, f"{group_alias}_u", error=invalid_filter)
    return compiler.compile(node, scope), compiler.params


def compile_sort(resource_type: ResourceType, sort_by: str, alias: str = "r", absent_unknown: bool = False) -> str:
    """SQL expression to ORDER BY for a `sortBy` attribute path (RFC 7644 §3.4.2.3).

    Case-insensitive strings sort by their folded form; a multi-valued attribute sorts by its primary
    (else first) value. Direction and NULLS LAST are the caller's. Raises a 400 invalidValue ScimError
    for unknown or unsortable attributes.
    """
    path = parse_attr_path(sort_by.strip())
    if path is None:
        raise invalid_value(f"sortBy {sort_by!r} is not an attribute path such as 'userName' or 'name.familyName'.")
    compiler = _Compiler(resource_type, alias, error=invalid_value, absent_unknown=absent_unknown)
    if compiler.lacks(path):
        return "NULL"  # absent from every resource of the type: sorted last, as absent values are
    try:
        resolved = compiler.resolve(path)
    except ScimError as exc:
        raise invalid_value(f"Cannot sort by {sort_by!r}: {exc.detail}") from None
    attr, sub = resolved.attribute, resolved.sub_attribute
    label = compiler.label(resolved)
    if attr.multi_valued:
        if sub is None:
            sub = attr.sub("value")
            if sub is None:
                raise invalid_value(f"Cannot sort by {label}: name one of its sub-attributes, "
                                    f"e.g. {label}.{attr.sub_attributes[0].name}.")
        collection = compiler.collection(resolved)
        expr = collection.scope.operand(sub).compared
        primary = attr.sub("primary")
        if collection.source.startswith("json_each"):
            element = collection.source.rsplit(" ", 1)[1]
            order = f"{element}.key"
            if primary is not None:
                order = f"coalesce(json_extract({element}.value, {_json_path(primary.name)}), 0) = 1 DESC, {order}"
            return (f"(SELECT {expr} FROM {collection.source} WHERE {collection.correlation} "
                    f"ORDER BY {order} LIMIT 1)")
        # Memberships have no primary or order of their own: the smallest value is the stable choice.
        return f"(SELECT min({expr}) FROM {collection.source} WHERE {collection.correlation})"
    if attr.is_complex and sub is None:
        example = f"{label}.{attr.sub_attributes[0].name}" if attr.sub_attributes else label
        raise invalid_value(f"Cannot sort by {label}: it is a complex attribute; sort by a sub-attribute, "
                            f"e.g. {example}.")
    return compiler.single_operand(resolved).compared

