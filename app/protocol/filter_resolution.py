"""Resolve a parsed filter or sortBy against a resource type's schema (app/protocol/resolved.py says into what).

Every SCIM error a filter or a sort order can cause is raised here, before storage sees the query: an unknown
attribute or sub-attribute, a write-only one, a complex attribute compared as a whole, an operator its type does
not define, a value of the wrong type, a date that is no xsd:dateTime. Only canonical names from schema_defs reach
the tree, never the text the client wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.protocol import resolved as r
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

_NUMBER_TYPES = frozenset({"integer", "decimal"})
_SUBSTRING_OPS = frozenset({"co", "sw", "ew"})

# The attributes with a place of their own beside the document (resolved.FIELDS), by (resource type, schema id or
# None for the common attributes, canonical name).
_FIELDS: dict[tuple[str, str | None, str], str] = {
    ("User", None, "id"): "id",
    ("User", None, "externalId"): "externalId",
    ("User", USER_SCHEMA, "userName"): "userName",
    ("User", USER_SCHEMA, "active"): "active",
    ("Group", None, "id"): "id",
    ("Group", None, "externalId"): "externalId",
    ("Group", GROUP_SCHEMA, "displayName"): "displayName",
}


def _value(source: str, keys: tuple[str, ...], label: str, attr: Attribute) -> r.Value:
    return r.Value(source, keys, label, attr.type, attr.case_exact)


def _constant(text: str, label: str, case_exact: bool) -> r.Value:
    return r.Value(r.CONSTANT, (text,), label, "string", case_exact)


@dataclass(frozen=True)
class _Scope:
    """Where the sub-attributes of one complex attribute (or of each value of a multi-valued one) come from."""

    label: str
    parent: Attribute
    value: Callable[[Attribute], r.Value]
    schema_id: str | None = None


def _reject_hidden(label: str, attr: Attribute) -> None:
    if attr.returned == "never" or attr.mutability == "writeOnly":
        raise invalid_filter(f"{label} is write-only and never returned, so it cannot be filtered or sorted on.")


def _meta_value(resource_type: ResourceType, sub: Attribute, error: Callable[[str], ScimError]) -> r.Value:
    label = f"meta.{sub.name}"
    if sub.name in ("created", "lastModified"):
        return _value(r.FIELD, (sub.name,), label, sub)
    if sub.name == "resourceType":
        return _constant(resource_type.name, label, sub.case_exact)
    raise error(f"{label} cannot be filtered or sorted on; use meta.created, meta.lastModified or "
                f"meta.resourceType.")


def _groups_scope(attr: Attribute, error: Callable[[str], ScimError]) -> _Scope:
    """User.groups is derived from the memberships; `type` is always "direct" (no nested groups)."""

    def value(sub: Attribute) -> r.Value:
        label = f"groups.{sub.name}"
        if sub.name == "value":
            return r.Value(r.GROUP_ID, (), label, "string", case_exact=True)
        if sub.name == "display":
            return r.Value(r.GROUP_NAME, (), label, "string", case_exact=False)
        if sub.name == "type":
            return _constant("direct", label, sub.case_exact)
        raise error(f"{label} cannot be filtered on; use groups.value (the group id) or groups.display.")

    return _Scope("groups", attr, value)


def _members_scope(attr: Attribute | None = None, error: Callable[[str], ScimError] = invalid_filter) -> _Scope:
    """Group.members, from the memberships: `value` is the member's user id."""
    if attr is None:
        attr = GROUP_RESOURCE.schema.attribute("members")
        assert attr is not None

    def value(sub: Attribute) -> r.Value:
        label = f"members.{sub.name}"
        if sub.name == "value":
            return r.Value(r.MEMBER_ID, (), label, "string", case_exact=True)
        if sub.name == "type":
            return _constant("User", label, sub.case_exact)
        raise error(f"{label} cannot be filtered on; use members.value (the user id).")

    return _Scope("members", attr, value)


