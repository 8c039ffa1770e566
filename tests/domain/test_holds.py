"""The safety nets, replayed through the real application on a real SQLite file: a mass removal waits for a
person, and the organization never loses its last admin. After every step the roster must equal what the stored
data implies, minus the held departures (`assert_invariant`)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

from app.config import Settings
from app.domain.roles import RoleRules
from tests.conftest import REPO, Scim, assert_invariant, mint_token
from tests.domain.test_roster_lifecycles import ADMINS, GUESTS, MEMBERS, add, feed, last_seq, member_events, remove


@pytest.fixture
async def token(settings: Settings) -> str:
    """The hold API takes an admin token (README: Tokens and scopes); admin includes the SCIM and roster scopes."""
    return await mint_token(settings.db_path, scopes=("admin",))


async def organization(scim: Scim, size: int, group: str = MEMBERS) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    users = [await scim.create_user(f"u{n:02}@acme.com", displayName=f"u{n:02}") for n in range(size)]
    return users, await scim.create_group(group, [u["id"] for u in users])


def rollcall(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def holds_opened(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "hold.opened"]


# -- mass removal --------------------------------------------------------------------------------------------

async def test_deleting_the_members_group_of_30_holds_them_all_until_approved(scim: Scim, settings: Settings
                                                                             ) -> None:
    users, group = await organization(scim, 30)
    assert_invariant(settings.db_path)
    start = await last_seq(scim)
    assert (await scim.delete(f"/Groups/{group['id']}")).status == 204  # the identity provider hears success
    assert (await scim.get(f"/Groups/{group['id']}")).status == 404  # and the SCIM side is what it sent

    listed = (await scim.get("/api/members")).body["members"]
    [opened] = holds_opened(await feed(scim, start))
    assert opened["cause"] == "mass-removal" and opened["count"] == 30
    assert opened["change"] == {"type": "group.deleted", "groupId": group["id"], "displayName": MEMBERS}
    assert len(listed) == 30 and all(m["held"] and m["hold"] == opened["holdId"] and m["role"] == "member"
                                     for m in listed)
    explained = (await scim.get(f"/api/members/{users[0]['id']}")).body
    assert explained["status"] == "held" and explained["role"] == "member"
    assert explained["hold"]["id"] == opened["holdId"] and explained["hold"]["reason"] == "group-deleted"
    assert explained["hold"]["change"]["type"] == "group.deleted" and explained["hold"]["opened"] == opened["time"]
    assert member_events(await feed(scim, start)) == []
    state = assert_invariant(settings.db_path)
    assert len(state["held"]) == 30

    listing = rollcall("holds", "--db", settings.db_path)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.split()[:2] == [str(opened["holdId"]), opened["time"]]
    assert "mass-removal" in listing.stdout and "30 people" in listing.stdout
    approved = rollcall("holds", "approve", str(opened["holdId"]), "--db", settings.db_path)
    assert approved.returncode == 0, approved.stderr
    assert (await scim.get("/api/members")).body["members"] == []
    after = await feed(scim, start)
    assert sorted(member_events(after)) == sorted(("left", u["userName"], "group-deleted") for u in users)
    assert all(e["hold"] == opened["holdId"] for e in after if e["type"] == "member.left")
    assert after[-1]["type"] == "hold.approved" and after[-1]["count"] == 30
    assert assert_invariant(settings.db_path) == {"roster": {}, "held": {}}
    assert rollcall("holds", "--db", settings.db_path).stdout == ""


async def test_recreating_the_group_before_approving_cancels_the_hold(scim: Scim, settings: Settings) -> None:
    users, group = await organization(scim, 30)
    start = await last_seq(scim)
    await scim.delete(f"/Groups/{group['id']}")
    assert len(assert_invariant(settings.db_path)["held"]) == 30
    await scim.create_group(MEMBERS, [u["id"] for u in users])  # the identity provider puts it back
    state = assert_invariant(settings.db_path)
    assert state["held"] == {} and len(state["roster"]) == 30
    events = await feed(scim, start)
    assert member_events(events) == []  # nobody ever left
    [opened] = holds_opened(events)
    cancelled = [e for e in events if e["type"] == "hold.cancelled"]
    assert cancelled == [{**cancelled[0], "holdId": opened["holdId"], "cause": "mass-removal", "released": 30}]
    assert not any(m["held"] for m in (await scim.get("/api/members")).body["members"])
    answer = await scim.post(f"/api/holds/{opened['holdId']}/approve", {})
    assert answer.status == 409 and "cancelled" in answer.body["detail"]


async def test_people_added_to_another_role_group_are_released_one_by_one(scim: Scim, settings: Settings) -> None:
    users, group = await organization(scim, 30)
    guests = await scim.create_group(GUESTS, [users[0]["id"]])
    start = await last_seq(scim)
    await scim.delete(f"/Groups/{group['id']}")
    state = assert_invariant(settings.db_path)
    assert len(state["held"]) == 29 and state["roster"][users[0]["id"]] == "guest"  # a demotion is no departure
    hold_id = holds_opened(await feed(scim, start))[0]["holdId"]
    for user in users[1:11]:
        await add(scim, guests, user)
        assert_invariant(settings.db_path)
    state = assert_invariant(settings.db_path)
    assert len(state["held"]) == 19 and all(state["roster"][u["id"]] == "guest" for u in users[:11])
    shown = (await scim.get(f"/api/holds/{hold_id}")).body
    assert shown["state"] == "open" and shown["count"] == 19
    assert sorted(p["outcome"] for p in shown["people"]) == ["held"] * 19 + ["released"] * 10
    answer = await scim.post(f"/api/holds/{hold_id}/approve", {})
    assert answer.status == 200 and answer.body == {"id": hold_id, "state": "approved", "applied": 19, "released": 0}
    state = assert_invariant(settings.db_path)
    assert set(state["roster"]) == {u["id"] for u in users[:11]}
    described = member_events(await feed(scim, start))
    assert [d for d in described if d[0] == "left"] == [("left", u["userName"], "group-deleted")
                                                        for u in sorted(users[11:], key=lambda u: u["userName"])]
    assert ("role_changed", users[1]["userName"], "member->guest") in described


async def test_three_single_deletions_pass_and_the_fourth_is_held(scim: Scim, settings: Settings) -> None:
    users, _ = await organization(scim, 30)
    start = await last_seq(scim)
    for user in users[:3]:
        assert (await scim.delete(f"/Users/{user['id']}")).status == 204
        assert assert_invariant(settings.db_path)["held"] == {}
    assert member_events(await feed(scim, start)) == [("left", u["userName"], "user-deleted") for u in users[:3]]
    assert (await scim.delete(f"/Users/{users[3]['id']}")).status == 204
    state = assert_invariant(settings.db_path)
    assert list(state["held"]) == [users[3]["id"]] and len(state["roster"]) == 27
    [opened] = holds_opened(await feed(scim, start))
    assert opened["count"] == 1 and opened["change"]["type"] == "user.deleted"
    # A deleted user who is held is still listed and explained, from the roster.
    listed = {m["id"]: m for m in (await scim.get("/api/members")).body["members"]}
    assert listed[users[3]["id"]]["userName"] == users[3]["userName"] and listed[users[3]["id"]]["held"]
    explained = (await scim.get(f"/api/members/{users[3]['id']}")).body
    assert explained["status"] == "held" and explained["hold"]["reason"] == "user-deleted"
    await scim.delete(f"/Users/{users[4]['id']}")  # the window is still over its threshold
    assert len(assert_invariant(settings.db_path)["held"]) == 2


async def test_departures_outside_the_window_are_not_counted(scim_with: Any, settings: Settings) -> None:
    scim = await scim_with(hold_window=1.0)
    users, _ = await organization(scim, 30)
    for user in users[:3]:
        await scim.delete(f"/Users/{user['id']}")
    await asyncio.sleep(1.2)  # the three slide out of the window
    for user in users[3:6]:
        await scim.delete(f"/Users/{user['id']}")
    assert assert_invariant(settings.db_path)["held"] == {}


async def test_the_threshold_is_a_share_of_the_members_at_the_start_of_the_window(scim_with: Any,
                                                                                  settings: Settings) -> None:
    scim = await scim_with(hold_window=2.0, hold_percent=50.0, hold_min=0)
    users, group = await organization(scim, 10)
    await asyncio.sleep(2.1)  # the joins slide out of the window: it starts with 10 members
    start = await last_seq(scim)
    await scim.patch(f"/Groups/{group['id']}", [{"op": "remove", "path": "members",
                                                 "value": [{"value": u["id"]} for u in users[:5]]}])
    assert assert_invariant(settings.db_path)["held"] == {}  # 5 departures: not above 50% of the 10
    await remove(scim, group, users[5])
    state = assert_invariant(settings.db_path)
    assert list(state["held"]) == [users[5]["id"]]
    [opened] = holds_opened(await feed(scim, start))
    assert opened["change"] == {"type": "group.member_removed", "groupId": group["id"], "count": 1}


async def test_no_hold_lets_every_departure_happen(scim_with: Any, settings: Settings) -> None:
    scim = await scim_with(hold=False)
    admin = await scim.create_user("boss@acme.com")
    admins = await scim.create_group(ADMINS, [admin["id"]])
    _, group = await organization(scim, 30)
    await scim.delete(f"/Groups/{group['id']}")
    await scim.delete(f"/Groups/{admins['id']}")
    assert assert_invariant(settings.db_path) == {"roster": {}, "held": {}}
    assert (await scim.get("/api/holds")).body == {"holds": []}


async def test_open_holds_survive_a_restart_with_other_settings(scim_with: Any, settings: Settings) -> None:
    first = await scim_with()
    _, group = await organization(first, 30)
    await first.delete(f"/Groups/{group['id']}")
    second = await scim_with(hold=False, hold_window=60.0, hold_percent=50.0, hold_min=10)
    [hold] = (await second.get("/api/holds")).body["holds"]
    assert hold["count"] == 30
    assert (await second.post(f"/api/holds/{hold['id']}/approve", {})).status == 200
    assert assert_invariant(settings.db_path) == {"roster": {}, "held": {}}


async def test_a_mistyped_prefix_on_restart_is_held_too(scim_with: Any, settings: Settings) -> None:
    first = await scim_with()
    await organization(first, 30)
    second = await scim_with(group_prefix="acme")  # nobody is in an acme-* group: the roster would empty
    assert len(assert_invariant(settings.db_path, RoleRules("acme"))["held"]) == 30
    [hold] = (await second.get("/api/holds")).body["holds"]
    assert hold["change"]["type"] == "rules.changed" and hold["token"] == "rollcall"
    await scim_with()  # the right prefix again: everyone is released
    assert assert_invariant(settings.db_path)["held"] == {}


# -- the last admin ------------------------------------------------------------------------------------------

async def test_the_only_admin_stays_until_another_admin_exists_and_a_person_approves(scim: Scim, settings: Settings
                                                                                    ) -> None:
    boss = await scim.create_user("boss@acme.com")
    admins = await scim.create_group(ADMINS, [boss["id"]])
    await organization(scim, 5)
    start = await last_seq(scim)
    await remove(scim, admins, boss)
    state = assert_invariant(settings.db_path)
    assert state["roster"][boss["id"]] == "admin" and list(state["held"]) == [boss["id"]]
    [opened] = holds_opened(await feed(scim, start))
    assert opened["cause"] == "last-admin" and opened["count"] == 1
    explained = (await scim.get(f"/api/members/{boss['id']}")).body
    assert explained["status"] == "held" and explained["role"] == "admin" and explained["groups"] == []

    refused = await scim.post(f"/api/holds/{opened['holdId']}/approve", {})
    assert refused.status == 409 and "no admin" in refused.body["detail"]
    assert assert_invariant(settings.db_path)["held"] == {boss["id"]: opened["holdId"]}

    second = await scim.create_user("next@acme.com")
    await add(scim, admins, second)
    state = assert_invariant(settings.db_path)
    assert state["roster"][second["id"]] == "admin" and boss["id"] in state["held"]
    assert (await scim.post(f"/api/holds/{opened['holdId']}/approve", {})).status == 200
    state = assert_invariant(settings.db_path)
    assert boss["id"] not in state["roster"] and state["held"] == {}
    assert member_events(await feed(scim, start)) == [("joined", "next@acme.com", "admin"),
                                                      ("left", "boss@acme.com", "left-role-groups")]


async def test_a_person_may_approve_leaving_no_admin_but_only_by_saying_so(scim: Scim, settings: Settings) -> None:
    boss = await scim.create_user("boss@acme.com")
    admins = await scim.create_group(ADMINS, [boss["id"]])
    await organization(scim, 5)
    await remove(scim, admins, boss)
    [hold_id] = set(assert_invariant(settings.db_path)["held"].values())
    refused = await scim.post(f"/api/holds/{hold_id}/approve", {})
    assert refused.status == 409 and "leave_no_admin=true" in refused.body["detail"]
    bad = await scim.post(f"/api/holds/{hold_id}/approve?leave_no_admin=maybe", {})
    assert bad.status == 400 and bad.body["scimType"] == "invalidValue"
    assert (await scim.post(f"/api/holds/{hold_id}/approve?leave_no_admin=true", {})).status == 200
    state = assert_invariant(settings.db_path)
    assert boss["id"] not in state["roster"] and state["held"] == {}
    assert "admin" not in state["roster"].values()


async def test_the_last_admins_demotion_is_held_and_released_when_put_back(scim: Scim, settings: Settings) -> None:
    boss = await scim.create_user("boss@acme.com")
    admins = await scim.create_group(ADMINS, [boss["id"]])
    await scim.create_group(MEMBERS, [boss["id"]])
    start = await last_seq(scim)
    await remove(scim, admins, boss)
    state = assert_invariant(settings.db_path)
    assert state["roster"] == {boss["id"]: "admin"} and boss["id"] in state["held"]
    assert (await scim.get(f"/api/members/{boss['id']}")).body["hold"]["becomes"] == "member"
    await add(scim, admins, boss)
    assert assert_invariant(settings.db_path) == {"roster": {boss["id"]: "admin"}, "held": {}}
    events = await feed(scim, start)
    assert member_events(events) == [] and events[-1]["type"] == "hold.cancelled"


async def test_deleting_the_administrators_group_keeps_its_admins(scim: Scim, settings: Settings) -> None:
    bosses = [await scim.create_user(f"boss{n}@acme.com") for n in range(2)]
    admins = await scim.create_group(ADMINS, [b["id"] for b in bosses])
    await organization(scim, 30)
    await scim.delete(f"/Groups/{admins['id']}")  # two departures: under the mass threshold, but no admin left
    state = assert_invariant(settings.db_path)
    assert {b["id"] for b in bosses} == set(state["held"])
    [hold] = (await scim.get("/api/holds")).body["holds"]
    assert hold["cause"] == "last-admin" and hold["count"] == 2


async def test_deactivating_the_only_admin_is_held_and_reactivating_releases_them(scim: Scim, settings: Settings
                                                                                 ) -> None:
    boss = await scim.create_user("boss@acme.com")
    await scim.create_group(ADMINS, [boss["id"]])
    start = await last_seq(scim)
    off = await scim.patch(f"/Users/{boss['id']}", [{"op": "replace", "path": "active", "value": False}])
    assert off.status == 200 and off.body["active"] is False  # the SCIM side says what the IdP sent
    state = assert_invariant(settings.db_path)
    assert state["roster"] == {boss["id"]: "admin"} and boss["id"] in state["held"]
    assert (await scim.get(f"/api/members/{boss['id']}")).body["hold"]["reason"] == "deactivated"
    await scim.patch(f"/Users/{boss['id']}", [{"op": "replace", "path": "active", "value": True}])
    assert assert_invariant(settings.db_path) == {"roster": {boss["id"]: "admin"}, "held": {}}
    assert member_events(await feed(scim, start)) == []


async def test_each_operation_of_a_bulk_request_is_a_change_of_its_own(scim: Scim, settings: Settings) -> None:
    users, _ = await organization(scim, 30)
    operations = [{"method": "DELETE", "path": f"/Users/{u['id']}"} for u in users[:6]]
    answer = await scim.post("/Bulk", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                                       "Operations": operations})
    assert answer.status == 200 and [op["status"] for op in answer.body["Operations"]] == ["204"] * 6
    state = assert_invariant(settings.db_path)
    assert set(state["held"]) == {u["id"] for u in users[3:6]} and len(set(state["held"].values())) == 3
