"""Projection (RFC 7644 §3.4.2.5, §3.9): a dumped resource shaped by attributes/excludedAttributes."""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

from app.protocol.attribute_lists import value_filtered
from app.protocol.attribute_values import is_unassigned
from app.protocol.errors import invalid_filter
from app.protocol.filters import And, Compare, Filter, Not, Or
from app.protocol.schema_defs import COMMON_ATTRIBUTES, ResourceType, resolve
from app.protocol.value_filters import Predicate, value_predicate

_WHOLE = None  # a trie node that selects the whole value
_Trie = dict[str, Any]


def _plain_path(path: str) -> str:
    """The path a value filter narrows: `emails[type eq "work"].value` -> `emails.value`."""
    selected = value_filtered(path)
    if selected is None:
        return path
    return f"{selected.attr}.{selected.sub}" if selected.sub else str(selected.attr)


# Value comparisons one answered resource may cost its `attr[filter]` projections: a 100,000-member group with a
# one-comparison filter is well inside; the same group with a 256-comparison filter (seconds of work) is refused.
MAX_PROJECTION_WORK = 1_000_000
_ValueFilters = dict[str, list[tuple[Predicate, int, str | None]]]


@lru_cache(maxsize=64)
def _value_filters(resource_type: ResourceType, paths: tuple[str, ...]) -> _ValueFilters:
    """The `attr[filter]` paths among `paths`, by the lower-cased name of the attribute they narrow: per path, the
    compiled filter (the PATCH engine's evaluator), the comparisons it makes per value, and the `.sub` it names.
    Compiled once per distinct list, not once per resource of a page."""
    found: _ValueFilters = {}
    for path in paths:
        selected = value_filtered(path)
        if selected is None or selected.filter is None:
            continue
        resolved = resolve(resource_type, selected.attr.uri, selected.attr.name)
        if resolved is None:
            continue  # an attribute this resource type does not have: ignored, as any unknown name is
        attribute = resolved.attribute
        if resolved.schema_id != resource_type.schema.id or not (attribute.multi_valued and attribute.is_complex):
            raise invalid_filter(f"{path!r}: a value filter in brackets applies to a multi-valued attribute with "
                                 f"sub-attributes, such as emails[type eq \"work\"]; {attribute.name!r} is not one.")
        predicate, cost = value_predicate(selected.filter, attribute)
        found.setdefault(attribute.name.lower(), []).append((predicate, cost, selected.sub))
    return found


class ProjectionWork:
    """The value comparisons an answer's value filters may still make: MAX_PROJECTION_WORK for the whole answer
    (a list page, or one resource), so that a page of large resources does not multiply the limit."""

    def __init__(self, limit: int = MAX_PROJECTION_WORK) -> None:
        self.left = limit


def _check_work(resource: dict[str, Any], filters: _ValueFilters, work: ProjectionWork) -> None:
    for key, value in resource.items():
        entries = filters.get(key.lower())
        if entries and isinstance(value, list):
            work.left -= len(value) * sum(max(1, cost) for _, cost, _ in entries)
            if work.left < 0:
                raise invalid_filter(f"The value filters in attributes/excludedAttributes would compare more than "
                                     f"{MAX_PROJECTION_WORK:,} values in one answer ({key!r} of one resource holds "
                                     f"{len(value):,}); use a filter with fewer comparisons, or a smaller count.")


def _keep_matching(resource: dict[str, Any], filters: _ValueFilters, unfiltered: set[str], work: ProjectionWork
                   ) -> dict[str, Any]:
    """`attributes`: the values of each filtered attribute that match one of its filters (all of them when the
    attribute is also asked for without a filter)."""
    _check_work(resource, filters, work)
    out = dict(resource)
    for key, value in resource.items():
        entries = filters.get(key.lower())
        if entries is None or key.lower() in unfiltered or not isinstance(value, list):
            continue
        predicates = [predicate for predicate, _, _ in entries]
        out[key] = [item for item in value if isinstance(item, dict) and any(p(item) for p in predicates)]
    return out