class _Resolver:
    def __init__(self, resource_type: ResourceType | None, error: Callable[[str], ScimError] = invalid_filter,
                 absent_unknown: bool = False) -> None:
        self.resource_type = resource_type
        self.error = error
        self.absent_unknown = absent_unknown

    # -- attribute paths -----------------------------------------------------------------------
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
        found = resolve(self.resource_type, path.uri, path.name, path.sub)
        if found is None and path.uri is not None and path.uri.lower() == self.resource_type.schema.id.lower():
            # `urn:...:core:2.0:User:id`: common attributes qualified by the core schema's URN.
            found = resolve(self.resource_type, None, path.name, path.sub)
        if found is None:
            parent = resolve(self.resource_type, path.uri, path.name) if path.sub else None
            if parent is not None:
                subs = ", ".join(s.name for s in parent.attribute.sub_attributes) or "none"
                raise self.error(f"{parent.attribute.name} has no sub-attribute {path.sub!r} "
                                 f"(its sub-attributes are: {subs}).")
            raise self.error(f"Unknown attribute {str(path)!r} for the {self.resource_type.name} resource type.")
        label = self.label(found)
        _reject_hidden(label, found.attribute)
        if found.sub_attribute is not None:
            _reject_hidden(label, found.sub_attribute)
        return found

    def label(self, found: ResolvedAttribute) -> str:
        """How error details name the attribute: URN-qualified only for extension attributes."""
        name = found.attribute.name
        if found.sub_attribute is not None:
            name = f"{name}.{found.sub_attribute.name}"
        core = self.resource_type.schema.id if self.resource_type is not None else None
        if found.schema_id is not None and found.schema_id != core:
            return f"{found.schema_id}:{name}"
        return name

    def doc_keys(self, found: ResolvedAttribute) -> tuple[str, ...]:
        assert self.resource_type is not None
        if found.schema_id is not None and found.schema_id != self.resource_type.schema.id:
            return (found.schema_id, found.attribute.name)
        return (found.attribute.name,)

    def single_value(self, found: ResolvedAttribute) -> r.Value:
        """A single-valued simple attribute, or a sub-attribute of a single-valued complex one."""
        assert self.resource_type is not None
        attr, sub = found.attribute, found.sub_attribute
        if attr.name == "meta" and found.schema_id is None:
            assert sub is not None
            return _meta_value(self.resource_type, sub, self.error)
        field = _FIELDS.get((self.resource_type.name, found.schema_id, attr.name)) if sub is None else None
        if field is not None:
            return _value(r.FIELD, (field,), self.label(found), attr)
        keys = self.doc_keys(found) + ((sub.name,) if sub is not None else ())
        return _value(r.DOCUMENT, keys, self.label(found), sub or attr)

    def object_scope(self, found: ResolvedAttribute) -> _Scope:
        """Sub-attributes of a single-valued complex attribute, for `name[givenName eq "x"]`."""

        def value(sub: Attribute) -> r.Value:
            return self.single_value(ResolvedAttribute(found.schema_id, found.attribute, sub))

        return _Scope(self.label(found), found.attribute, value, found.schema_id)

    def is_membership(self, found: ResolvedAttribute, resource_type: str, name: str) -> bool:
        """User.groups and Group.members are memberships, not part of the document."""
        rt = self.resource_type
        return (rt is not None and rt.name == resource_type and found.schema_id == rt.schema.id
                and found.attribute.name == name)

    def collection(self, found: ResolvedAttribute) -> tuple[r.Collection, _Scope]:
        attr = found.attribute
        label = self.label(found)
        if not attr.is_complex:  # pragma: no cover - every multi-valued attribute in schema_defs is complex
            raise self.error(f"Filtering on the simple multi-valued attribute {label} is not supported.")
        if self.is_membership(found, "User", "groups"):
            return r.Collection(r.GROUP_ID, (), "groups"), _groups_scope(attr, self.error)
        if self.is_membership(found, "Group", "members"):
            return r.Collection(r.MEMBER_ID, (), "members"), _members_scope(attr, self.error)

        def value(sub: Attribute) -> r.Value:
            return _value(r.ELEMENT, (sub.name,), f"{label}.{sub.name}", sub)

        return r.Collection(r.DOCUMENT, self.doc_keys(found), label), _Scope(label, attr, value, found.schema_id)

    # -- filters -------------------------------------------------------------------------------
    def node(self, node: Filter, scope: _Scope | None = None) -> r.Node:
        if isinstance(node, And | Or):
            terms = tuple(self.node(term, scope) for term in operands(node))
            return r.All(terms) if isinstance(node, And) else r.AnyOf(terms)
        if isinstance(node, Not):
            return r.Not(self.node(node.inner, scope))
        if isinstance(node, ValuePath | Compare) and scope is None and self.lacks(node.path):
            return r.Constant(False)
        if isinstance(node, ValuePath):
            if scope is not None:
                raise self.error(f"A value filter cannot be nested inside {scope.label}[...].")
            return self.value_path(node)
        if isinstance(node, Compare):
            return self.scoped_compare(node, scope) if scope is not None else self.compare(node)
        raise TypeError(f"not a filter node: {node!r}")  # pragma: no cover

    def value_path(self, node: ValuePath) -> r.Node:
        found = self.resolve(node.path)
        label = self.label(found)
        attr = found.attribute
        if not attr.is_complex or found.sub_attribute is not None:
            raise self.error(f"{label}[...] needs a complex attribute such as emails; {label} is a {attr.type}.")
        if attr.name == "meta" and found.schema_id is None:
            assert self.resource_type is not None
            rt, error = self.resource_type, self.error
            return self.node(node.filter, _Scope("meta", attr, lambda sub: _meta_value(rt, sub, error)))
        if not attr.multi_valued:
            return self.node(node.filter, self.object_scope(found))
        collection, scope = self.collection(found)
        return r.Some(collection, self.node(node.filter, scope))

    def compare(self, node: Compare) -> r.Node:
        found = self.resolve(node.path)
        attr, sub = found.attribute, found.sub_attribute
        label = self.label(found)
        op, value = self.normalise_null(node, label)
        if attr.multi_valued:
            if sub is None and op == "pr":
                if self.is_membership(found, "User", "groups") or self.is_membership(found, "Group", "members"):
                    return r.Some(self.collection(found)[0])
                return r.Present(self.doc_keys(found), label)
            if sub is None:
                sub = attr.sub("value")
                if sub is None:
                    raise self.error(f"{label} is a multi-valued complex attribute without a 'value' "
                                     f"sub-attribute; filter on one of its sub-attributes, e.g. "
                                     f"{label}.{attr.sub_attributes[0].name}, or use {label}[...].")
            collection, scope = self.collection(found)
            if op == "ne":
                # RFC 7644 §3.4.2.2: a multi-valued attribute matches `eq` when any value does, so `ne`
                # is the negation of that, not "some value differs".
                return r.Not(r.Some(collection, self.leaf(scope.value(sub), "eq", value)))
            return r.Some(collection, self.leaf(scope.value(sub), op, value))
        if attr.is_complex and sub is None:
            if op == "pr":
                if attr.name == "meta" and found.schema_id is None:
                    return r.Constant(True)
                return r.Present(self.doc_keys(found), label)
            example = f"{label}.{attr.sub_attributes[0].name}" if attr.sub_attributes else label
            raise self.error(f"{label} is a complex attribute; compare one of its sub-attributes instead, "
                             f"e.g. {example}.")
        return self.leaf(self.single_value(found), op, value)

    def scoped_compare(self, node: Compare, scope: _Scope) -> r.Node:
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
        return self.leaf(scope.value(sub), op, value)

    def normalise_null(self, node: Compare, label: str) -> tuple[str, Any]:
        if node.op != "pr" and node.value is None:
            # RFC 7643 §2.5: null and absent are the same thing, so `eq null` asks for absence.
            if node.op == "eq":
                return "absent", None
            if node.op == "ne":
                return "pr", None
            raise self.error(f"{label} {node.op} null is meaningless; only eq null and ne null are allowed.")
        return node.op, node.value

    def leaf(self, value: r.Value, op: str, operand: Any) -> r.Compare:
        if op in ("pr", "absent"):
            return r.Compare(value, op)
        return r.Compare(value, op, self.coerce(value, op, operand))

    def coerce(self, value: r.Value, op: str, operand: Any) -> Any:
        label, kind = value.label, value.type
        if kind == "boolean":
            if op not in ("eq", "ne"):
                raise self.error(f"{label} is a boolean; '{op}' is not defined for booleans (use eq, ne or pr).")
            if isinstance(operand, bool):
                return operand
            if isinstance(operand, str) and operand.strip().lower() in ("true", "false"):
                return operand.strip().lower() == "true"
            raise self.error(f"{label} is a boolean; compare it with true or false, not {operand!r}.")
        if kind in _NUMBER_TYPES:
            if op in _SUBSTRING_OPS:
                raise self.error(f"{label} is a number; '{op}' applies to strings (use eq, ne, gt, ge, lt or le).")
            if isinstance(operand, bool):
                raise self.error(f"{label} is a number; compare it with a number, not {operand!r}.")
            if isinstance(operand, int | float):
                return operand
            try:
                return int(operand) if kind == "integer" else float(operand)
            except (TypeError, ValueError):
                raise self.error(f"{label} is a number; compare it with a number, not {operand!r}.") from None
        if kind == "dateTime":
            if op in _SUBSTRING_OPS:
                raise self.error(f"{label} is a dateTime; '{op}' is not defined for dates "
                                 f"(use eq, ne, gt, ge, lt or le).")
            parsed = parse_datetime(operand) if isinstance(operand, str) else None
            if parsed is None:
                raise invalid_filter(f"{label} is a dateTime; {operand!r} is not an xsd:dateTime such as "
                                     f"\"2011-05-13T04:42:34Z\" or \"2011-05-13T06:42:34+02:00\".")
            return parsed
        if isinstance(operand, bool) or not isinstance(operand, str | int | float):
            raise self.error(f"{label} is a string; compare it with a quoted string, not {operand!r}.")
        text = operand if isinstance(operand, str) else str(operand)
        return text if value.case_exact else fold_case(text)


