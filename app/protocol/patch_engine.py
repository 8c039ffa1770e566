"""The SCIM PATCH engine (RFC 7644 §3.5.2): a PatchOp message's operations (patch_message) in, a patched resource
document out.

A resource *document* is a dict holding every client-writable attribute of a resource under its canonical name
(as spelled in schema_defs); extension attributes live under their schema URN. It never holds id, meta,
User.groups or Group.members. Group membership can be far larger than a request, so member operations are not
applied in memory: they come back as an ordered list of MemberChange for the storage layer to apply.

The engine is pure and synchronous: apply_patch never mutates its input and either applies every operation of a
request or raises a ScimError, in which case the caller applies nothing (RFC 7644 §3.5.2: PATCH is atomic).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from app.protocol.attribute_values import clean_complex, clean_multi, clean_scalar, coerce_boolean, unwrap
from app.protocol.errors import ScimError, invalid_path, invalid_value, mutability, no_target
from app.protocol.filters import And, Compare, Filter, Or, PatchPath, parse_patch_path
from app.protocol.folding import fold_case
from app.protocol.members import member_ids
from app.protocol.patch_message import PatchOperation
from app.protocol.schema_defs import GROUP_SCHEMA, Attribute, ResourceType, resolve
from app.protocol.value_filters import Predicate, filter_sub_attribute, sub_value, value_predicate

# Value comparisons one PATCH may make in all. Each operation looks at every value of its attribute (up to
# MAX_MULTI_VALUES), once per comparison of its filter (up to MAX_FILTER_TERMS), so operations x values x terms
# would otherwise reach 10^8 in one 1 MiB body: minutes of the single writer. 100,000 cost at most a quarter of
# a second, and are a hundred times what identity providers send (a few operations on a few values).
MAX_PATCH_WORK = 100_000

# Keys clients echo back in path-less values (RFC 7643 §3: not attributes one can PATCH); ignored there.
_ECHOED_KEYS = frozenset({"schemas", "id", "meta"})


# ---------------------------------------------------------------------------------------------------------------
# Results


# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemberChange:
    kind: str  # "add" (ids), "remove" (ids), "remove_where" (filter), "replace" (ids; empty = empty the group)
    ids: tuple[str, ...] = ()
    filter: Filter | None = None  # for remove_where: a filter over member sub-attributes (value, display, type)


@dataclass
class PatchResult:
    document: dict[str, Any]
    member_changes: list[MemberChange]


# ---------------------------------------------------------------------------------------------------------------
# Applying operations (RFC 7644 §3.5.2.1 add, §3.5.2.2 remove, §3.5.2.3 replace)


# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Target:
    """Where an operation lands: an attribute of a schema's container, optionally narrowed by a value filter
    and/or a sub-attribute. `attribute` None means the whole schema (a bare schema URN path)."""

    schema_id: str
    attribute: Attribute | None
    filter: Filter | None = None
    sub: Attribute | None = None
    text: str = ""
    predicate: Predicate | None = None  # `filter`, compiled
    cost: int = 0  # comparisons `predicate` makes per value


class _Patch:
    def __init__(self, resource_type: ResourceType, document: dict[str, Any]) -> None:
        self.resource_type = resource_type
        self.document = document
        self.member_changes: list[MemberChange] = []
        self.work = 0  # value comparisons so far, against MAX_PATCH_WORK

    def spend(self, comparisons: int) -> None:
        self.work += comparisons
        if self.work > MAX_PATCH_WORK:
            raise invalid_value(f"This PATCH compares more than {MAX_PATCH_WORK:,} values in all (each operation "
                                f"looks at every value of the attribute it targets, once per comparison of its "
                                f"filter); send its operations in several requests.")

    # -- dispatch ------------------------------------------------------------------------------------------------
    def apply(self, operation: PatchOperation) -> None:
        # parse_patch_request made `op` one of OPS, and gave every remove a path.
        op = operation.op
        if operation.path is None:
            self._apply_object(op, operation.value, None)
            return
        target = self._resolve(operation.path)
        if target.attribute is None:
            self._apply_schema(op, target, operation.value)
        elif self._is_members(target.attribute):
            self._members(op, target, operation.value)
        elif target.attribute.mutability == "writeOnly":
            return  # `password`: accepted for compatibility, never stored
        elif op == "remove" or operation.value is None:
            self._remove(target, operation.value if op == "remove" else None)
        else:
            self._write(op, target, operation.value)

    def _apply_schema(self, op: str, target: _Target, value: Any) -> None:
        """A path that is a bare schema URN, e.g. the enterprise extension with an object value."""
        if op == "remove":
            if target.schema_id == self.resource_type.schema.id:
                raise mutability("The core schema of a resource cannot be removed.")
            self.document.pop(target.schema_id, None)
            return
        if value is None:
            return self._apply_schema("remove", target, None)
        self._apply_object(op, value, target.schema_id)

    def _apply_object(self, op: str, value: Any, schema_id: str | None) -> None:
        """Path-less add/replace: every key of `value` is an attribute path (RFC 7644 §3.5.2.1, §3.5.2.3).
        Unknown and read-only keys are ignored here, as for any resource body (RFC 7643 §2.2)."""
        if not isinstance(value, dict):
            where = f"the path {schema_id!r}" if schema_id else "no 'path'"
            raise invalid_value(f"An {op} operation with {where} needs an object of attribute names as its value.")
        for key, inner in value.items():
            if not isinstance(key, str) or (schema_id is None and key.lower() in _ECHOED_KEYS):
                continue
            schema = self.resource_type.schema_for(key) if key.lower().startswith("urn:") else None
            if schema is not None and schema_id is None:
                if inner is None:
                    if schema.id != self.resource_type.schema.id:
                        self.document.pop(schema.id, None)
                    continue
                self._apply_object(op, inner, schema.id)
                continue
            target = self._resolve_key(key, schema_id)
            if target is None or target.attribute is None:
                continue
            if self._is_members(target.attribute):
                if target.sub is None:
                    self._members(op, target, inner)
                continue
            if self._read_only(target) or target.attribute.mutability == "writeOnly":
                continue
            if inner is None:
                self._remove(target, None)
            else:
                self._write(op, target, inner)

    # -- path resolution -----------------------------------------------------------------------------------------
    def _resolve(self, path: PatchPath) -> _Target:
        attr = path.attr
        text = str(attr)
        if attr.sub is None and attr.uri is not None:
            schema = self.resource_type.schema_for(f"{attr.uri}:{attr.name}")
            if schema is not None:
                if path.filter is not None or path.sub is not None:
                    raise invalid_path(f"{text!r} is a schema, not a multi-valued attribute.")
                return _Target(schema.id, None, text=text)
        resolved = resolve(self.resource_type, attr.uri, attr.name, attr.sub)
        if resolved is None:
            raise invalid_path(f"The {self.resource_type.name} resource has no attribute {text!r}.")
        attribute, sub = resolved.attribute, resolved.sub_attribute
        predicate, cost = None, 0
        if path.filter is not None:
            if not attribute.multi_valued or not attribute.is_complex:
                raise invalid_path(f"{text!r} is not a multi-valued attribute, so it cannot take a value filter.")
            predicate, cost = value_predicate(path.filter, attribute)
            if path.sub is not None:
                sub = attribute.sub(path.sub)
                if sub is None:
                    raise invalid_path(f"{text!r} has no sub-attribute {path.sub!r}.")
            text = f"{text}[...]" + (f".{sub.name}" if sub else "")
        target = _Target(resolved.schema_id or self.resource_type.schema.id, attribute, path.filter, sub, text,
                         predicate, cost)
        if self._is_members(attribute):
            return target
        if self._read_only(target):
            raise mutability(f"{text!r} is read-only and cannot be modified.")
        return target

    def _resolve_key(self, key: str, schema_id: str | None) -> _Target | None:
        """A key of a path-less value object: `name`, `name.sub` or `urn:...:name[.sub]`; None when unknown."""
        try:
            path = parse_patch_path(key)
        except ScimError:
            return None
        if path.filter is not None:
            return None
        attr = path.attr
        uri = attr.uri if attr.uri is not None else schema_id
        if uri is not None and uri.lower() == self.resource_type.schema.id.lower():
            uri = None  # resolve() finds common attributes (externalId) only without a URN
        resolved = resolve(self.resource_type, uri, attr.name, attr.sub)
        if resolved is None:
            return None
        return _Target(resolved.schema_id or self.resource_type.schema.id, resolved.attribute, None,
                       resolved.sub_attribute, str(attr))

    def _is_members(self, attribute: Attribute) -> bool:
        return self.resource_type.schema.id == GROUP_SCHEMA and attribute.name == "members"

    @staticmethod
    def _read_only(target: _Target) -> bool:
        assert target.attribute is not None
        return target.attribute.mutability == "readOnly" or (
            target.sub is not None and target.sub.mutability == "readOnly")

    def _container(self, schema_id: str, create: bool) -> dict[str, Any] | None:
        if schema_id == self.resource_type.schema.id:
            return self.document
        container = self.document.get(schema_id)
        if not isinstance(container, dict):
            if not create:
                return None
            container = self.document[schema_id] = {}
        return container

    # -- add and replace -----------------------------------------------------------------------------------------
    def _write(self, op: str, target: _Target, raw: Any) -> None:
        attribute = target.attribute
        assert attribute is not None
        container = self._container(target.schema_id, create=True)
        assert container is not None
        name = attribute.name
        if target.filter is not None:
            self._write_matching(op, target, container, raw)
        elif target.sub is not None:
            value = clean_scalar(target.sub, raw)
            if attribute.multi_valued:
                # `emails.value`: every value of the attribute; a first value when there is none.
                items = container.get(name) or [{}]
                self.spend(len(items))
                for item in items:
                    item[target.sub.name] = value
                container[name] = items
                _settle_primary(items, items)
            else:
                current = container.get(name)
                container[name] = {**(current if isinstance(current, dict) else {}), target.sub.name: value}
        elif attribute.multi_valued:
            items = clean_multi(attribute, raw)
            if op == "add":
                existing = list(container.get(name) or [])
                # A few values are looked for by scanning (see _new_values): dict comparisons in C, some 30 times
                # cheaper than a comparison in Python. More values are keyed, in Python.
                scan = len(existing) if len(items) > _SCAN_LIMIT else len(existing) * len(items) // 32
                self.spend(len(items) + scan)
                written = _new_values(existing, items)
                items = existing + written
            else:
                written = items
            _settle_primary(items, written)
            _store(container, name, items)
        elif attribute.is_complex:
            # RFC 7644 §3.5.2.1/§3.5.2.3: sub-attributes not given are left unchanged.
            current = container.get(name)
            merged = {**(current if isinstance(current, dict) else {}), **clean_complex(attribute, raw)}
            _store(container, name, merged)
        else:
            container[name] = clean_scalar(attribute, raw)

    def _write_matching(self, op: str, target: _Target, container: dict[str, Any], raw: Any) -> None:
        attribute, value_filter, predicate = target.attribute, target.filter, target.predicate
        assert attribute is not None and value_filter is not None and predicate is not None
        items = container.get(attribute.name) or []
        self.spend(len(items) * target.cost)
        matched = [item for item in items if predicate(item)]
        if not matched:
            seed = _seed_from_filter(value_filter, attribute) if op == "add" else None
            if seed is None:
                raise no_target(f"No value of {attribute.name!r} matches the filter in {target.text!r}.")
            # add `emails[type eq "work"].value` when there is no work email: create it (as Entra expects).
            items = [*items, seed]
            matched = [seed]
        # Cleaned once, not per matched value: the value may be a large object, and many values may match.
        if target.sub is not None:
            name, value = target.sub.name, clean_scalar(target.sub, raw)
            for item in matched:
                item[name] = value
        else:
            clean = clean_complex(attribute, unwrap(raw))
            for item in matched:
                item.update(clean)
        _settle_primary(items, matched)
        container[attribute.name] = items

    # -- remove --------------------------------------------------------------------------------------------------
    def _remove(self, target: _Target, value: Any) -> None:
        attribute = target.attribute
        assert attribute is not None
        container = self._container(target.schema_id, create=False)
        name = attribute.name
        if target.filter is None and target.sub is None and attribute.required:
            raise invalid_value(f"{name!r} is required and cannot be removed.")
        if container is None or container.get(name) is None:
            return  # removing what is not there changes nothing
        if target.filter is None and target.sub is None:
            if attribute.multi_valued and value not in (None, [], {}):
                # `{"op":"remove","path":"emails","value":[{"value":"x"}]}`: only the values given.
                given = clean_multi(attribute, value)
                _store(container, name, _without(container[name], given, attribute, self.spend))
            else:
                del container[name]
        elif attribute.multi_valued:
            self.spend(len(container[name]) * max(1, target.cost))
            kept = []
            for item in container[name]:
                if target.predicate is None or target.predicate(item):
                    if target.sub is None:
                        continue
                    item.pop(target.sub.name, None)
                if item:
                    kept.append(item)
            _store(container, name, kept)
        else:
            assert target.sub is not None
            current = dict(container[name])
            current.pop(target.sub.name, None)
            _store(container, name, current)
        if target.schema_id != self.resource_type.schema.id and not container:
            self.document.pop(target.schema_id, None)

    # -- Group members (never held in the document) --------------------------------------------------------------
    def _members(self, op: str, target: _Target, raw: Any) -> None:
        if target.sub is not None:
            raise mutability(f"{target.text!r}: a member's sub-attributes cannot be modified; add or remove the "
                             f"member instead.")
        if target.filter is not None:
            if op != "remove":
                raise mutability(f"{target.text!r}: members cannot be modified in place; add or remove them.")
            ids = _member_ids_of_filter(target.filter)
            if ids is not None:
                self.member_changes.append(MemberChange("remove", ids))
            else:
                self.member_changes.append(MemberChange("remove_where", filter=target.filter))
            return
        if op == "remove":
            if raw is None:
                self.member_changes.append(MemberChange("replace", ()))  # RFC 7644 §3.5.2.2: all members
            else:
                # JumpCloud/Entra: `remove` `members` with a value array removes only those members.
                ids = member_ids(raw)
                if ids:
                    self.member_changes.append(MemberChange("remove", ids))
        elif op == "add":
            ids = member_ids(raw)
            if ids:
                self.member_changes.append(MemberChange("add", ids))
        else:
            self.member_changes.append(MemberChange("replace", member_ids(raw)))


def membership_changes_only(resource_type: ResourceType, operations: list[PatchOperation]
                            ) -> list[MemberChange] | None:
    """The member changes of a PATCH whose every operation has a path to a Group's `members` (it leaves the
    document as it is, whatever the document holds), or None for any other PATCH. Raises the ScimError that
    apply_patch would for the first such operation that is wrong."""
    patch = _Patch(resource_type, {})
    for operation in operations:
        if operation.path is None:
            return None
        target = patch._resolve(operation.path)
        if target.attribute is None or not patch._is_members(target.attribute):
            return None
        patch._members(operation.op, target, operation.value)
    return patch.member_changes


def apply_patch(resource_type: ResourceType, document: dict[str, Any],
                operations: list[PatchOperation]) -> PatchResult:
    """Apply `operations` in order to a copy of `document` (RFC 7644 §3.5.2). Raises ScimError on the first
    problem, in which case nothing is to be applied."""
    # A document is plain JSON data, so a JSON round trip copies it, several times faster than deepcopy.
    patch = _Patch(resource_type, orjson.loads(orjson.dumps(document)))
    for operation in operations:
        patch.apply(operation)
    for extension in resource_type.extensions:
        if patch.document.get(extension.id) == {} and document.get(extension.id) != {}:
            del patch.document[extension.id]  # an extension left without attributes is not there
    return PatchResult(patch.document, patch.member_changes)


def _store(container: dict[str, Any], name: str, value: Any) -> None:
    """Set an attribute; an empty list or object is an unassigned attribute (RFC 7643 §2.5)."""
    if value in ([], {}):
        container.pop(name, None)
    else:
        container[name] = value


# -- comparing values in linear time: each value gets a hashable key, and sets of keys replace scans -------------

# Up to this many values are looked for by scanning, which compares dicts in C; beyond it, keys pay off.
_SCAN_LIMIT = 8


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a JSON value that is equal exactly when the values are equal (`==`, so that
    1 == 1.0 == True as in a scan), hence a key for sets and dicts."""
    if isinstance(value, dict):
        return frozenset((key, _frozen(inner)) for key, inner in value.items())
    if isinstance(value, list):
        return tuple(_frozen(inner) for inner in value)
    return value


