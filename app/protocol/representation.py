"""The SCIM representation of stored resources (RFC 7643 §3, §8) and of lists of them (RFC 7644 §3.4.2)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import orjson

from app.protocol.schema_defs import LIST_RESPONSE, ResourceType


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


class PageFramer:
    """orjson.dumps(dump_resource(...)) for the resources of one list page, byte for byte, from each stored
    document's JSON text without parsing it, with the meta that `Directory.render` gives each
    (resourceType, created, lastModified, location, version), built as bytes: a dict and an orjson.dumps of it per
    resource cost a fifth of a page's framing. Strings are still encoded by orjson, so that any id or timestamp
    comes out escaped exactly as orjson.dumps(meta) escapes it; a resource's id is encoded once, for "id" and
    for the end of "location".

    The document's members are spliced between "id" and the extras, as dump_resource orders them. That holds for
    a document as load_resource shaped it (the stored ones): it has none of the framing's keys (schemas, id, the
    extras, meta), and its only top-level key that names an extension is the extension's own (a key is
    `"<urn>":`, which no escaped string value can contain)."""

    __slots__ = ("_etag", "_etags", "_head", "_location", "_meta_head", "_names")

    def __init__(self, resource_type: ResourceType, location_prefix: str, etag: Callable[[int], str]) -> None:
        self._head = _frame(resource_type).head
        self._meta_head = b',"meta":{"resourceType":' + orjson.dumps(resource_type.name) + b',"created":'
        self._location = b',"location":' + orjson.dumps(location_prefix)[:-1]  # open: the id's text follows
        self._etag = etag
        self._etags: dict[int, bytes] = {}  # most resources of a page share a few versions
        self._names: dict[str, bytes] = {}

    def member(self, name: str, value_json: bytes) -> bytes:
        """An extra member, `value_json` being its value's JSON text, for `encode`'s `extra_json`."""
        key = self._names.get(name)
        if key is None:
            key = self._names[name] = b"," + orjson.dumps(name) + b":"
        return key + value_json

    def encode(self, document_json: bytes, id: str, created: str, last_modified: str, version: int,
               extra_json: bytes = b"") -> bytes:
        dumps = orjson.dumps
        etag = self._etags.get(version)
        if etag is None:
            etag = self._etags[version] = b',"version":' + dumps(self._etag(version)) + b"}}"
        id_json = dumps(id)
        inner = document_json[1:-1]
        # One join for the whole resource: a second for the meta cost a tenth of this.
        return b"".join((self._head(document_json), id_json, b"," if inner else b"", inner, extra_json,
                         self._meta_head, dumps(created), b',"lastModified":', dumps(last_modified),
                         self._location, id_json[1:], etag))


class _Frame:
    """A resource type's JSON up to the value of "id", for each set of extensions a document may hold."""

    def __init__(self, resource_type: ResourceType) -> None:
        self.resource_type = resource_type
        self.keys = tuple(orjson.dumps(ext.id) + b":" for ext in resource_type.extensions)
        self._heads: dict[tuple[bool, ...], bytes] = {}
        self._bare = self._head(tuple(False for _ in self.keys))
        self._with_one = self._head((True,)) if len(self.keys) == 1 else b""
        # The User's enterprise extension: a type of one extension makes no tuple per resource (a list page asks
        # 100 times).
        self._one_key = self.keys[0] if len(self.keys) == 1 else None

    def head(self, document_json: bytes) -> bytes:
        one_key = self._one_key
        if one_key is not None:
            return self._with_one if one_key in document_json else self._bare
        keys = self.keys
        if not keys:
            return self._bare
        present = tuple(key in document_json for key in keys)
        return self._heads.get(present) or self._head(present)

    def _head(self, present: tuple[bool, ...]) -> bytes:
        extensions = [ext.id for ext, there in zip(self.resource_type.extensions, present, strict=True) if there]
        head = b'{"schemas":' + orjson.dumps([self.resource_type.schema.id, *extensions]) + b',"id":'
        self._heads[present] = head
        return head


@functools.cache
def _frame(resource_type: ResourceType) -> _Frame:
    return _Frame(resource_type)


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