def resolve_filter(resource_type: ResourceType, node: Filter, absent_unknown: bool = False) -> r.Node:
    """`node` resolved against `resource_type`. Raises a 400 invalidFilter ScimError for anything storage could
    not evaluate faithfully. With `absent_unknown`, an attribute the type does not have is absent instead of
    unknown (see _Resolver.lacks)."""
    return _Resolver(resource_type, absent_unknown=absent_unknown).node(node)


def resolve_member_filter(node: Filter) -> r.Node:
    """For PATCH `members[<filter>]`: a condition on one member of a group (MEMBER_ID and CONSTANT values)."""
    return _Resolver(None).node(node, _members_scope(error=invalid_filter))


def resolve_sort(resource_type: ResourceType, sort_by: str, absent_unknown: bool = False) -> r.SortKey:
    """What a `sortBy` attribute path (RFC 7644 §3.4.2.3) orders by. Raises a 400 invalidValue ScimError for
    unknown or unsortable attributes."""
    path = parse_attr_path(sort_by.strip())
    if path is None:
        raise invalid_value(f"sortBy {sort_by!r} is not an attribute path such as 'userName' or 'name.familyName'.")
    resolver = _Resolver(resource_type, error=invalid_value, absent_unknown=absent_unknown)
    if resolver.lacks(path):
        return r.SortKey(None)  # absent from every resource of the type: sorted last, as absent values are
    try:
        found = resolver.resolve(path)
    except ScimError as exc:
        raise invalid_value(f"Cannot sort by {sort_by!r}: {exc.detail}") from None
    attr, sub = found.attribute, found.sub_attribute
    label = resolver.label(found)
    if attr.multi_valued:
        if sub is None:
            sub = attr.sub("value")
            if sub is None:
                raise invalid_value(f"Cannot sort by {label}: name one of its sub-attributes, "
                                    f"e.g. {label}.{attr.sub_attributes[0].name}.")
        collection, scope = resolver.collection(found)
        return r.SortKey(scope.value(sub), collection)
    if attr.is_complex and sub is None:
        example = f"{label}.{attr.sub_attributes[0].name}" if attr.sub_attributes else label
        raise invalid_value(f"Cannot sort by {label}: it is a complex attribute; sort by a sub-attribute, "
                            f"e.g. {example}.")
    return r.SortKey(resolver.single_value(found))


def resolve_search(resource_type: ResourceType, node: Filter | None, sort_by: str | None, descending: bool,
                   absent_unknown: bool = False) -> r.SearchQuery:
    """A list request's query for one resource type, resolved (the errors of resolve_filter and resolve_sort)."""
    return r.SearchQuery(
        resource_type,
        resolve_filter(resource_type, node, absent_unknown) if node is not None else None,
        resolve_sort(resource_type, sort_by, absent_unknown) if sort_by else None,
        descending,
    )