def _drop_matching(resource: dict[str, Any], filters: _ValueFilters, work: ProjectionWork) -> dict[str, Any]:
    """`excludedAttributes`: each value that matches a filter loses the `.sub` the path names, or all of it."""
    _check_work(resource, filters, work)
    out = dict(resource)
    for key, value in resource.items():
        entries = filters.get(key.lower())
        if entries is None or not isinstance(value, list):
            continue
        items = value
        for predicate, _, sub in entries:
            if sub is None:
                items = [item for item in items if not (isinstance(item, dict) and predicate(item))]
            else:
                items = [{k: v for k, v in item.items() if k.lower() != sub.lower()}
                         if isinstance(item, dict) and predicate(item) else item for item in items]
        out[key] = [item for item in items if not is_unassigned(item)]
    return out


def _segments(resource_type: ResourceType, path: str) -> tuple[str, ...]:
    """An attribute path as canonical keys of the representation: ("name", "givenName"), (urn, "department");
    a value filter's path as the path it narrows (`emails[type eq "work"]` -> ("emails",))."""
    text = _plain_path(path.strip())
    lowered = text.lower()
    prefix: tuple[str, ...] = ()
    uri: str | None = None
    for schema_id in sorted(resource_type.schema_ids, key=len, reverse=True):
        if lowered == schema_id.lower():
            # A bare extension URN selects the whole extension object; a bare core URN selects nothing specific.
            return (schema_id,) if schema_id != resource_type.schema.id else ()
        if lowered.startswith(schema_id.lower() + ":"):
            uri = schema_id
            text = text[len(schema_id) + 1:]
            if schema_id != resource_type.schema.id:
                prefix = (schema_id,)
            break
    name, _, sub = text.partition(".")
    resolved = resolve(resource_type, uri, name, sub or None)
    if resolved is None:
        return (*prefix, name, sub) if sub else (*prefix, name)
    names = (resolved.attribute.name, resolved.sub_attribute.name) if resolved.sub_attribute else (
        resolved.attribute.name,)
    return (*prefix, *names)


def _trie(resource_type: ResourceType, paths: list[str]) -> _Trie:
    root: _Trie = {}
    for path in paths:
        segments = _segments(resource_type, path)
        if not segments:
            continue
        node = root
        for depth, segment in enumerate(segments):
            key = segment.lower()
            if depth == len(segments) - 1:
                node[key] = _WHOLE
            elif key in node and node[key] is _WHOLE:
                break  # already wholly selected
            else:
                node = node.setdefault(key, {})
    return root


def _always_returned(resource_type: ResourceType) -> set[str]:
    names = {"schemas"}
    for attribute in (*COMMON_ATTRIBUTES, *resource_type.schema.attributes):
        if attribute.returned == "always":
            names.add(attribute.name.lower())
    return names


def _select(value: Any, node: _Trie | None) -> Any:
    if node is _WHOLE:
        return value
    if isinstance(value, list):
        # Sub-attribute selection applies to every value of a multi-valued attribute.
        items = [_select(item, node) for item in value]
        return [item for item in items if not is_unassigned(item)]
    if isinstance(value, dict):
        out = {}
        for key, sub in value.items():
            if key.lower() in node:
                selected = _select(sub, node[key.lower()])
                if not is_unassigned(selected):
                    out[key] = selected
        return out
    return None  # a sub-attribute of a simple value selects nothing


def _exclude(value: Any, node: _Trie) -> Any:
    if isinstance(value, list):
        items = [_exclude(item, node) for item in value]
        return [item for item in items if not is_unassigned(item)]
    if isinstance(value, dict):
        out = {}
        for key, sub in value.items():
            lowered = key.lower()
            if lowered not in node:
                out[key] = sub
            elif node[lowered] is not _WHOLE:
                kept = _exclude(sub, node[lowered])
                if not is_unassigned(kept):
                    out[key] = kept
        return out
    return value


