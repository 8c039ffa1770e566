"""POST /Bulk as RFC 7644 §3.7's examples send it, over real HTTP, checked through the roster and the feed."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from app.config import Settings
from app.protocol.resolved import SearchQuery
from app.protocol.schema_defs import USER_RESOURCE
from tests.conftest import ENTERPRISE, GROUP_SCHEMA, PATCH_OP, USER_SCHEMA, Scim, read_database

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def bulk(*operations: dict[str, Any], fail_on_errors: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [BULK_REQUEST], "Operations": list(operations)}
    if fail_on_errors is not None:
        body["failOnErrors"] = fail_on_errors
    return body


def post_user(bulk_id: str, user_name: str, **attributes: Any) -> dict[str, Any]:
    return {"method": "POST", "path": "/Users", "bulkId": bulk_id,
            "data": {"schemas": [USER_SCHEMA], "userName": user_name, **attributes}}


def post_group(bulk_id: str, name: str, members: list[str]) -> dict[str, Any]:
    return {"method": "POST", "path": "/Groups", "bulkId": bulk_id,
            "data": {"schemas": [GROUP_SCHEMA], "displayName": name,
                     "members": [{"type": "User", "value": m} for m in members]}}


async def events(scim: Scim) -> list[dict[str, Any]]:
    return (await scim.get("/api/events?limit=1000")).body["events"]


async def roster(scim: Scim) -> dict[str, str]:
    return {m["userName"]: m["role"] for m in (await scim.get("/api/members")).body["members"]}


async def count(scim: Scim, endpoint: str) -> int:
    return (await scim.get(endpoint)).body["totalResults"]


async def test_rfc_3_7_2_a_group_whose_member_is_a_user_of_the_same_request(scim: Scim) -> None:
    """§3.7.2: the group's member is "bulkId:qwerty", the user the first operation creates."""
    answer = await scim.post("/Bulk", bulk(
        post_user("qwerty", "Alice"),
        post_group("ytrewq", "rollcall-members", ["bulkId:qwerty"]),
    ))
    assert answer.status == 200
    assert answer.body["schemas"] == [BULK_RESPONSE]
    user_op, group_op = answer.body["Operations"]
    assert (user_op["method"], user_op["bulkId"], user_op["status"]) == ("POST", "qwerty", "201")
    assert (group_op["method"], group_op["bulkId"], group_op["status"]) == ("POST", "ytrewq", "201")
    user = (await scim.get(user_op["location"].split("/scim/v2")[1])).body
    group = (await scim.get(group_op["location"].split("/scim/v2")[1])).body
    assert user_op["version"] == user["meta"]["version"] and group_op["version"] == group["meta"]["version"]
    assert [m["value"] for m in group["members"]] == [user["id"]]
    # Each operation as a request of its own: the roster is settled and the feed written.
    assert await roster(scim) == {"Alice": "member"}
    types = [e["type"] for e in await events(scim)]
    assert types == ["user.created", "group.created", "group.member_added", "member.joined"]


async def test_a_reference_to_a_later_post_waits_for_it(scim: Scim) -> None:
    """References resolve in any order: the group comes first in the request, its member's POST after it."""
    answer = await scim.post("/Bulk", bulk(
        post_group("g", "rollcall-administrators", ["bulkId:u1", "bulkId:u2"]),
        post_user("u1", "bob"),
        post_user("u2", "carol"),
    ))
    assert answer.status == 200
    # The results are listed in the request's order, whatever order the operations ran in.
    assert [(op["bulkId"], op["status"]) for op in answer.body["Operations"]] == [
        ("g", "201"), ("u1", "201"), ("u2", "201")]
    group_id = answer.body["Operations"][0]["location"].rsplit("/", 1)[1]
    members = (await scim.get(f"/Groups/{group_id}")).body["members"]
    assert len(members) == 2
    assert await roster(scim) == {"bob": "admin", "carol": "admin"}


