"""SCIM resources in and out (RFC 7643 §2-§4, RFC 7644 §3.4.2.5, §3.4.3, §3.9).

The marshmallow schemas here are generated from `schema_defs`, so adding an attribute there is the
whole change: loading, shaping and projection follow. A *document* is what gets stored: every
client-writable attribute under its canonical name, extensions under their schema URN, and nothing
the server owns (id, meta, schemas, readOnly attributes) or must never keep (password).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields

from app.protocol.errors import describe as _describe
from app.protocol.errors import invalid_filter, invalid_syntax, invalid_value
from app.protocol.filters import And, Compare, Filter, Not, Or, PatchPath, parse_selected_path
from app.protocol.members import MemberError, member_id
from app.protocol.patch import Predicate, value_predicate
from app.protocol.schema_defs import (
    COMMON_ATTRIBUTES,
    GROUP_SCHEMA,
    LIST_RESPONSE,
    SEARCH_REQUEST,
    Attribute,
    ResourceType,
    resolve,
)

__all__ = [
    "MAX_MULTI_VALUES",
    "SearchRequest",
    "dump_resource",
    "list_response",
    "load_resource",
    "load_search_request",
    "parse_attribute_list",
    "project",
    "wants_attribute",
]


# The most values one multi-valued attribute of a resource may hold (emails, phoneNumbers, addresses, roles...):
# a person has a handful, and every PATCH and every read costs in proportion to them. Group members are not
# counted here: they live in a table of their own and are never held in a document.
MAX_MULTI_VALUES = 1000


# --- error text ------------------------------------------------------------------------------------------------


def _flatten(messages: Any, path: str = "", in_extension: bool = False) -> list[str]:
    """Turn marshmallow's nested error dict into `emails[0].primary must be ...` lines."""
    if isinstance(messages, str):
        return [f"{path} {messages}" if path else messages]
    if isinstance(messages, list):
        return [line for message in messages for line in _flatten(message, path, in_extension)]
    lines: list[str] = []
    for key, sub in messages.items():
        if key == "_schema":
            child, child_in_ext = path, in_extension
        elif isinstance(key, int):
            child, child_in_ext = f"{path}[{key}]", False
        elif not path:
            child, child_in_ext = str(key), str(key).lower().startswith("urn:")
        elif in_extension:
            # Extension attributes are addressed as `urn:...:User:department` (RFC 7644 §3.10).
            child, child_in_ext = f"{path}:{key}", False
        else:
            child, child_in_ext = f"{path}.{key}", False
        lines.extend(_flatten(sub, child, child_in_ext))
    return lines


# --- fields: one per SCIM data type (RFC 7643 §2.3) ------------------------------------------------------------


class _ScimField(fields.Field):
    """A field that knows its SCIM attribute, so error messages and coercions follow the schema."""

    def __init__(self, attribute: Attribute, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scim = attribute


class _String(_ScimField):
    expected = "a string"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str):
            raise ma.ValidationError(f"must be {self.expected}, got {_describe(value)}")
        # NUL survives JSON but breaks SQLite text comparisons and most downstream consumers.
        if "\x00" in value:
            raise ma.ValidationError("must not contain NUL characters")
        if self.scim.required and not value.strip():
            raise ma.ValidationError("is required and must not be empty")
        return self._check(value)

    def _check(self, value: str) -> Any:
        return value


class _Reference(_String):
    expected = "a reference (a URI string)"


class _DateTime(_String):
    expected = "a dateTime string (ISO 8601)"

    def _check(self, value: str) -> Any:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ma.ValidationError(f"must be {self.expected}, got {_describe(value)}") from None
        if "T" not in value.upper():
            raise ma.ValidationError(f"must be {self.expected} with a time, got {_describe(value)}")
        return value


