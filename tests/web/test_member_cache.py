"""GET /Groups/{id} with its members from the cache of rendered members (app/domain/member_cache.py): exact after
every change to the member list, made through another app (another instance on PostgreSQL, another connection to
the file on SQLite) whose cache knows nothing of it, and the same answer the uncached path gives."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from app.domain import directory
from app.web.keys import DIRECTORY
from tests.conftest import Scim


@pytest.fixture(params=["on the loop", "on a reader thread"])
def cached_small(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cache groups of two members and more, rendered on the event loop or (LOOP_MEMBERS 0) on a reader thread."""
    monkeypatch.setattr(directory, "CACHED_MEMBERS", 1)
    monkeypatch.setattr(directory, "LOOP_MEMBERS", 1000 if request.param == "on the loop" else 0)


async def members(scim: Scim, group_id: str) -> tuple[list[str], str]:
    answer = await scim.get(f"/Groups/{group_id}")
    assert answer.status == 200, answer.body
    return [m["value"] for m in answer.body.get("members", [])], answer.headers["ETag"]


@pytest.mark.usefixtures("cached_small")
async def test_cached_members_follow_every_change_made_elsewhere(
        scim: Scim, scim_with: Callable[..., Awaitable[Scim]]) -> None:
    other = await scim_with()
    ada, bob, cy, dee = [await scim.create_user(name) for name in ("ada", "bob", "cy", "dee")]
    group = await scim.create_group("g", [ada["id"], bob["id"]])
    path = f"/Groups/{group['id']}"
    expected = sorted([ada["id"], bob["id"]])
    assert (await members(scim, group["id"]))[0] == expected
    cached, etag = await members(scim, group["id"])
    assert cached == expected and scim.client.app[DIRECTORY].member_cache.size > 0

    async def after(change: Awaitable[object], wanted: list[str]) -> None:
        nonlocal etag
        await change
        found, moved = await members(scim, group["id"])
        assert found == sorted(wanted)
        assert moved != etag
        etag = moved

    await after(other.patch(path, [{"op": "add", "path": "members", "value": [{"value": cy["id"]}]}]),
                [ada["id"], bob["id"], cy["id"]])
    await after(other.patch(path, [{"op": "remove", "path": f'members[value eq "{ada["id"]}"]'}]),
                [bob["id"], cy["id"]])
    await after(other.delete(f"/Users/{bob['id']}"), [cy["id"]])
    await after(other.put(path, {"schemas": group["schemas"], "displayName": "g",
                                 "members": [{"value": dee["id"]}, {"value": cy["id"]}]}), [cy["id"], dee["id"]])
    await after(other.patch(path, [{"op": "replace", "path": "members", "value": []}]), [])


@pytest.mark.usefixtures("cached_small")
async def test_a_renamed_member_moves_the_groups_etag_and_display(
        scim: Scim, scim_with: Callable[..., Awaitable[Scim]]) -> None:
    other = await scim_with()
    ada, bob = await scim.create_user("ada"), await scim.create_user("bob")
    group = await scim.create_group("g", [ada["id"], bob["id"]])
    _, etag = await members(scim, group["id"])
    await other.patch(f"/Users/{ada['id']}", [{"op": "replace", "path": "displayName", "value": "Ada L."}])
    _, moved = await members(scim, group["id"])
    assert moved != etag
    shown = await scim.get(f"/Groups/{group['id']}?attributes=members.display,members.value")
    assert {m["value"]: m["display"] for m in shown.body["members"]}[ada["id"]] == "Ada L."


@pytest.mark.usefixtures("cached_small")
async def test_the_cached_answer_is_the_projected_paths_answer(scim: Scim) -> None:
    users = [await scim.create_user(f"u{i}") for i in range(5)]
    group = await scim.create_group("g", [u["id"] for u in users])
    for _ in range(2):  # rendered, then from the cache
        plain = await scim.get(f"/Groups/{group['id']}")
        # A projection that removes nothing takes the dict-per-member path of before.
        projected = await scim.get(f"/Groups/{group['id']}?excludedAttributes=externalId")
        assert plain.body == projected.body
        assert list(plain.body) == ["schemas", "id", "displayName", "members", "meta"]
        assert [m["value"] for m in plain.body["members"]] == sorted(u["id"] for u in users)


@pytest.mark.usefixtures("cached_small")
async def test_each_base_url_gets_its_own_refs(scim: Scim) -> None:
    ada, bob = await scim.create_user("ada"), await scim.create_user("bob")
    group = await scim.create_group("g", [ada["id"], bob["id"]])
    for host in ("one.example", "two.example", "one.example"):
        answer = await scim.get(f"/Groups/{group['id']}", headers={"Host": host})
        assert {m["$ref"].split("/")[2] for m in answer.body["members"]} == {host}


@pytest.mark.parametrize("excluded", ["members", "MEMBERS", "urn:ietf:params:scim:schemas:core:2.0:Group:members",
                                      "members,members"])
async def test_excluding_members_is_the_projected_answer_without_them(scim: Scim, excluded: str) -> None:
    ada = await scim.create_user("ada")
    group = await scim.create_group("g", [ada["id"]])
    fast = await scim.get(f"/Groups/{group['id']}?excludedAttributes={excluded}")
    projected = await scim.get(f"/Groups/{group['id']}?excludedAttributes={excluded},externalId")
    assert fast.status == 200 and fast.body == projected.body and "members" not in fast.body
    assert fast.headers["ETag"] == projected.headers["ETag"]
    missing = await scim.get(f"/Groups/{'0' * 32}?excludedAttributes={excluded}")
    assert missing.status == 404 and missing.body["status"] == "404"
