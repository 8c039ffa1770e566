"""Loading SCIM resources (RFC 7643 §2-§4): a POST/PUT body (or a patched document) validated into a stored document.

The marshmallow schemas here are generated from `schema_defs`, so adding an attribute there is the
whole change: loading, shaping and projection follow. A *document* is what gets stored: every
client-writable attribute under its canonical name, extensions under their schema URN, and nothing
the server owns (id, meta, schemas, readOnly attributes) or must never keep (password).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any, ClassVar, TypeVar

import marshmallow as ma
import orjson
from marshmallow import fields

from app.protocol.attribute_values import is_unassigned
from app.protocol.errors import describe as _describe
from app.protocol.errors import invalid_syntax, invalid_value
from app.protocol.members import MemberError, member_id
from app.protocol.schema_defs import COMMON_ATTRIBUTES, GROUP_SCHEMA, Attribute, ResourceType
from app.protocol.validation_errors import flatten_errors, json_kind

# The most values one multi-valued attribute of a resource may hold (emails, phoneNumbers, addresses, roles...):
# a person has a handful, and every PATCH and every read costs in proportion to them. Group members are not
# counted here: they live in a table of their own and are never held in a document.
MAX_MULTI_VALUES = 1000


_Schema = TypeVar("_Schema", bound="_ScimSchema")


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
            self._schema = _instance(self.schema_class)
        return self._schema

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        # Entra PATCHes the enterprise manager as a bare id string; `value` is what it means.
        if isinstance(value, str) and self.scim.sub("value") is not None:
            value = {"value": value}
        if not isinstance(value, dict):
            raise ma.ValidationError(f"must be an object, got {_describe(value)}")
        return self.schema.load_object(value)


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
            if not is_unassigned(loaded):
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


class _ScimSchema(ma.Schema):
    """Base of every generated schema: case-insensitive names, nulls as absent, unknowns dropped.

    Load through `load_document`, not `load`: it renames the request's keys before marshmallow sees them and
    drops unassigned values after, as plain calls rather than pre_load/post_load hooks, whose dispatch cost more
    than the work they did (three loads per User, each through four processor passes).
    """

    class Meta:
        unknown = ma.EXCLUDE

    scim_names: ClassVar[dict[str, Attribute]] = {}  # lower-cased name -> attribute, for every request key
    field_order: ClassVar[tuple[str, ...]] = ()  # the declared field names, in schema order
    all_optional: ClassVar[bool] = True  # no attribute is required (see _instance)
    optional_fields: ClassVar[frozenset[str]] = frozenset()  # the names of the fields that are not required
    required_fields: ClassVar[frozenset[str]] = frozenset()  # and those that are

    def load_document(self, data: dict[str, Any]) -> dict[str, Any]:
        canonical = self.canonical_names(data)
        # With every required attribute present, partial=True changes nothing but what marshmallow skips: the
        # absent optional attributes (15 of the User's 21 in an identity provider's POST), each of which would
        # otherwise run the whole field machinery. A required one absent loads in full, so marshmallow names it.
        return self.drop_empty(self.load(canonical, partial=True if self.required_fields.issubset(canonical)
                                         else None))

    def load_object(self, data: dict[str, Any]) -> dict[str, Any]:
        """What load_document gives for a sub-object (name, an extension, the manager), through the same fields.

        Schema.load sets up its error store, hooks and partial handling per call, which cost more than the two to
        five fields of a sub-object (a User's POST loads three). These schemas have no hooks or schema validators
        and no data_key, so the fields themselves, in schema order, are the whole load; the errors come keyed and
        ordered as Schema.load keys them (tests/protocol/test_resource_loading.py holds the two alike).
        """
        canonical = self.canonical_names(data)
        loaded: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for name, field in self.fields.items():
            if name not in canonical:
                if field.required:
                    errors[name] = [field.error_messages["required"]]
                continue
            try:
                loaded[name] = field.deserialize(canonical[name], name, canonical)
            except ma.ValidationError as error:
                errors[name] = error.messages
        if errors:
            raise ma.ValidationError(errors)
        return self.drop_empty(loaded)

    def canonical_names(self, data: dict[str, Any]) -> dict[str, Any]:
        return _canonicalize(data, self.scim_names)

    def drop_empty(self, data: dict[str, Any]) -> dict[str, Any]:
        # In schema order, whatever the request's order: the stored document is served as it is.
        return {name: data[name] for name in self.field_order if name in data and not is_unassigned(data[name])}


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
    # from_dict makes a subclass of `base`; typeshed-wise marshmallow says only "a Schema".
    schema_class = base.from_dict(declared, name=f"{name}Schema")
    assert issubclass(schema_class, _ScimSchema)
    schema_class.scim_names = {attribute.name.lower(): attribute for attribute in chosen}
    schema_class.field_order = tuple(declared)
    schema_class.all_optional = not any(field.required for field in declared.values())
    schema_class.optional_fields = frozenset(name for name, field in declared.items() if not field.required)
    schema_class.required_fields = frozenset(declared) - schema_class.optional_fields
    return schema_class


class _ResourceSchema(_ScimSchema):
    """The top level of a resource: core attributes, externalId/meta, and one object per extension.

    marshmallow treats dots in field names as paths and schema URNs contain "2.0", so extensions are
    held under plain field names (`ext0`...) with the URN as data_key, and renamed back after loading.
    """

    extension_keys: ClassVar[dict[str, str]] = {}  # field name -> URN
    core_schema_id: ClassVar[str] = ""
    urns: ClassVar[dict[str, str]] = {}  # lower-cased extension URN -> URN
    extension_fields: ClassVar[dict[str, str]] = {}  # URN -> field name
    qualified_prefixes: ClassVar[tuple[str, ...]] = ()  # lower-cased "urn:...:" that qualify an attribute's name
    all_fields: ClassVar[frozenset[str]] = frozenset()

    def canonical_names(self, data: dict[str, Any]) -> dict[str, Any]:
        by_urn = self.urns
        core_prefix = self.core_schema_id.lower() + ":"
        out: dict[str, Any] = {}
        plain: dict[str, Any] = {}
        qualified: dict[str, dict[str, Any]] = {}
        for key, value in data.items():
            lowered = key.lower()
            if lowered in by_urn:
                if value is not None:
                    out[by_urn[lowered]] = value
                continue
            if not lowered.startswith(self.qualified_prefixes):  # most keys: one C call, not one per URN
                plain[key] = value
                continue
            if lowered.startswith(core_prefix):
                plain[key[len(core_prefix):]] = value
                continue
            # `urn:...:enterprise:2.0:User:department` written at the top level (RFC 7644 §3.10 style).
            prefix = next((urn for urn in by_urn if lowered.startswith(urn + ":")), None)
            if prefix is not None:
                qualified.setdefault(prefix, {})[key[len(prefix) + 1:]] = value
                continue
            plain[key] = value
        _canonicalize(plain, self.scim_names, into=out)
        for lowered_urn, extra in qualified.items():
            urn = by_urn[lowered_urn]
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

    def field_name(self, name: str) -> str:
        """The field that loads the document's attribute `name` (an extension's URN names a field of its own)."""
        return self.extension_fields.get(name, name)

    def field_names_of(self, names: Iterable[str]) -> list[str]:
        return [self.field_name(name) for name in names]

    def drop_empty(self, data: dict[str, Any]) -> dict[str, Any]:
        # An explicit `"members": []` survives: on PUT it means "empty the group", unlike an absent key.
        # Schema order, as above: externalId, the core attributes, then the extensions.
        return {
            self.extension_keys.get(name, name): data[name] for name in self.field_order
            if name in data and (not is_unassigned(data[name]) or (name == "members" and data[name] == []))
        }


@cache
def _resource_schema(resource_type: ResourceType) -> _ResourceSchema:
    """The schema instance for loading a resource type, built once (see _Complex.schema)."""
    return _instance(_resource_schema_class(resource_type))


def _instance(schema_class: type[_Schema]) -> _Schema:
    # partial=True makes marshmallow skip an absent attribute outright, where it would otherwise run the whole
    # field machinery to learn that an optional attribute is missing. It also waives `required`, so only a
    # schema without required attributes gets it (a list of the optional names would keep them, but marshmallow
    # then filters that list once per present attribute, which costs more than it saves).
    return schema_class(partial=True) if schema_class.all_optional else schema_class()


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
    schema_class.urns = {urn.lower(): urn for urn in keys.values()}
    schema_class.extension_fields = {urn: name for name, urn in keys.items()}
    schema_class.qualified_prefixes = tuple(f"{urn.lower()}:" for urn in (resource_type.schema.id, *keys.values()))
    schema_class.all_fields = frozenset(schema_class.field_order)
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
        raise invalid_syntax(f"The request body must be a JSON object, not {json_kind(body)}")
    try:
        loaded = _resource_schema(resource_type).load_document(body)
    except ma.ValidationError as error:
        raise invalid_value("; ".join(flatten_errors(error.messages))) from None
    return loaded


def load_patched(resource_type: ResourceType, stored: dict[str, Any], patched: Any) -> dict[str, Any]:
    """What load_resource(resource_type, patched) gives, for `patched` made by a PATCH of `stored`, a document
    load_resource made when it was written: the same document, or the same ScimError.

    Loading a valid document again gives it back unchanged, so only the top-level attributes the PATCH changed
    are loaded again (a PATCH of `active` loads one boolean, not the whole User). Unchanged means the same JSON,
    type and key order included (True is not 1 here); the rest of the stored document is kept as it is. A
    required attribute the PATCH removed is left out of `partial`, so marshmallow reports it as the full load
    would. tests/protocol/test_patched_loading.py holds the two loads to the same outcome for any PATCH.
    """
    if not isinstance(patched, dict):
        return load_resource(resource_type, patched)
    schema = _resource_schema(resource_type)
    try:
        canonical = schema.canonical_names(patched)
        changed = {name: value for name, value in canonical.items()
                   if name not in stored or orjson.dumps(value) != orjson.dumps(stored[name])}
        kept = {name for name in stored if name in canonical and name not in changed}
        # Absent is fine for an optional attribute and for a kept one; a required attribute neither kept nor
        # changed was removed, and marshmallow says so. partial=True when there is none such: marshmallow filters
        # a collection once per loaded attribute.
        removed = schema.required_fields.difference(schema.field_names_of(kept), schema.field_names_of(changed))
        loaded = schema.load(changed, partial=schema.all_fields - removed if removed else True)
    except ma.ValidationError as error:
        raise invalid_value("; ".join(flatten_errors(error.messages))) from None
    return schema.drop_empty({**{schema.field_name(name): stored[name] for name in kept}, **loaded})