class _Binary(_String):
    expected = "base64-encoded binary"

    def _check(self, value: str) -> Any:
        compact = "".join(value.split())  # PEM bodies arrive wrapped at 64 columns
        # Some clients send base64url; both alphabets decode the same certificate.
        normalised = compact.replace("-", "+").replace("_", "/")
        try:
            base64.b64decode(normalised, validate=True)
            return value
        except (binascii.Error, ValueError):
            pass
        raise ma.ValidationError(f"must be {self.expected}, got {_describe(value)}")


class _Boolean(_ScimField):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            return value
        # Microsoft Entra sends booleans as "True"/"False" strings in PATCH values.
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ma.ValidationError(f"must be a boolean, got {_describe(value)}")


class _Integer(_ScimField):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ma.ValidationError(f"must be an integer, got {_describe(value)}")


class _Decimal(_ScimField):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        raise ma.ValidationError(f"must be a decimal number, got {_describe(value)}")


class _Complex(_ScimField):
    """A singular complex attribute, validated by the generated schema of its sub-attributes."""

    def __init__(self, attribute: Attribute, schema_class: type[_ScimSchema], **kwargs: Any) -> None:
        super().__init__(attribute, **kwargs)
        self.schema_class = schema_class
        self._schema: _ScimSchema | None = None

    @property
    def schema(self) -> _ScimSchema:
        # One instance, made on first use: building a marshmallow Schema deep-copies its fields, which cost
        # more than the load itself when done per value.
        if self._schema is None:
            self._schema = self.schema_class()
        return self._schema

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        # Entra PATCHes the enterprise manager as a bare id string; `value` is what it means.
        if isinstance(value, str) and self.scim.sub("value") is not None:
            value = {"value": value}
        if not isinstance(value, dict):
            raise ma.ValidationError(f"must be an object, got {_describe(value)}")
        return self.schema.load(value)


class _MultiValued(_ScimField):
    """A multi-valued attribute: a list of `inner` values, at most one of them primary (RFC 7643 §2.4)."""

    def __init__(self, attribute: Attribute, inner: _ScimField, **kwargs: Any) -> None:
        super().__init__(attribute, **kwargs)
        self.inner = inner

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, dict) or (isinstance(value, str) and isinstance(self.inner, _Member)):
            # Several IdPs send one object where the schema says array; the meaning is unambiguous. A member may
            # also be its bare id, so one id string is one member, as in PATCH (protocol.members.member_ids).
            value = [value]
        if not isinstance(value, list):
            raise ma.ValidationError(f"must be an array, got {_describe(value)}")
        capped = not isinstance(self.inner, _Member)
        items: list[Any] = []
        errors: dict[int, Any] = {}
        for index, item in enumerate(value):
            if item is None:
                continue
            try:
                loaded = self.inner.deserialize(item)
            except ma.ValidationError as error:
                errors[index] = error.messages
                continue
            if not _is_empty(loaded):
                items.append(loaded)
                if capped and len(items) > MAX_MULTI_VALUES:
                    # Stop here: loading the rest of a 40,000-value array would only cost time.
                    raise ma.ValidationError(f"holds more than {MAX_MULTI_VALUES} values ({len(value)} given); "
                                             f"the limit is {MAX_MULTI_VALUES} per attribute")
        if errors:
            raise ma.ValidationError(errors)
        if sum(1 for item in items if isinstance(item, dict) and item.get("primary") is True) > 1:
            raise ma.ValidationError("must not have more than one value with primary set to true")
        return _dedupe(items) if self.scim.name == "members" else items