async def test_bulk_id_in_a_path_and_put_patch_delete(scim: Scim) -> None:
    existing = await scim.create_user("dave")
    answer = await scim.post("/Bulk", bulk(
        {"method": "PATCH", "path": "/Groups/bulkId:g", "data": {"schemas": [PATCH_OP], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": "bulkId:u"}, {"value": existing["id"]}]}]}},
        post_group("g", "rollcall-guests", []),
        post_user("u", "erin"),
        {"method": "PUT", "path": "/Users/bulkId:u",
         "data": {"schemas": [USER_SCHEMA], "userName": "erin", "displayName": "Erin E"}},
        {"method": "DELETE", "path": f"/Users/{existing['id']}"},
    ))
    assert answer.status == 200
    patch, group, user, put, delete = answer.body["Operations"]
    assert [op["status"] for op in answer.body["Operations"]] == ["200", "201", "201", "200", "204"]
    assert patch["location"] == group["location"] and put["location"] == user["location"]
    assert delete["location"].endswith(f"/Users/{existing['id']}") and "version" not in delete
    assert put["version"] == 'W/"2"'
    assert (await scim.get(f"/Users/{existing['id']}")).status == 404
    assert (await scim.get(user["location"].split("/scim/v2")[1])).body["displayName"] == "Erin E"
    assert await roster(scim) == {"erin": "guest"}
    left = [e for e in await events(scim) if e["type"] == "member.left"]
    assert [(e["userName"], e["reason"]) for e in left] == [("dave", "user-deleted")]


async def test_rfc_3_7_3_fail_on_errors_stops_after_that_many(scim: Scim) -> None:
    """§3.7.3: with failOnErrors 1, the first error ends the request; what did not run is not listed."""
    answer = await scim.post("/Bulk", bulk(
        {"method": "POST", "path": "/Users", "bulkId": "qwerty", "data": {"schemas": [USER_SCHEMA]}},
        post_user("ytrewq", "frank"),
        fail_on_errors=1,
    ))
    assert answer.status == 200
    (only,) = answer.body["Operations"]
    assert only["method"] == "POST" and only["bulkId"] == "qwerty" and only["status"] == "400"
    assert "location" not in only
    assert only["response"]["schemas"] == [ERROR] and only["response"]["status"] == "400"
    assert only["response"]["scimType"] == "invalidValue" and "userName" in only["response"]["detail"]
    assert await count(scim, "/Users") == 0


async def test_rfc_3_7_3_every_operation_fails_on_its_own_without_fail_on_errors(scim: Scim) -> None:
    """§3.7.3's second example: an invalid POST, then a PUT and a PATCH whose version no longer matches (412)."""
    user = await scim.create_user("grace")
    stale = user["meta"]["version"]
    await scim.patch(f"/Users/{user['id']}", [{"op": "replace", "path": "displayName", "value": "G"}])
    answer = await scim.post("/Bulk", bulk(
        {"method": "POST", "path": "/Users", "bulkId": "qwerty", "data": {"schemas": [USER_SCHEMA], "userName": 7}},
        {"method": "PUT", "path": f"/Users/{user['id']}", "version": stale,
         "data": {"schemas": [USER_SCHEMA], "userName": "grace", "displayName": "overwritten"}},
        {"method": "PATCH", "path": f"/Users/{user['id']}", "version": stale,
         "data": {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": False}]}},
        post_user("ok", "heidi"),
    ))
    assert answer.status == 200
    post, put, patch, ok = answer.body["Operations"]
    assert [op["status"] for op in (post, put, patch, ok)] == ["400", "412", "412", "201"]
    assert put["location"].endswith(f"/Users/{user['id']}") and put["response"]["status"] == "412"
    assert patch["location"] == put["location"]
    fetched = (await scim.get(f"/Users/{user['id']}")).body
    assert fetched["displayName"] == "G" and fetched.get("active", True) is True


async def test_version_that_matches_is_applied(scim: Scim) -> None:
    user = await scim.create_user("ivan")
    answer = await scim.post("/Bulk", bulk(
        {"method": "PATCH", "path": f"/Users/{user['id']}", "version": user["meta"]["version"],
         "data": {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "I"}]}},
        {"method": "DELETE", "path": f"/Users/{user['id']}", "version": user["meta"]["version"]},
    ))
    patched, deleted = answer.body["Operations"]
    assert patched["status"] == "200" and patched["version"] == 'W/"2"'
    # The DELETE's version is the one from before the PATCH: refused, and the user stays.
    assert deleted["status"] == "412"
    assert (await scim.get(f"/Users/{user['id']}")).body["displayName"] == "I"


async def test_rfc_3_7_1_circular_references_are_refused_with_409(scim: Scim) -> None:
    """§3.7.1: two POSTs that reference each other; rollcall takes the RFC's option to stop and answer 409."""
    answer = await scim.post("/Bulk", bulk(
        post_user("a", "judy", **{ENTERPRISE: {"manager": {"value": "bulkId:b"}}}),
        post_user("b", "mallory", **{ENTERPRISE: {"manager": {"value": "bulkId:a"}}}),
        post_user("c", "niaj"),
    ))
    assert answer.status == 200
    a, b, c = answer.body["Operations"]
    assert (a["status"], b["status"], c["status"]) == ("409", "409", "201")
    assert "circular" in a["response"]["detail"] and "location" not in a
    assert await count(scim, "/Users") == 1


async def test_a_reference_to_a_failed_or_missing_post_is_409(scim: Scim) -> None:
    await scim.create_user("olivia")
    answer = await scim.post("/Bulk", bulk(
        post_user("dup", "olivia"),  # 409 uniqueness
        post_group("g", "team", ["bulkId:dup"]),
        post_group("h", "other", ["bulkId:nobody"]),
    ))
    dup, g, h = answer.body["Operations"]
    assert dup["status"] == "409" and dup["response"]["scimType"] == "uniqueness"
    assert g["status"] == "409" and "'dup'" in g["response"]["detail"] and "failed" in g["response"]["detail"]
    assert h["status"] == "409" and "'nobody'" in h["response"]["detail"]
    assert await count(scim, "/Groups") == 0


async def test_each_operation_is_atomic_and_the_others_still_apply(scim: Scim) -> None:
    user = await scim.create_user("peggy")
    group = await scim.create_group("g")
    answer = await scim.post("/Bulk", bulk(
        {"method": "PATCH", "path": f"/Groups/{group['id']}", "data": {"schemas": [PATCH_OP], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": user["id"]}]},
            {"op": "replace", "path": "displayName", "value": 12}]}},
        {"method": "PATCH", "path": f"/Groups/{group['id']}", "data": {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "displayName", "value": "renamed"}]}},
    ))
    assert [op["status"] for op in answer.body["Operations"]] == ["400", "200"]
    fetched = (await scim.get(f"/Groups/{group['id']}")).body
    assert fetched["displayName"] == "renamed" and "members" not in fetched
    assert [e["type"] for e in await events(scim)][-1] == "group.renamed"