def _new_values(existing: list[Any], items: list[Any]) -> list[Any]:
    """The values of `items` equal to none in `existing` nor to an earlier one of `items`, in order."""
    written: list[Any] = []
    if len(items) <= _SCAN_LIMIT:
        for item in items:
            if item not in existing and item not in written:
                written.append(item)
        return written
    seen = {_frozen(item) for item in existing}
    for item in items:
        key = _frozen(item)
        if key not in seen:
            seen.add(key)
            written.append(item)
    return written


def _eq_key(sub: Attribute, value: Any) -> Any:
    """What `_compare("eq", a, b, sub)` compares, as a key: a == b under it exactly when the keys are equal.

    A string equals only a string (compared case-folded unless case-exact); anything else compares by `==`;
    a boolean sub-attribute reads "true"/"false" as booleans first; None (absent) matches nothing given.
    """
    if sub.type == "boolean":
        value = coerce_boolean(value)
    if isinstance(value, str):
        return value if sub.case_exact else fold_case(value)
    return _frozen(value)


def _without(items: list[Any], given: list[Any], attribute: Attribute, spend: Callable[[int], None]) -> list[Any]:
    """`items` less every value that has all the sub-attribute values of one of `given` (RFC 7644 §3.5.2.2
    with a value array, as JumpCloud and Entra send it). Given values are grouped by the sub-attributes they
    name and indexed by their keys, so each item costs one lookup per group, not one comparison per given."""
    groups: dict[tuple[str, ...], tuple[list[Attribute], set[tuple[Any, ...]]]] = {}
    for value in given:
        if not isinstance(value, dict):
            continue
        names = tuple(sorted(value))
        if names not in groups:
            found = [attribute.sub(name) for name in names]
            subs = [sub for sub in found if sub is not None]
            if len(subs) < len(found):
                continue  # names nothing the attribute has, so it matches no value
            groups[names] = (subs, set())
        known, keys = groups[names]
        keys.add(tuple(_eq_key(sub, value[name]) for sub, name in zip(known, names, strict=True)))
    if not groups:
        return list(items)
    spend(len(given) + len(items) * len(groups))
    plans = [(names, subs, keys) for names, (subs, keys) in groups.items()]
    return [item for item in items if not (isinstance(item, dict) and _has_one_of(item, plans))]


