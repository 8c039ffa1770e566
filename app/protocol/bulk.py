"""Bulk (RFC 7644 §3.7), with no I/O: reading a BulkRequest, the order its operations run in, resolving
`bulkId:` references, and the BulkResponse.

An operation that is malformed fails alone (it gets an error of its own in the response); only a request that
is not a BulkRequest at all, or holds more than maxOperations operations, fails as a whole.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.protocol import errors
from app.protocol.schema_defs import RESOURCE_TYPES, ResourceType

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
# RFC 7644 §3.7.2: a value "bulkId:qwerty" stands for the id of the resource the POST with bulkId "qwerty" creates.
REFERENCE_PREFIX = "bulkId:"
# How any string that starts with the prefix begins in JSON: none of its characters is ever escaped.
_REFERENCE_IN_JSON = b'"' + REFERENCE_PREFIX.encode()
METHODS = ("POST", "PUT", "PATCH", "DELETE")
# The status of an operation that succeeded, by method (RFC 7644 §3.7.3).
SUCCESS_STATUS = {"POST": 201, "PUT": 200, "PATCH": 200, "DELETE": 204}


@dataclass(frozen=True)
class BulkOperation:
    """One entry of Operations, as far as it could be read; `error` says why it cannot run, if it cannot."""

    index: int
    method: str | None = None
    bulk_id: str | None = None
    version: str | None = None
    resource_type: ResourceType | None = None
    # The id in the path of a PUT, PATCH or DELETE, which may be a reference ("bulkId:qwerty").
    resource_id: str | None = None
    data: Any = None
    # The bulkIds this operation references, in its path and anywhere in its data.
    references: frozenset[str] = frozenset()
    error: errors.ScimError | None = None


@dataclass(frozen=True)
class BulkRequest:
    operations: list[BulkOperation]
    fail_on_errors: int | None = None


@dataclass
class BulkResult:
    """What one operation did, for its entry in the BulkResponse."""

    method: str | None
    bulk_id: str | None
    status: int
    location: str | None = None
    version: str | None = None
    error: errors.ScimError | None = None


@dataclass(frozen=True)
class Plan:
    """The order the operations run in: the request's order, except that an operation that references a bulkId
    waits until the POST that declares it has run. `circular` holds the operations that could never run because
    their references wait on each other (RFC 7644 §3.7.1); they come last, and fail."""

    order: list[int]
    circular: frozenset[int] = field(default_factory=frozenset)
    # bulkId -> index of the POST that declares it (the first one, when a client repeats a bulkId).
    declared: Mapping[str, int] = field(default_factory=dict)


def _lower_keys(data: dict[Any, Any]) -> dict[Any, Any]:
    # Attribute names are case-insensitive (RFC 7643 §2.1): "Operations", "operations", "failOnErrors", "METHOD".
    return {key.lower() if isinstance(key, str) else key: value for key, value in data.items()}


def parse_bulk_request(body: Any, max_operations: int) -> BulkRequest:
    """Read a BulkRequest (RFC 7644 §3.7). Raises for a request that cannot be a BulkRequest, and 413 for one
    with more than `max_operations` operations (§3.7.4); each operation's own faults are in its `error`."""
    if not isinstance(body, dict):
        raise errors.invalid_syntax("A Bulk request body must be a JSON object (a BulkRequest message).")
    fields = _lower_keys(body)
    schemas = fields.get("schemas")
    if schemas is not None and (not isinstance(schemas, list)
                                or BULK_REQUEST.lower() not in {s.lower() for s in schemas if isinstance(s, str)}):
        raise errors.invalid_syntax(f"A BulkRequest must list {BULK_REQUEST!r} in 'schemas'.")
    operations = fields.get("operations")
    if not isinstance(operations, list):
        raise errors.invalid_syntax("A BulkRequest needs 'Operations': a list of operations.")
    if len(operations) > max_operations:
        raise errors.ScimError(413, f"The bulk request holds {len(operations):,} operations, more than the "
                                    f"maxOperations ({max_operations:,}) of this server's ServiceProviderConfig. "
                                    "Split it into smaller Bulk requests.")
    fail_on_errors = fields.get("failonerrors")
    if fail_on_errors is not None and (not isinstance(fail_on_errors, int) or isinstance(fail_on_errors, bool)
                                       or fail_on_errors < 1):
        raise errors.invalid_value(f"failOnErrors must be a positive integer, not {fail_on_errors!r}.")
    parsed: list[BulkOperation] = []
    seen: set[str] = set()
    for index, operation in enumerate(operations):
        parsed.append(_operation(index, operation, seen))
    return BulkRequest(parsed, fail_on_errors)