async def test_malformed_operations_fail_alone(scim: Scim) -> None:
    answer = await scim.post("/Bulk", bulk(
        "not an object", {"method": "GET", "path": "/Users"}, {"method": "POST", "path": "/Nope", "data": {}},
        {"method": "POST", "path": "/Users/abc", "data": {}}, {"method": "DELETE", "path": "/Users"},
        {"method": "PUT", "path": "/Users/x"}, post_user("same", "quentin"), post_user("same", "rupert"),
        {"method": "PUT", "path": "/Users/bulkId:same", "data": {"schemas": [USER_SCHEMA], "userName": "quentin2"}},
    ))
    assert [op["status"] for op in answer.body["Operations"]] == ["400", "400", "404", "400", "400", "400",
                                                                   "201", "400", "200"]
    # A repeated bulkId is refused alone; the references go to the POST that declared it first.
    assert "unique" in answer.body["Operations"][7]["response"]["detail"]
    assert (await scim.get("/Users")).body["Resources"][0]["userName"] == "quentin2"


async def test_a_body_that_is_no_bulk_request_is_400(scim: Scim) -> None:
    for body in ([], {"schemas": [PATCH_OP], "Operations": []}, {"schemas": [BULK_REQUEST]},
                 {"schemas": [BULK_REQUEST], "Operations": [], "failOnErrors": 0}):
        answer = await scim.post("/Bulk", body)
        assert answer.status == 400 and answer.body["schemas"] == [ERROR], body


async def test_service_provider_config_announces_bulk_and_its_limits(
        scim_with: Callable[..., Awaitable[Scim]]) -> None:
    scim = await scim_with(bulk_max_operations=50, bulk_max_payload_bytes=20_000)
    config = (await scim.get("/ServiceProviderConfig")).body
    assert config["bulk"] == {"supported": True, "maxOperations": 50, "maxPayloadSize": 20_000}


async def test_rfc_3_7_4_more_than_max_operations_is_413(scim_with: Callable[..., Awaitable[Scim]]) -> None:
    scim = await scim_with(bulk_max_operations=2)
    answer = await scim.post("/Bulk", bulk(*(post_user(f"u{i}", f"user{i}") for i in range(3))))
    assert answer.status == 413
    assert answer.body["schemas"] == [ERROR] and answer.body["status"] == "413" and "scimType" not in answer.body
    assert "maxOperations (2)" in answer.body["detail"]
    assert await count(scim, "/Users") == 0