def _has_one_of(item: dict[str, Any], plans: list[tuple[tuple[str, ...], list[Attribute], set[tuple[Any, ...]]]]
                ) -> bool:
    for names, subs, keys in plans:
        key = []
        for name, sub in zip(names, subs, strict=True):
            actual = sub_value(item, name)
            if actual is None:
                break  # absent equals nothing given (given values are never None)
            key.append(_eq_key(sub, actual))
        else:
            if tuple(key) in keys:
                return True
    return False


def _settle_primary(items: list[Any], written: list[Any]) -> None:
    """RFC 7643 §2.4: at most one value is primary; the one just written wins."""
    winners = [item for item in written if isinstance(item, dict) and item.get("primary") is True]
    if not winners:
        return
    winner = winners[-1]
    for item in items:
        if item is not winner and isinstance(item, dict) and item.get("primary") is True:
            item["primary"] = False


def _seed_from_filter(node: Filter, attribute: Attribute) -> dict[str, Any] | None:
    """The value an `eq` filter (or an `and` of them) describes, for an add that matches nothing; else None."""
    if isinstance(node, And):
        left, right = _seed_from_filter(node.left, attribute), _seed_from_filter(node.right, attribute)
        return None if left is None or right is None else {**left, **right}
    if isinstance(node, Compare) and node.op == "eq" and node.value is not None:
        sub = filter_sub_attribute(node.path, attribute)
        return {sub.name: clean_scalar(sub, node.value)}
    return None


def _member_ids_of_filter(node: Filter) -> tuple[str, ...] | None:
    """`value eq "a"` or `value eq "a" or value eq "b"`: those ids, de-duplicated in order; any other filter:
    None. Walked with a stack of its own: a chain of `or` is a tree as deep as the chain is long."""
    ids: dict[str, None] = {}
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, Or):
            pending.append(current.right)
            pending.append(current.left)
        elif (isinstance(current, Compare) and current.op == "eq" and current.path.uri is None
              and current.path.sub is None and current.path.name.lower() == "value"
              and isinstance(current.value, str)):
            ids[current.value] = None
        else:
            return None
    return tuple(ids)
