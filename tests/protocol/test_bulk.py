"""Reading a BulkRequest, planning its order and resolving bulkIds (RFC 7644 §3.7), without I/O."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.protocol import errors
from app.protocol.bulk import (
    BULK_REQUEST,
    BULK_RESPONSE,
    BulkResult,
    bulk_response,
    parse_bulk_request,
    plan,
    references_in,
    resolve_references,
)
from app.protocol.schema_defs import GROUP_RESOURCE, USER_RESOURCE


def request(*operations: Any, **extra: Any) -> dict[str, Any]:
    return {"schemas": [BULK_REQUEST], "Operations": list(operations), **extra}


# RFC 7644 §3.7.2's request: a user, and a group whose member is that user by bulkId.
RFC_3_7_2 = request(
    {"method": "POST", "path": "/Users", "bulkId": "qwerty",
     "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "Alice"}},
    {"method": "POST", "path": "/Groups", "bulkId": "ytrewq",
     "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Tour Guides",
              "members": [{"type": "User", "value": "bulkId:qwerty"}]}},
)


def test_rfc_3_7_2_request_is_read_with_its_references() -> None:
    parsed = parse_bulk_request(RFC_3_7_2, 1000)
    user, group = parsed.operations
    assert (user.method, user.bulk_id, user.resource_type, user.resource_id) == ("POST", "qwerty", USER_RESOURCE, None)
    assert group.resource_type is GROUP_RESOURCE and group.references == frozenset({"qwerty"})
    assert parsed.fail_on_errors is None and user.error is None and group.error is None


def test_member_names_and_methods_in_any_case_and_the_path_reference() -> None:
    parsed = parse_bulk_request({"schemas": [BULK_REQUEST.upper()], "operations": [
        {"METHOD": "patch", "Path": "/groups/bulkId:g/", "Version": 'W/"3"', "Data": {"Operations": []}}],
        "FailOnErrors": 2}, 10)
    (operation,) = parsed.operations
    assert operation.error is None, operation.error
    assert (operation.method, operation.resource_type, operation.resource_id) == ("PATCH", GROUP_RESOURCE,
                                                                                 "bulkId:g")
    assert operation.version == 'W/"3"' and operation.references == frozenset({"g"}) and parsed.fail_on_errors == 2


def test_the_request_as_a_whole_is_refused_only_when_it_is_no_bulk_request() -> None:
    for body in (None, [], {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []},
                 request(), {"schemas": [BULK_REQUEST], "Operations": {}}):
        if body == request():
            continue
        with pytest.raises(errors.ScimError) as raised:
            parse_bulk_request(body, 10)
        assert raised.value.status == 400
    for fail_on_errors in (0, -1, True, "1", 1.5):
        with pytest.raises(errors.ScimError):
            parse_bulk_request(request(failOnErrors=fail_on_errors), 10)
    assert parse_bulk_request(request(), 10).operations == []


def test_rfc_3_7_4_more_than_max_operations_is_413_naming_the_limit() -> None:
    with pytest.raises(errors.ScimError) as raised:
        parse_bulk_request(request(*[{"method": "DELETE", "path": "/Users/x"}] * 3), 2)
    assert raised.value.status == 413 and raised.value.scim_type is None
    assert "maxOperations (2)" in raised.value.detail


def test_each_faulty_operation_gets_its_own_error() -> None:
    parsed = parse_bulk_request(request(
        7, {"method": "GET", "path": "/Users"}, {"method": "POST", "path": "/Elsewhere", "data": {}},
        {"method": "POST", "path": "/Users/abc", "data": {}}, {"method": "PATCH", "path": "/Users", "data": {}},
        {"method": "PUT", "path": "/Users/abc", "data": []}, {"method": "POST", "path": "/Users", "bulkId": 5},
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": {}},
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": {}},
        {"method": "DELETE", "path": "/Users/abc", "version": 3},
    ), 100)
    statuses = [op.error.status if op.error else None for op in parsed.operations]
    assert statuses == [400, 400, 404, 400, 400, 400, 400, None, 400, 400]


def test_references_anywhere_in_the_data_walked_without_recursion() -> None:
    data = {"members": [{"value": "bulkId:a"}, {"value": "plain"}], "x": {"y": ["bulkId:b", {"z": "bulkId:a"}]}}
    assert sorted(references_in(data)) == ["a", "a", "b"]
    resolved = resolve_references(data, {"a": "id-a", "b": "id-b"})
    assert resolved == {"members": [{"value": "id-a"}, {"value": "plain"}], "x": {"y": ["id-b", {"z": "id-a"}]}}
    deep: Any = "bulkId:a"
    for _ in range(5000):  # deeper than Python's recursion limit
        deep = [deep]
    assert list(references_in(deep)) == ["a"]
    resolve_references(deep, {"a": "id-a"})


_STRINGS = st.sampled_from(["bulkId:a", "bulkId:", "bulkId:\"q\\", "bulkId:é", "xbulkId:b", "bulkid:c", "plain", ""])
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | _STRINGS,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_STRINGS, inner, max_size=3),
                     max_leaves=12)


def _every_reference(data: Any) -> list[str]:
    if isinstance(data, str):
        return [data[len("bulkId:"):]] if data.startswith("bulkId:") else []
    values = data.values() if isinstance(data, dict) else data if isinstance(data, list) else []
    return [found for value in values for found in _every_reference(value)]


@given(st.dictionaries(_STRINGS, _JSON, max_size=4))
def test_every_string_value_starting_bulkId_is_a_reference_and_nothing_else_is(data: dict[str, Any]) -> None:
    # Keys that start with the prefix, the prefix inside a value or in another case, are not references.
    assert sorted(references_in(data)) == sorted(_every_reference(data))


def ops(*specs: tuple[str, str | None, list[str]]) -> list[Any]:
    """Operations from (method, bulkId, references)."""
    operations = []
    for method, bulk_id, refs in specs:
        data = {"members": [{"value": f"bulkId:{r}"} for r in refs]}
        operation = {"method": method, "path": "/Groups" if method == "POST" else "/Groups/x", "data": data}
        if bulk_id:
            operation["bulkId"] = bulk_id
        operations.append(operation)
    return parse_bulk_request(request(*operations), 10_000).operations


def test_plan_keeps_the_request_order_and_defers_what_waits_on_a_later_post() -> None:
    planned = plan(ops(("PATCH", None, ["u"]), ("POST", "g", ["u"]), ("POST", "u", []), ("POST", "v", [])))
    assert planned.order == [2, 0, 1, 3] and not planned.circular
    assert planned.declared == {"g": 1, "u": 2, "v": 3}


def test_plan_puts_circular_references_last_and_marks_them() -> None:
    planned = plan(ops(("POST", "a", ["b"]), ("POST", "b", ["a"]), ("POST", "self", ["self"]), ("POST", "c", []),
                       ("PATCH", None, ["a"]), ("PATCH", None, ["missing"])))
    assert planned.order == [3, 5, 0, 1, 2, 4]
    # An operation behind a cycle can never run either.
    assert planned.circular == frozenset({0, 1, 2, 4})


def test_plan_of_a_long_chain_has_no_recursion() -> None:
    chain = [("POST", f"n{i}", [f"n{i + 1}"] if i < 2999 else []) for i in range(3000)]
    assert plan(ops(*chain)).order == list(reversed(range(3000)))


def test_bulk_response_shape_follows_rfc_3_7_3() -> None:
    error = errors.invalid_syntax("Request is unparsable.")
    body = bulk_response([
        BulkResult("POST", "qwerty", 201, "https://x/scim/v2/Users/1", 'W/"1"'),
        BulkResult("POST", "ytrewq", 400, error=error),
        BulkResult("DELETE", None, 204, "https://x/scim/v2/Users/2"),
    ])
    assert body == {"schemas": [BULK_RESPONSE], "Operations": [
        {"method": "POST", "bulkId": "qwerty", "version": 'W/"1"', "location": "https://x/scim/v2/Users/1",
         "status": "201"},
        {"method": "POST", "bulkId": "ytrewq", "status": "400", "response": error.body()},
        {"method": "DELETE", "location": "https://x/scim/v2/Users/2", "status": "204"},
    ]}