def project(resource: dict[str, Any], resource_type: ResourceType, attributes: list[str] | None,
            excluded: list[str] | None, work: ProjectionWork | None = None) -> dict[str, Any]:
    """Apply `attributes` / `excludedAttributes` to a dumped resource; value filters spend `work`, shared by the
    resources of one answer (a fresh MAX_PROJECTION_WORK when None).

    returned="always" attributes (schemas, id) survive both; "schemas" is left as is, because it
    describes the resource rather than the projection.
    """
    work = work if work is not None else ProjectionWork()
    always = _always_returned(resource_type)
    out = dict(resource)
    if attributes:
        filters = _value_filters(resource_type, tuple(attributes))
        if filters:
            unfiltered = {segments[0].lower() for path in attributes if value_filtered(path) is None
                          if (segments := _segments(resource_type, path))}
            resource = _keep_matching(resource, filters, unfiltered, work)
        trie = _trie(resource_type, attributes)
        out = {}
        for key, value in resource.items():
            lowered = key.lower()
            if lowered in always:
                out[key] = value
            elif lowered in trie:
                selected = _select(value, trie[lowered])
                if not is_unassigned(selected):
                    out[key] = selected
    else:
        # returned="request" attributes only appear when asked for by name.
        request_only = {
            a.name.lower() for a in (*COMMON_ATTRIBUTES, *resource_type.schema.attributes) if a.returned == "request"
        }
        out = {key: value for key, value in out.items() if key.lower() not in request_only}
    if excluded:
        filters = _value_filters(resource_type, tuple(excluded))
        if filters:
            out = _drop_matching(out, filters, work)
        trie = _trie(resource_type, [path for path in excluded if value_filtered(path) is None])
        for name in always:
            trie.pop(name, None)
        out = _exclude(out, trie)
    return out


def wants_attribute(resource_type: ResourceType, attributes: list[str] | None, excluded: list[str] | None,
                    name: str) -> bool:
    """Whether projecting with these parameters can keep any part of attribute `name` (e.g. Group.members)."""
    if not attributes and not excluded:
        return _returned(resource_type, name.lower()) != "request"  # the common case, on every read
    target = tuple(s.lower() for s in _segments(resource_type, name))
    if not target:
        return True
    if target[0] in _always_returned(resource_type):
        return True
    if attributes:
        selected = [tuple(s.lower() for s in _segments(resource_type, path)) for path in attributes]
        # Either the attribute (or one of its sub-attributes) is named, or something containing it is.
        if not any(path[:len(target)] == target or target[:len(path)] == path for path in selected if path):
            return False
    elif _returned(resource_type, target[0]) == "request":
        return False
    if excluded:
        for path in excluded:
            if value_filtered(path) is not None:
                continue  # excludes only the values that match: the attribute is still wanted
            segments = tuple(s.lower() for s in _segments(resource_type, path))
            if segments and target[:len(segments)] == segments:
                return False
    return True


def names_sub_attribute(resource_type: ResourceType, paths: list[str] | None, attribute: str, sub: str) -> bool:
    """Whether `paths` (an attributes or excludedAttributes list) name `attribute.sub`: as a path, URN-qualified or
    not, also through a value filter (`members[type eq "User"].display`), or inside a value filter on `attribute`
    (`members[display pr]`), which needs the sub-attribute to be evaluated. For a sub-attribute that is read only
    when asked for (Group members' display)."""
    target = (attribute.lower(), sub.lower())
    for path in paths or ():
        if tuple(segment.lower() for segment in _segments(resource_type, path)) == target:
            return True
        selected = value_filtered(path)
        if selected is not None and selected.attr.name.lower() == target[0] \
                and target[1] in _names_compared(selected.filter):
            return True
    return False


def _names_compared(node: Filter | None) -> set[str]:
    """The lower-cased (sub-)attribute names a value filter compares, walked without recursion."""
    names: set[str] = set()
    pending = [node] if node is not None else []
    while pending:
        current = pending.pop()
        if isinstance(current, And | Or):
            pending.extend((current.left, current.right))
        elif isinstance(current, Not):
            pending.append(current.inner)
        elif isinstance(current, Compare):
            # `members[members.display pr]` is tolerated as `members[display pr]` (value_filters.filter_sub_attribute).
            names.add((current.path.sub or current.path.name).lower())
    return names


@cache
def _returned(resource_type: ResourceType, lowered_name: str) -> str:
    resolved = resolve(resource_type, None, lowered_name)  # a common attribute, else one of the core schema
    return resolved.attribute.returned if resolved else "default"