async def test_rfc_3_7_4_a_body_over_max_payload_size_is_413(scim_with: Callable[..., Awaitable[Scim]]) -> None:
    scim = await scim_with(bulk_max_payload_bytes=4096)
    answer = await scim.post("/Bulk", bulk(*(post_user(f"u{i}", f"user{i}", title="x" * 100) for i in range(40))))
    assert answer.status == 413 and "scimType" not in answer.body
    assert "maxPayloadSize (4,096 bytes)" in answer.body["detail"]
    assert await count(scim, "/Users") == 0


async def test_a_bulk_body_may_be_larger_than_max_body_bytes(scim_with: Callable[..., Awaitable[Scim]]) -> None:
    """maxPayloadSize is the Bulk route's own limit: a 1 KiB --max-body-bytes still takes a 50 KB Bulk request."""
    scim = await scim_with(max_body_bytes=1024)
    operations = [post_user(f"u{i}", f"user{i}", title="x" * 100) for i in range(300)]
    answer = await scim.post("/Bulk", bulk(*operations))
    assert answer.status == 200 and {op["status"] for op in answer.body["Operations"]} == {"201"}
    assert await count(scim, "/Users") == 300
    too_big = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "big", "title": "x" * 2000})
    assert too_big.status == 413


async def test_the_whole_request_is_committed_before_its_answer(scim: Scim, settings: Settings) -> None:
    answer = await scim.post("/Bulk", bulk(*(post_user(f"u{i}", f"user{i}") for i in range(250))))
    assert answer.status == 200
    # Another connection to the database sees all of it (a batch still uncommitted would be invisible to it).
    users, created = await read_database(settings.db_path, lambda tx: (
        tx.resources.count(SearchQuery(USER_RESOURCE)),
        sum(event["type"] == "user.created" for event in tx.feed.after(0, 10_000))))
    assert (users, created) == (250, 250)


async def test_bulk_needs_a_token_and_only_takes_post(scim: Scim) -> None:
    assert (await scim.post("/Bulk", bulk(post_user("a", "a")), auth=False)).status == 401
    assert (await scim.get("/Bulk")).status == 405
    assert await count(scim, "/Users") == 0


async def test_a_gzip_bulk_body_is_measured_decoded_against_max_payload_size(
        scim_with: Callable[..., Awaitable[Scim]]) -> None:
    """The Bulk limit, not --max-body-bytes, bounds what a compressed Bulk body may decode to."""
    scim = await scim_with(max_body_bytes=1024, bulk_max_payload_bytes=60_000)
    small = gzip.compress(json.dumps(bulk(*(post_user(f"u{i}", f"user{i}", title="x" * 100)
                                            for i in range(100)))).encode())
    answer = await scim.request("POST", "/Bulk", raw=small, headers={"Content-Encoding": "gzip"})
    assert answer.status == 200 and len(answer.body["Operations"]) == 100
    large = gzip.compress(json.dumps(bulk(*(post_user(f"v{i}", f"other{i}", title="x" * 100)
                                            for i in range(400)))).encode())
    assert len(large) < 60_000
    refused = await scim.request("POST", "/Bulk", raw=large, headers={"Content-Encoding": "gzip"})
    assert refused.status == 413 and "maxPayloadSize (60,000 bytes)" in refused.body["detail"]
    assert await count(scim, "/Users") == 100


async def test_concurrent_bulk_requests_that_collide_are_run_again_whole_not_failed(
        scim: Scim, caplog: pytest.LogCaptureFixture) -> None:
    """PostgreSQL runs writes SERIALIZABLE: Bulk requests adding people to one group collide, and the engine runs
    the colliding batch again. No operation may answer (or log) a 500 for a conflict its engine retries."""
    group = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "rollcall-members"})
    group_id = group.body["id"]

    def request(wave: int) -> dict[str, Any]:
        operations: list[dict[str, Any]] = []
        for person in range(8):
            bulk_id = f"u{wave}-{person}"
            operations.append(post_user(bulk_id, f"wave{wave}-person{person}"))
            operations.append({"method": "PATCH", "path": f"/Groups/{group_id}", "data": {
                "schemas": [PATCH_OP], "Operations": [
                    {"op": "add", "path": "members", "value": [{"value": f"bulkId:{bulk_id}"}]}]}})
        return bulk(*operations)

    with caplog.at_level(logging.ERROR, logger="rollcall.bulk"):
        answers = await asyncio.gather(*(scim.post("/Bulk", request(wave)) for wave in range(12)))
    statuses = {operation["status"] for answer in answers for operation in answer.body["Operations"]}
    assert statuses <= {"200", "201"}, statuses
    assert not [record for record in caplog.records if record.name == "rollcall.bulk"]
    assert len(await roster(scim)) == 12 * 8
