"""The SCIM representation of stored resources (RFC 7643 §3, §8) and of lists of them (RFC 7644 §3.4.2)."""

from __future__ import annotations

from typing import Any

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