def _operation(index: int, raw: Any, seen: set[str]) -> BulkOperation:
    if not isinstance(raw, dict):
        return BulkOperation(index, error=errors.invalid_syntax(
            f"Operation {index + 1} must be an object with 'method' and 'path'."))
    fields = _lower_keys(raw)
    method = fields.get("method")
    method = method.upper() if isinstance(method, str) else None
    bulk_id = fields.get("bulkid")
    if bulk_id is not None and (not isinstance(bulk_id, str) or not bulk_id or "\x00" in bulk_id):
        return BulkOperation(index, method, error=errors.invalid_value(
            f"Operation {index + 1}: bulkId must be a non-empty string, not {bulk_id!r}."))
    version = fields.get("version")
    data = fields.get("data")

    def failed(error: errors.ScimError) -> BulkOperation:
        return BulkOperation(index, method, bulk_id, error=error)

    if method not in METHODS:
        return failed(errors.invalid_value(
            f"Operation {index + 1}: method must be one of {', '.join(METHODS)}, not {fields.get('method')!r}."))
    if version is not None and not isinstance(version, str):
        return failed(errors.invalid_value(f"Operation {index + 1}: version must be a string (an ETag)."))
    if method == "POST" and bulk_id is not None:
        if bulk_id in seen:
            return failed(errors.invalid_value(
                f"Operation {index + 1}: bulkId {bulk_id!r} is already used by an earlier operation; a bulkId "
                "must be unique within a Bulk request."))
        seen.add(bulk_id)
    path = fields.get("path")
    if not isinstance(path, str):
        return failed(errors.invalid_value(f"Operation {index + 1}: path must be a string such as '/Users'."))
    resource_type, resource_id = _parse_path(path)
    if resource_type is None:
        known = " or ".join(t.endpoint for t in RESOURCE_TYPES)
        return failed(errors.not_found(f"Operation {index + 1}: there is nothing at {path!r}; rollcall serves "
                                       f"{known}."))
    if method == "POST" and resource_id is not None:
        return failed(errors.invalid_value(
            f"Operation {index + 1}: a POST's path names the collection ({resource_type.endpoint}), not {path!r}."))
    if method != "POST" and resource_id is None:
        return failed(errors.invalid_value(
            f"Operation {index + 1}: a {method}'s path names one resource ({resource_type.endpoint}/{{id}}), "
            f"not {path!r}."))
    if method != "DELETE" and not isinstance(data, dict):
        return failed(errors.invalid_syntax(f"Operation {index + 1}: a {method} needs 'data', a JSON object."))
    references = set(references_in(data)) if method != "DELETE" else set()
    if resource_id is not None and resource_id.startswith(REFERENCE_PREFIX):
        references.add(resource_id[len(REFERENCE_PREFIX):])
    return BulkOperation(index, method, bulk_id, version, resource_type, resource_id,
                         data if method != "DELETE" else None, frozenset(references))


def _parse_path(path: str) -> tuple[ResourceType | None, str | None]:
    """`/Users` -> (User, None); `/Groups/abc` -> (Group, "abc"); anything else -> (None, None)."""
    parts = [part for part in path.split("/") if part]
    if not 1 <= len(parts) <= 2:
        return None, None
    resource_type = next((t for t in RESOURCE_TYPES if t.endpoint.strip("/").lower() == parts[0].lower()), None)
    return resource_type, (parts[1] if len(parts) == 2 else None)


def _containers(data: Any) -> Iterator[dict[Any, Any] | list[Any]]:
    """Every object and array in `data`, walked without recursion (a body may nest as deep as JSON allows)."""
    stack = [data] if isinstance(data, dict | list) else []
    while stack:
        container = stack.pop()
        yield container
        values = container.values() if isinstance(container, dict) else container
        stack.extend(value for value in values if isinstance(value, dict | list))


