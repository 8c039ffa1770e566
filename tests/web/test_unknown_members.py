"""Member ids that name no User are skipped, not refused (issue 10 item 2): the valid members of the same push
are applied, the answer is the usual success, and the change feed names what was skipped."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from app.config import Settings
from tests.conftest import GROUP_SCHEMA, Scim, read_database


async def feed(scim: Scim) -> list[dict[str, Any]]:
    return (await scim.get("/api/events?limit=1000")).body["events"]


async def members(scim: Scim, group_id: str) -> list[str]:
    return sorted(m["value"] for m in (await scim.get(f"/Groups/{group_id}")).body.get("members", []))


def skipped_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "group.members_skipped"]


async def test_patch_with_one_valid_and_one_unknown_member_adds_the_valid_one(
        scim: Scim, caplog: pytest.LogCaptureFixture) -> None:
    alice = await scim.create_user("alice")
    group = await scim.create_group("rollcall-members")
    with caplog.at_level(logging.WARNING, logger="rollcall.directory"):
        answer = await scim.patch(f"/Groups/{group['id']}", [
            {"op": "add", "path": "members", "value": [{"value": alice["id"]}, {"value": "no-such"}]}])
    assert answer.status == 200
    assert [m["value"] for m in answer.body["members"]] == [alice["id"]]
    assert await members(scim, group["id"]) == [alice["id"]]
    events = await feed(scim)
    (skipped,) = skipped_events(events)
    assert skipped["groupId"] == group["id"] and skipped["skipped"] == ["no-such"] and skipped["skippedCount"] == 1
    assert skipped["token"] == "tests"
    # The valid member was applied as usual: on the roster, with its events.
    assert ("member.joined", "alice") in [(e["type"], e.get("userName")) for e in events]
    warning = [r for r in caplog.records if r.name == "rollcall.directory"]
    assert len(warning) == 1 and warning[0].levelno == logging.WARNING and "'no-such'" in warning[0].getMessage()
    assert scim.token not in caplog.text


async def test_one_event_per_request_for_every_operation_and_form(scim: Scim) -> None:
    """PATCH add and replace, POST and PUT of a group: each request with unknown ids writes one event."""
    alice, bob = await scim.create_user("alice"), await scim.create_user("bob")
    created = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "g",
                                          "members": [{"value": alice["id"]}, {"value": "ghost-1"}]})
    assert created.status == 201 and [m["value"] for m in created.body["members"]] == [alice["id"]]
    path = f"/Groups/{created.body['id']}"
    patched = await scim.patch(path, [
        {"op": "add", "path": "members", "value": [{"value": "ghost-2"}]},
        {"op": "add", "path": "members", "value": [{"value": bob["id"]}, {"value": "ghost-3"}]},
        {"op": "replace", "path": "displayName", "value": "renamed"}])
    assert patched.status == 200 and patched.body["displayName"] == "renamed"
    replaced = await scim.patch(path, [{"op": "replace", "path": "members",
                                        "value": [{"value": bob["id"]}, {"value": "ghost-4"}]}])
    assert replaced.status == 200
    put = await scim.put(path, {"schemas": [GROUP_SCHEMA], "displayName": "renamed",
                                "members": [{"value": alice["id"]}, {"value": "ghost-5"}, {"value": "ghost-5"}]})
    assert put.status == 200
    assert await members(scim, created.body["id"]) == [alice["id"]]
    assert [e["skipped"] for e in skipped_events(await feed(scim))] == [
        ["ghost-1"], ["ghost-2", "ghost-3"], ["ghost-4"], ["ghost-5"]]


async def test_only_unknown_ids_is_still_a_success_that_changes_nothing(scim: Scim) -> None:
    group = await scim.create_group("g")
    answer = await scim.patch(f"/Groups/{group['id']}", [
        {"op": "add", "path": "members", "value": [{"value": "ghost"}]}])
    assert answer.status == 200 and "members" not in answer.body
    assert answer.body["meta"]["version"] == group["meta"]["version"]
    assert [e["skipped"] for e in skipped_events(await feed(scim))] == [["ghost"]]


async def test_a_dangling_id_is_never_stored(scim: Scim, settings: Settings) -> None:
    alice = await scim.create_user("alice")
    group = await scim.create_group("g", [alice["id"], "ghost"])
    stored = await read_database(settings.db_path, lambda tx: tx.members.all_of(group["id"]))
    assert stored == [alice["id"]]


async def test_the_event_lists_at_most_100_ids_and_counts_them_all(scim: Scim) -> None:
    group = await scim.create_group("g")
    ghosts = [{"value": f"ghost-{i:04d}"} for i in range(250)]
    assert (await scim.patch(f"/Groups/{group['id']}", [
        {"op": "add", "path": "members", "value": ghosts}])).status == 200
    (event,) = skipped_events(await feed(scim))
    assert len(event["skipped"]) == 100 and event["skippedCount"] == 250


async def test_the_warning_about_skipped_ids_stays_short_however_long_the_ids(
        scim: Scim, caplog: pytest.LogCaptureFixture) -> None:
    # Ten ids were quoted whole: ten unknown ids of 100,000 characters made a 1 MB warning line per request.
    group = await scim.create_group("g")
    long_ids = [f"{i}" + "x" * 100_000 for i in range(10)]
    with caplog.at_level(logging.WARNING, logger="rollcall.directory"):
        answer = await scim.patch(f"/Groups/{group['id']}", [{"op": "add", "path": "members", "value": long_ids}])
    assert answer.status == 200
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "rollcall.directory"]
    assert "skipped 10 member id(s)" in warning and len(warning) < 2_000, len(warning)