class _Member(_ScimField):
    """One Group member as a client writes it; only the id survives, since the lead keeps members in a table."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            return {"value": member_id(value)}  # the parser PATCH uses too
        except MemberError as error:
            raise ma.ValidationError({error.where: [error.problem]} if error.where else error.problem) from None


_SCALARS: dict[str, type[_ScimField]] = {
    "string": _String,
    "boolean": _Boolean,
    "integer": _Integer,
    "decimal": _Decimal,
    "dateTime": _DateTime,
    "reference": _Reference,
    "binary": _Binary,
}


def _is_empty(value: Any) -> bool:
    # RFC 7643 §2.5: null, an empty array (and, by extension, an empty object) are "unassigned".
    return value is None or value == [] or value == {}


def _dedupe(members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    unique = []
    for member in members:
        if member["value"] not in seen:
            seen.add(member["value"])
            unique.append(member)
    return unique


# --- generated schemas -----------------------------------------------------------------------------------------


def _loadable(attribute: Attribute) -> bool:
    # readOnly values are the server's; writeOnly/never (password) must not be kept at all.
    return attribute.mutability not in ("readOnly", "writeOnly") and attribute.returned != "never"


def _find(attributes: tuple[Attribute, ...], name: str) -> Attribute | None:
    lowered = name.lower()
    return next((a for a in attributes if a.name.lower() == lowered), None)


class _ScimSchema(ma.Schema):
    """Base of every generated schema: case-insensitive names, nulls as absent, unknowns dropped."""

    class Meta:
        unknown = ma.EXCLUDE

    scim_attributes: ClassVar[tuple[Attribute, ...]] = ()
    scim_names: ClassVar[dict[str, Attribute]] = {}  # lower-cased name -> attribute, for every request key

    @ma.pre_load
    def _canonical_names(self, data: Any, **kwargs: Any) -> Any:
        return _canonicalize(data, self.scim_names)

    @ma.post_load
    def _drop_empty(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # In schema order, whatever the request's order: the stored document is served as it is.
        return {name: data[name] for name in self.fields if name in data and not _is_empty(data[name])}


def _canonicalize(data: dict[str, Any], names: dict[str, Attribute],
                  into: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rename keys to their schema spelling (RFC 7643 §2.1); drop nulls and names this schema does not accept."""
    out = {} if into is None else into
    for key, value in data.items():
        if value is None:
            continue
        attribute = names.get(key.lower())
        if attribute is None:
            continue
        if attribute.name in out:
            message = "is given more than once (attribute names are case-insensitive)"
            raise ma.ValidationError({attribute.name: [message]})
        out[attribute.name] = value
    return out


def _field_for(attribute: Attribute, *, owner: str | None) -> _ScimField:
    if owner == GROUP_SCHEMA and attribute.name == "members":
        return _MultiValued(attribute, _Member(attribute))
    if attribute.is_complex:
        inner: _ScimField = _Complex(attribute, _schema_class(attribute.name, attribute.sub_attributes))
    else:
        inner = _SCALARS.get(attribute.type, _String)(attribute)
    if attribute.multi_valued:
        return _MultiValued(attribute, inner)
    return inner


def _schema_class(name: str, attributes: tuple[Attribute, ...], owner: str | None = None,
                  base: type[_ScimSchema] = _ScimSchema,
                  extra_fields: dict[str, fields.Field] | None = None) -> type[_ScimSchema]:
    chosen = tuple(a for a in attributes if _loadable(a))
    declared: dict[str, fields.Field] = {}
    for attribute in chosen:
        field = _field_for(attribute, owner=owner)
        if attribute.required:
            field.required = True
            field.error_messages = {**field.error_messages, "required": "is required"}
        declared[attribute.name] = field
    declared.update(extra_fields or {})
    schema_class = base.from_dict(declared, name=f"{name}Schema")
    schema_class.scim_attributes = chosen
    schema_class.scim_names = {attribute.name.lower(): attribute for attribute in chosen}
    return schema_class