def _is_reference(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(REFERENCE_PREFIX)


def _may_hold_references(data: Any) -> bool:
    # parse_bulk_request runs on the event loop, and walking an import's Users value by value in Python took
    # most of the loop's time under Bulk load (12 Users of 1,400 e-mails and phone numbers: ~2 ms each). Their
    # JSON, written in C, shows whether any string starts with the prefix; a key that does, or JSON orjson will
    # not write (nested deeper than its limit), only sends the data on to the walk, which decides.
    try:
        return _REFERENCE_IN_JSON in orjson.dumps(data)
    except orjson.JSONEncodeError:
        return True


def references_in(data: Any) -> Iterator[str]:
    """The bulkIds that `data` references: every string value "bulkId:<id>", at any depth."""
    if not _may_hold_references(data):
        return
    for container in _containers(data):
        values = container.values() if isinstance(container, dict) else container
        yield from (value[len(REFERENCE_PREFIX):] for value in values if _is_reference(value))


def resolve_references(data: Any, ids: Mapping[str, str]) -> Any:
    """Replace, in place, every "bulkId:<id>" value in `data` whose bulkId `ids` maps to a resource id."""
    def resolved(value: Any) -> Any:
        return ids.get(value[len(REFERENCE_PREFIX):], value) if _is_reference(value) else value

    for container in _containers(data):
        if isinstance(container, dict):
            for key, value in container.items():
                if _is_reference(value):
                    container[key] = resolved(value)
        else:
            for position, value in enumerate(container):
                if _is_reference(value):
                    container[position] = resolved(value)
    return resolved(data)


def plan(operations: list[BulkOperation]) -> Plan:
    """The order to run `operations` in (see Plan): the request's order, each operation as early as its
    references allow. A reference to a bulkId that no POST declares is no reason to wait; it fails when its
    operation runs."""
    declared: dict[str, int] = {}
    for operation in operations:
        if operation.method == "POST" and operation.bulk_id is not None:
            declared.setdefault(operation.bulk_id, operation.index)
    waiting_on: dict[int, int] = {}
    dependents: dict[int, list[int]] = {}
    for operation in operations:
        needs = {declared[ref] for ref in operation.references if ref in declared}
        waiting_on[operation.index] = len(needs)
        for declaring in needs:
            dependents.setdefault(declaring, []).append(operation.index)
    ready = [index for index, count in waiting_on.items() if count == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for dependent in dependents.get(index, ()):
            waiting_on[dependent] -= 1
            if waiting_on[dependent] == 0:
                heapq.heappush(ready, dependent)
    circular = sorted(index for index, count in waiting_on.items() if count > 0)
    return Plan(order + circular, frozenset(circular), declared)


def circular_reference(operation: BulkOperation) -> errors.ScimError:
    names = ", ".join(sorted(repr(ref) for ref in operation.references))
    return errors.ScimError(409, f"Operation {operation.index + 1} is part of a circular reference (it references "
                                 f"bulkId {names}, whose POST waits, directly or not, on this operation), which "
                                 "rollcall does not resolve (RFC 7644 §3.7.1). Send these operations without the "
                                 "circular reference and PATCH it in afterwards.")


def unresolved_reference(operation: BulkOperation, bulk_id: str, declared: bool) -> errors.ScimError:
    why = "failed" if declared else "is not in this request"
    return errors.ScimError(409, f"Operation {operation.index + 1} references bulkId {bulk_id!r}, but the POST with "
                                 f"that bulkId {why}, so there is no resource to refer to.")


def bulk_response(results: list[BulkResult]) -> dict[str, Any]:
    """The BulkResponse message (RFC 7644 §3.7.3): one entry per operation that ran, errors with their body."""
    entries = []
    for result in results:
        entry: dict[str, Any] = {}
        if result.method is not None:
            entry["method"] = result.method
        if result.bulk_id is not None:
            entry["bulkId"] = result.bulk_id
        if result.version is not None:
            entry["version"] = result.version
        if result.location is not None:
            entry["location"] = result.location
        entry["status"] = str(result.status)
        if result.error is not None:
            entry["response"] = result.error.body()
        entries.append(entry)
    return {"schemas": [BULK_RESPONSE], "Operations": entries}
