"""Whole lifecycles replayed as JumpCloud, Okta and Entra send them (../shared/jumpcloud-client.md §2-§7),
each checked through /api/members and /api/events."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import pytest

from app.domain.clock import utc_now
from tests.conftest import GROUP_SCHEMA, USER_SCHEMA, Scim

ADMINS, MEMBERS, GUESTS = "rollcall-administrators", "rollcall-members", "rollcall-guests"


async def roster(scim: Scim) -> dict[str, str]:
    """The live roster as userName → role; and, at every step of every lifecycle, the proof that the roster
    replayed from the change feed (`?at=` this moment, once it is past) is the very same list."""
    answer = await scim.get("/api/members")
    assert answer.status == 200
    moment = utc_now()  # after every change the live answer saw, before the next one
    replayed = await scim.get(f"/api/members?at={moment}")
    assert replayed.status == 200
    assert replayed.body["members"] == answer.body["members"], f"?at={moment} differs from the live roster"
    return {m["userName"]: m["role"] for m in answer.body["members"]}


async def feed(scim: Scim, after: int = 0) -> list[dict[str, Any]]:
    answer = await scim.get(f"/api/events?after={after}&limit=1000")
    assert answer.status == 200
    return answer.body["events"]


async def last_seq(scim: Scim) -> int:
    return (await scim.get("/api/events?after=0&limit=1000")).body["next"]


def member_events(events: list[dict[str, Any]]) -> list[tuple]:
    """The member.* events as (type, userName, detail) tuples."""
    described = []
    for e in events:
        if e["type"] == "member.joined":
            described.append(("joined", e["userName"], e["role"]))
        elif e["type"] == "member.left":
            described.append(("left", e["userName"], e["reason"]))
        elif e["type"] == "member.role_changed":
            described.append(("role_changed", e["userName"], f"{e['from']}->{e['to']}"))
    return described


async def jumpcloud_user(scim: Scim, email: str) -> dict[str, Any]:
    """R1 + R2: look the user up by userName, then create them."""
    lookup = await scim.get("/Users?filter=" + quote(f'userName eq "{email}"'))
    assert lookup.status == 200 and lookup.body["totalResults"] == 0
    given, _, family = email.split("@")[0].partition(".")
    return await scim.create_user(email, name={"givenName": given, "familyName": family or given},
                                  displayName=email.split("@")[0], active=True,
                                  emails=[{"value": email, "type": "work", "primary": True}])


async def add(scim: Scim, group: dict[str, Any], user: dict[str, Any]) -> None:
    answer = await scim.patch(f"/Groups/{group['id']}",
                              [{"op": "add", "path": "members", "value": [{"value": user["id"]}]}])
    assert answer.status == 200, answer.body


async def remove(scim: Scim, group: dict[str, Any], user: dict[str, Any], form: str = "value-array") -> None:
    if form == "value-array":
        operation = {"op": "remove", "path": "members", "value": [{"value": user["id"]}]}
    else:
        operation = {"op": "remove", "path": f'members[value eq "{user["id"]}"]'}
    answer = await scim.patch(f"/Groups/{group['id']}", [operation])
    assert answer.status == 200, answer.body


# -- activation ---------------------------------------------------------------------------------------

async def test_jumpcloud_test_connection_leaves_no_trace_on_the_roster(scim: Scim) -> None:
    user = await jumpcloud_user(scim, "jc-test@acme.com")
    group = await scim.create_group("JumpCloud Test Group 7f3a")
    await add(scim, group, user)
    renamed = await scim.patch(f"/Groups/{group['id']}",
                               [{"op": "replace", "path": "displayName", "value": "JumpCloud Test Group 7f3b"}])
    assert renamed.status == 200
    assert (await scim.delete(f"/Groups/{group['id']}")).status == 204
    assert (await scim.delete(f"/Users/{user['id']}")).status == 204
    assert await roster(scim) == {}
    events = await feed(scim)
    assert [e["type"] for e in events] == ["user.created", "group.created", "group.member_added", "group.renamed",
                                           "group.member_removed", "group.deleted", "user.deleted"]
    assert {e["token"] for e in events} == {"tests"}
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


# -- first provisioning -------------------------------------------------------------------------------

async def test_first_provisioning_with_members_inline(scim: Scim) -> None:
    ann = await jumpcloud_user(scim, "ann@acme.com")
    bob = await jumpcloud_user(scim, "bob@acme.com")
    cat = await jumpcloud_user(scim, "cat@acme.com")
    await scim.create_group(ADMINS, [ann["id"]])
    await scim.create_group(MEMBERS, [bob["id"]])
    await scim.create_group(GUESTS, [cat["id"]])
    assert await roster(scim) == {"ann@acme.com": "admin", "bob@acme.com": "member", "cat@acme.com": "guest"}
    listed = (await scim.get("/api/members")).body["members"]
    ann_entry = next(m for m in listed if m["userName"] == "ann@acme.com")
    assert ann_entry == {"id": ann["id"], "userName": "ann@acme.com", "displayName": "ann", "role": "admin",
                         "email": "ann@acme.com", "groups": [ADMINS], "since": ann_entry["since"],
                         "held": False}
    assert ("joined", "ann@acme.com", "admin") in member_events(await feed(scim))


async def test_first_provisioning_with_one_patch_per_member(scim: Scim) -> None:
    users = [await jumpcloud_user(scim, f"u{i}@acme.com") for i in range(3)]
    members = await scim.create_group(MEMBERS, [users[0]["id"]])  # JumpCloud never creates an empty group
    for user in users[1:]:
        await add(scim, members, user)
    assert await roster(scim) == {f"u{i}@acme.com": "member" for i in range(3)}


async def test_users_outside_role_groups_are_not_members(scim: Scim) -> None:
    user = await jumpcloud_user(scim, "lonely@acme.com")
    await scim.create_group("engineering", [user["id"]])
    assert await roster(scim) == {}
    explained = (await scim.get(f"/api/members/{user['id']}")).body
    assert explained["status"] == "no-role" and explained["role"] is None
    assert explained["groups"] == [{"id": explained["groups"][0]["id"], "displayName": "engineering", "grants": None}]


# -- role moves -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["value-array", "filter-path"])
async def test_move_member_to_admin_remove_then_add(scim: Scim, form: str) -> None:
    user = await jumpcloud_user(scim, "mover@acme.com")
    admins = await scim.create_group(ADMINS, [(await jumpcloud_user(scim, "boss@acme.com"))["id"]])
    members = await scim.create_group(MEMBERS, [user["id"]])
    start = await last_seq(scim)
    await remove(scim, members, user, form)
    assert "mover@acme.com" not in await roster(scim)  # off the roster for the instant in between
    await add(scim, admins, user)
    assert (await roster(scim))["mover@acme.com"] == "admin"
    assert member_events(await feed(scim, start)) == [("left", "mover@acme.com", "left-role-groups"),
                                                      ("joined", "mover@acme.com", "admin")]
    assert (await scim.get(f"/Users/{user['id']}")).status == 200  # nothing was deleted on the way


@pytest.mark.parametrize("form", ["value-array", "filter-path"])
async def test_move_member_to_admin_add_then_remove(scim: Scim, form: str) -> None:
    user = await jumpcloud_user(scim, "mover@acme.com")
    admins = await scim.create_group(ADMINS, [(await jumpcloud_user(scim, "boss@acme.com"))["id"]])
    members = await scim.create_group(MEMBERS, [user["id"]])
    start = await last_seq(scim)
    await add(scim, admins, user)
    assert (await roster(scim))["mover@acme.com"] == "admin"  # in two role groups: the higher wins
    await remove(scim, members, user, form)
    assert (await roster(scim))["mover@acme.com"] == "admin"
    assert member_events(await feed(scim, start)) == [("role_changed", "mover@acme.com", "member->admin")]
    explained = (await scim.get(f"/api/members/{user['id']}")).body
    assert explained["lastChange"]["type"] == "member.role_changed"


async def test_demotion_from_admin_to_guest(scim: Scim) -> None:
    boss = await jumpcloud_user(scim, "boss@acme.com")  # another admin: the last-admin floor (test_holds.py) stays out
    user = await jumpcloud_user(scim, "demoted@acme.com")
    admins = await scim.create_group(ADMINS, [boss["id"], user["id"]])
    guests = await scim.create_group(GUESTS, [user["id"]])
    assert (await roster(scim))["demoted@acme.com"] == "admin"
    await remove(scim, admins, user)
    assert (await roster(scim))["demoted@acme.com"] == "guest"
    await remove(scim, guests, user)
    assert await roster(scim) == {"boss@acme.com": "admin"}


async def test_concurrent_moves_end_with_the_right_roles(scim: Scim) -> None:
    users = [await jumpcloud_user(scim, f"c{i}@acme.com") for i in range(12)]
    members = await scim.create_group(MEMBERS, [u["id"] for u in users])
    admins = await scim.create_group(ADMINS)
    await asyncio.gather(*(op for u in users for op in (add(scim, admins, u), remove(scim, members, u))))
    assert await roster(scim) == {f"c{i}@acme.com": "admin" for i in range(12)}
    body = (await scim.get(f"/Groups/{members['id']}")).body
    assert "members" not in body


# -- suspension and reactivation ---------------------------------------------------------------------------

@pytest.mark.parametrize("off,on", [
    ({"op": "replace", "path": "active", "value": False}, {"op": "replace", "path": "active", "value": True}),
    ({"op": "replace", "value": {"active": False}}, {"op": "replace", "value": {"active": True}}),
    ({"op": "Replace", "path": "active", "value": "False"}, {"op": "Replace", "path": "active", "value": "True"}),
], ids=["jumpcloud", "okta", "entra"])
async def test_suspension_and_reactivation(scim: Scim, off: dict, on: dict) -> None:
    user = await jumpcloud_user(scim, "sus@acme.com")
    await scim.create_group(MEMBERS, [user["id"]])
    start = await last_seq(scim)
    assert (await scim.patch(f"/Users/{user['id']}", [off])).status == 200
    assert await roster(scim) == {}
    explained = (await scim.get(f"/api/members/{user['id']}")).body
    assert explained["status"] == "deactivated" and explained["active"] is False
    assert (await scim.patch(f"/Users/{user['id']}", [on])).status == 200
    assert await roster(scim) == {"sus@acme.com": "member"}
    assert member_events(await feed(scim, start)) == [("left", "sus@acme.com", "deactivated"),
                                                      ("joined", "sus@acme.com", "member")]


async def test_deactivation_by_put(scim: Scim) -> None:
    user = await jumpcloud_user(scim, "put@acme.com")
    await scim.create_group(MEMBERS, [user["id"]])
    answer = await scim.put(f"/Users/{user['id']}", {"schemas": [USER_SCHEMA], "userName": "put@acme.com",
                                                     "active": False})
    assert answer.status == 200
    assert await roster(scim) == {}


# -- deletions ---------------------------------------------------------------------------------------------

async def test_deleting_a_user_removes_them_from_the_organization(scim: Scim) -> None:
    user = await jumpcloud_user(scim, "gone@acme.com")
    await scim.create_group(MEMBERS, [user["id"]])
    start = await last_seq(scim)
    assert (await scim.delete(f"/Users/{user['id']}")).status == 204
    assert await roster(scim) == {}
    assert member_events(await feed(scim, start)) == [("left", "gone@acme.com", "user-deleted")]
    assert (await scim.get(f"/api/members/{user['id']}")).status == 404


async def test_deleting_a_role_group_keeps_members_another_role_group_covers(scim: Scim) -> None:
    both = await jumpcloud_user(scim, "both@acme.com")
    only = await jumpcloud_user(scim, "only@acme.com")
    members = await scim.create_group(MEMBERS, [both["id"], only["id"]])
    await scim.create_group(GUESTS, [both["id"]])
    start = await last_seq(scim)
    assert (await scim.delete(f"/Groups/{members['id']}")).status == 204
    assert await roster(scim) == {"both@acme.com": "guest"}
    assert sorted(member_events(await feed(scim, start))) == [("left", "only@acme.com", "group-deleted"),
                                                              ("role_changed", "both@acme.com", "member->guest")]
    assert (await scim.get(f"/Users/{only['id']}")).status == 200


async def test_deleting_an_ordinary_group_changes_no_role(scim: Scim) -> None:
    user = await jumpcloud_user(scim, "stay@acme.com")
    await scim.create_group(MEMBERS, [user["id"]])
    team = await scim.create_group("team", [user["id"]])
    await scim.delete(f"/Groups/{team['id']}")
    assert await roster(scim) == {"stay@acme.com": "member"}


async def test_writes_that_cannot_move_a_role_leave_the_roster_as_settling_would(scim: Scim) -> None:
    # The directory settles the roster only after writes that may move it (a User's userName or active flag, a
    # role group's membership or name): these writes skip it, and the roster, replayed or live, is unchanged.
    user = await jumpcloud_user(scim, "kim@acme.com")
    await scim.create_group(MEMBERS, [user["id"]])
    team = await scim.create_group("team", [])
    after = await last_seq(scim)
    body = {"schemas": [USER_SCHEMA], "userName": "kim@acme.com", "displayName": "Kim K", "active": True}
    assert (await scim.put(f"/Users/{user['id']}", body)).status == 200
    assert (await scim.patch(f"/Users/{user['id']}", [{"op": "replace", "path": "title", "value": "CTO"}])).status \
        == 200
    assert (await scim.patch(f"/Groups/{team['id']}", [{"op": "add", "path": "members",
                                                          "value": [{"value": user["id"]}]}])).status == 200
    assert (await scim.patch(f"/Groups/{team['id']}", [{"op": "replace", "path": "displayName",
                                                          "value": "team-2"}])).status == 200
    assert await roster(scim) == {"kim@acme.com": "member"}
    assert member_events(await feed(scim, after)) == []
    # ...while a rename moves the roster entry with it, and a move into the ordinary group's role-group name counts.
    rename = [{"op": "replace", "path": "userName", "value": "kim.k@acme.com"}]
    assert (await scim.patch(f"/Users/{user['id']}", rename)).status == 200
    assert await roster(scim) == {"kim.k@acme.com": "member"}
    promote = [{"op": "replace", "path": "displayName", "value": ADMINS}]
    assert (await scim.patch(f"/Groups/{team['id']}", promote)).status == 200
    assert await roster(scim) == {"kim.k@acme.com": "admin"}
    assert member_events(await feed(scim, after)) == [("role_changed", "kim.k@acme.com", "member->admin")]


# -- renames -----------------------------------------------------------------------------------------------

async def test_renaming_a_group_into_and_out_of_a_role_group_name(scim: Scim) -> None:
    boss = await jumpcloud_user(scim, "boss@acme.com")  # another admin: the last-admin floor stays out of it
    await scim.create_group(ADMINS, [boss["id"]])
    user = await jumpcloud_user(scim, "ren@acme.com")
    group = await scim.create_group("staff", [user["id"]])
    assert await roster(scim) == {"boss@acme.com": "admin"}
    rename = {"op": "replace", "path": "displayName", "value": "rollcall-members-eu"}
    await scim.patch(f"/Groups/{group['id']}", [rename])
    assert await roster(scim) == {"boss@acme.com": "admin", "ren@acme.com": "member"}
    await scim.put(f"/Groups/{group['id']}", {"schemas": [GROUP_SCHEMA], "displayName": "Rollcall-Administrators-2"})
    assert await roster(scim) == {"boss@acme.com": "admin", "ren@acme.com": "admin"}
    await scim.patch(f"/Groups/{group['id']}", [{"op": "replace", "value": {"displayName": "alumni"}}])
    assert await roster(scim) == {"boss@acme.com": "admin"}
    types = [e["type"] for e in await feed(scim)]
    assert types.count("group.renamed") == 3


# -- configuration -----------------------------------------------------------------------------------------

async def test_group_prefix_decides_which_groups_are_role_groups(scim_with: Any) -> None:
    scim = await scim_with(group_prefix="Pipefy")
    user = await jumpcloud_user(scim, "p@acme.com")
    other = await jumpcloud_user(scim, "r@acme.com")
    await scim.create_group("pipefy-administrators-emea", [user["id"]])
    await scim.create_group(MEMBERS, [other["id"]])
    assert await roster(scim) == {"p@acme.com": "admin"}


async def test_default_role_puts_active_users_without_role_groups_on_the_roster(scim_with: Any) -> None:
    scim = await scim_with(default_role="guest")
    user = await jumpcloud_user(scim, "new@acme.com")
    assert await roster(scim) == {"new@acme.com": "guest"}
    await scim.create_group(MEMBERS, [user["id"]])
    assert await roster(scim) == {"new@acme.com": "member"}
    await scim.patch(f"/Users/{user['id']}", [{"op": "replace", "path": "active", "value": False}])
    assert await roster(scim) == {}


async def test_changing_the_rules_re_derives_the_roster_on_restart(scim_with: Any) -> None:
    first = await scim_with()
    user = await jumpcloud_user(first, "x@acme.com")
    await first.create_group("acme-members", [user["id"]])
    assert await roster(first) == {}
    second = await scim_with(group_prefix="acme")
    assert await roster(second) == {"x@acme.com": "member"}
    joined = [e for e in await feed(second) if e["type"] == "member.joined"]
    assert joined[-1]["token"] == "rollcall"


# -- the feed ------------------------------------------------------------------------------------------------

async def test_event_feed_pages_with_after_and_limit(scim: Scim) -> None:
    for i in range(5):
        await scim.create_user(f"e{i}")
    first = (await scim.get("/api/events?limit=2")).body
    assert [e["seq"] for e in first["events"]] == [1, 2] and first["next"] == 2
    rest = (await scim.get(f"/api/events?after={first['next']}")).body
    assert [e["seq"] for e in rest["events"]] == [3, 4, 5]
    assert (await scim.get("/api/events?after=-1")).status == 400
    assert (await scim.get("/api/events?limit=many")).status == 400


async def test_roster_api_needs_a_token(scim: Scim) -> None:
    for path in ("/api/members", "/api/events", "/api/members/x"):
        assert (await scim.get(path, auth=False)).status == 401