class _ResourceSchema(_ScimSchema):
    """The top level of a resource: core attributes, externalId/meta, and one object per extension.

    marshmallow treats dots in field names as paths and schema URNs contain "2.0", so extensions are
    held under plain field names (`ext0`...) with the URN as data_key, and renamed back after loading.
    """

    extension_keys: ClassVar[dict[str, str]] = {}  # field name -> URN
    core_schema_id: ClassVar[str] = ""

    @ma.pre_load
    def _canonical_names(self, data: Any, **kwargs: Any) -> Any:
        by_urn = {urn.lower(): (name, urn) for name, urn in self.extension_keys.items()}
        out: dict[str, Any] = {}
        plain: dict[str, Any] = {}
        qualified: dict[str, dict[str, Any]] = {}
        for key, value in data.items():
            lowered = key.lower()
            if lowered in by_urn:
                if value is not None:
                    out[by_urn[lowered][1]] = value
                continue
            if lowered.startswith(self.core_schema_id.lower() + ":"):
                plain[key[len(self.core_schema_id) + 1:]] = value
                continue
            # `urn:...:enterprise:2.0:User:department` written at the top level (RFC 7644 §3.10 style).
            prefix = next((urn for urn in by_urn if lowered.startswith(urn + ":")), None)
            if prefix is not None:
                qualified.setdefault(prefix, {})[key[len(prefix) + 1:]] = value
                continue
            plain[key] = value
        _canonicalize(plain, self.scim_names, into=out)
        for lowered_urn, extra in qualified.items():
            urn = by_urn[lowered_urn][1]
            existing = out.get(urn, {})
            if not isinstance(existing, dict):
                continue  # the field reports the wrong type
            merged = {**existing}
            for key, value in extra.items():
                if any(k.lower() == key.lower() for k in merged) and value is not None:
                    raise ma.ValidationError({urn: {key: ["is given more than once"]}})
                merged[key] = value
            out[urn] = merged
        return out

    @ma.post_load
    def _drop_empty(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # An explicit `"members": []` survives: on PUT it means "empty the group", unlike an absent key.
        # Schema order, as above: externalId, the core attributes, then the extensions.
        return {
            self.extension_keys.get(name, name): data[name] for name in self.fields
            if name in data and (not _is_empty(data[name]) or (name == "members" and data[name] == []))
        }


@cache
def _resource_schema(resource_type: ResourceType) -> _ResourceSchema:
    """The schema instance for loading a resource type, built once (see _Complex.schema)."""
    return _resource_schema_class(resource_type)()


def _resource_schema_class(resource_type: ResourceType) -> type[_ResourceSchema]:
    keys: dict[str, str] = {}
    extension_fields: dict[str, fields.Field] = {}
    for index, extension in enumerate(resource_type.extensions):
        name = f"ext{index}"
        keys[name] = extension.id
        as_attribute = Attribute(extension.id, "complex", sub_attributes=extension.attributes)
        extension_schema = _schema_class(extension.name, extension.attributes, owner=extension.id)
        extension_fields[name] = _Complex(as_attribute, extension_schema, data_key=extension.id)
    common = tuple(a for a in COMMON_ATTRIBUTES if a.name != "id")
    schema_class = _schema_class(resource_type.name, (*common, *resource_type.schema.attributes),
                                 owner=resource_type.schema.id, base=_ResourceSchema, extra_fields=extension_fields)
    assert issubclass(schema_class, _ResourceSchema)
    schema_class.extension_keys = keys
    schema_class.core_schema_id = resource_type.schema.id
    return schema_class


# --- public API: resources -------------------------------------------------------------------------------------


def load_resource(resource_type: ResourceType, body: Any) -> dict[str, Any]:
    """Validate a POST/PUT body (or a document produced by PATCH) into a stored *document*.

    The load schema validates the document and shapes it (canonical names, JSON types as the schema says,
    schema order), once, on the way in; reads serve it as stored (see dump_resource).
    Group members come back under "members" as [{"value": id}] (see app.protocol.members) for the caller to
    pop off; everything else in the result is what gets stored.
    """
    if not isinstance(body, dict):
        raise invalid_syntax(f"The request body must be a JSON object, not {_json_kind(body)}")
    try:
        loaded = _resource_schema(resource_type).load(body)
    except ma.ValidationError as error:
        raise invalid_value("; ".join(_flatten(error.messages))) from None
    return loaded


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


def dump_resource(resource_type: ResourceType, document: dict[str, Any], *, id: str, meta: dict[str, Any],
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full SCIM representation of a stored document, ordered as RFC 7643 §8 examples are.

    Stored documents were shaped by the load schema when they were written (load_resource), so a read
    only frames them; running marshmallow again on every read cost more than the rest of a GET.
    """
    present_extensions = [ext.id for ext in resource_type.extensions if ext.id in document]
    out: dict[str, Any] = {"schemas": [resource_type.schema.id, *present_extensions], "id": str(id)}
    out.update(document)
    if extra:
        out.update(extra)
    out["meta"] = meta
    return out


def list_response(resources: list[Any], total: int, start_index: int | None, *, next_cursor: str | None = None,
                  previous_cursor: str | None = None) -> dict[str, Any]:
    """A ListResponse (RFC 7644 §3.4.2); "Resources" is always present so clients can iterate blindly.

    A page by cursor (RFC 9865 §2) has no startIndex (`start_index` None); `nextCursor` is left out only on
    the last page, `previousCursor` on the first."""
    response: dict[str, Any] = {"schemas": [LIST_RESPONSE], "totalResults": total}
    if start_index is not None:
        response["startIndex"] = start_index
    response["itemsPerPage"] = len(resources)
    if next_cursor is not None:
        response["nextCursor"] = next_cursor
    if previous_cursor is not None:
        response["previousCursor"] = previous_cursor
    response["Resources"] = resources
    return response


# --- projection (RFC 7644 §3.4.2.5, §3.9) ----------------------------------------------------------------------

_WHOLE = None  # a trie node that selects the whole value
_Trie = dict[str, Any]


def parse_attribute_list(text: str | None) -> list[str] | None:
    """`"userName, emails[type eq "work"]"` -> `["userName", 'emails[type eq "work"]']`; None or blank -> None.
    A malformed value filter is a 400 invalidFilter here, before anything is read."""
    if not text:
        return None
    names = _split_paths(text)
    for name in names:
        _value_filtered(name)
    return names or None


def _split_paths(text: str) -> list[str]:
    """The comma-separated paths of `text`; a comma inside a value filter's brackets is part of the filter."""
    parts: list[str] = []
    start = depth = 0
    quoted = escaped = False
    for index, char in enumerate(text):
        if quoted:
            escaped, quoted = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            quoted = True
        elif char in "[]":
            depth = max(depth + (1 if char == "[" else -1), 0)
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [part.strip() for part in parts if part.strip()]


@lru_cache(maxsize=256)
def _value_filtered(path: str) -> PatchPath | None:
    """`emails[type eq "work"].value` parsed; None for a path without a value filter (the common case)."""
    selected = parse_selected_path(path) if "[" in path else None
    return selected if selected is not None and selected.filter is not None else None


def has_value_filters(paths: list[str] | None) -> bool:
    """Whether an attributes/excludedAttributes list holds an `attr[filter]` path: projecting with one may cost up
    to MAX_PROJECTION_WORK comparisons per resource, too much for the event loop."""
    return any(_value_filtered(path) is not None for path in paths or ())


def _plain_path(path: str) -> str:
    """The path a value filter narrows: `emails[type eq "work"].value` -> `emails.value`."""
    selected = _value_filtered(path)
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
        selected = _value_filtered(path)
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
        out[key] = [item for item in items if not _is_empty(item)]
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
        return [item for item in items if not _is_empty(item)]
    if isinstance(value, dict):
        out = {}
        for key, sub in value.items():
            if key.lower() in node:
                selected = _select(sub, node[key.lower()])
                if not _is_empty(selected):
                    out[key] = selected
        return out
    return None  # a sub-attribute of a simple value selects nothing


def _exclude(value: Any, node: _Trie) -> Any:
    if isinstance(value, list):
        items = [_exclude(item, node) for item in value]
        return [item for item in items if not _is_empty(item)]
    if isinstance(value, dict):
        out = {}
        for key, sub in value.items():
            lowered = key.lower()
            if lowered not in node:
                out[key] = sub
            elif node[lowered] is not _WHOLE:
                kept = _exclude(sub, node[lowered])
                if not _is_empty(kept):
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
            unfiltered = {segments[0].lower() for path in attributes if _value_filtered(path) is None
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
                if not _is_empty(selected):
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
        trie = _trie(resource_type, [path for path in excluded if _value_filtered(path) is None])
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
            if _value_filtered(path) is not None:
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
        selected = _value_filtered(path)
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
            # `members[members.display pr]` is tolerated as `members[display pr]` (see patch._filter_sub_attribute).
            names.add((current.path.sub or current.path.name).lower())
    return names


@cache
def _returned(resource_type: ResourceType, lowered_name: str) -> str:
    attribute = _find((*COMMON_ATTRIBUTES, *resource_type.schema.attributes), lowered_name)
    return attribute.returned if attribute else "default"


# --- SearchRequest (RFC 7644 §3.4.3) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchRequest:
    attributes: list[str] | None = None
    excluded_attributes: list[str] | None = None
    filter: str | None = None
    sort_by: str | None = None
    sort_order: str | None = None  # "ascending" or "descending"
    start_index: int | None = None
    count: int | None = None
    cursor: str | None = None  # RFC 9865 §3


class _AttributeListField(fields.Field):
    """A list of attribute paths, also accepted as the comma-separated string the query form uses."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return parse_attribute_list(value)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            names = [name for item in value for name in _split_paths(item)]
            for name in names:
                _value_filtered(name)  # a malformed value filter: its invalidFilter, not the body's invalidSyntax
            return names or None
        raise ma.ValidationError(f"must be an array of attribute names, got {_describe(value)}")


class _TextField(fields.Field):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str):
            raise ma.ValidationError(f"must be a string, got {_describe(value)}")
        return value


class _WholeNumberField(fields.Field):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ma.ValidationError(f"must be an integer, got {_describe(value)}")


class _SearchRequestSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    schemas = fields.Raw(required=True, error_messages={"required": "is required"})
    attributes = _AttributeListField()
    excluded_attributes = _AttributeListField(data_key="excludedAttributes")
    filter = _TextField()
    sort_by = _TextField(data_key="sortBy")
    sort_order = _TextField(data_key="sortOrder",
                            validate=ma.validate.OneOf(["ascending", "descending"],
                                                       error='must be "ascending" or "descending"'))
    start_index = _WholeNumberField(data_key="startIndex")
    count = _WholeNumberField()
    cursor = _TextField()

    _KEYS: ClassVar[dict[str, str]] = {
        name.lower(): name for name in
        ("schemas", "attributes", "excludedAttributes", "filter", "sortBy", "sortOrder", "startIndex", "count",
         "cursor")
    }

    @ma.pre_load
    def _canonical_names(self, data: Any, **kwargs: Any) -> Any:
        out = {}
        for key, value in data.items():
            canonical = self._KEYS.get(key.lower())
            if canonical is not None and value is not None:
                out[canonical] = value.lower() if canonical == "sortOrder" and isinstance(value, str) else value
        return out

    @ma.validates("schemas")
    def _search_request_schema(self, value: Any, **kwargs: Any) -> None:
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or SEARCH_REQUEST.lower() not in {
            v.lower() for v in values if isinstance(v, str)
        }:
            raise ma.ValidationError(f"must contain {SEARCH_REQUEST}")

    @ma.post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> SearchRequest:
        data.pop("schemas", None)
        # RFC 7644 §3.4.2.4: startIndex below 1 means 1, a negative count means 0.
        if data.get("start_index") is not None:
            data["start_index"] = max(1, data["start_index"])
        if data.get("count") is not None:
            data["count"] = max(0, data["count"])
        return SearchRequest(**data)


_SEARCH_REQUEST_SCHEMA = _SearchRequestSchema()


def load_search_request(body: Any) -> SearchRequest:
    """Validate a POST /.search body; any departure from the message schema is 400 invalidSyntax."""
    if not isinstance(body, dict):
        raise invalid_syntax(f"The request body must be a JSON object, not {_json_kind(body)}")
    try:
        return _SEARCH_REQUEST_SCHEMA.load(body)
    except ma.ValidationError as error:
        raise invalid_syntax("Invalid SearchRequest: " + "; ".join(_flatten(error.messages))) from None

