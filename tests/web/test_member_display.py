"""`display` on Group members and User groups (RFC 7643 §2.4, §8.4): described in /Schemas, returned for members
when asked for (attributes=members.display) in every answer that lists members, ignored in input."""

from __future__ import annotations

from typing import Any

from tests.conftest import GROUP_SCHEMA, USER_SCHEMA, Scim

WITH_DISPLAY = "?attributes=displayName,members,members.display"


def sub_attribute(schema: dict[str, Any], attribute: str, name: str) -> dict[str, Any]:
    parent = next(a for a in schema["attributes"] if a["name"] == attribute)
    return next(s for s in parent["subAttributes"] if s["name"] == name)


async def test_schemas_describe_display_read_only(scim: Scim) -> None:
    group = (await scim.get(f"/Schemas/{GROUP_SCHEMA}")).body
    user = (await scim.get(f"/Schemas/{USER_SCHEMA}")).body
    members_display, groups_display = sub_attribute(group, "members", "display"), sub_attribute(user, "groups",
                                                                                                "display")
    for described in (members_display, groups_display):
        assert described["type"] == "string" and described["mutability"] == "readOnly"
        assert described["multiValued"] is False
    # What /Schemas says is what the answers do: members' display on request, groups' display always.
    assert members_display["returned"] == "request" and groups_display["returned"] == "default"


def displays(resource: dict[str, Any]) -> dict[str, str]:
    return {m["value"]: m["display"] for m in resource.get("members", [])}


async def test_every_answer_that_lists_members_gives_their_display_when_asked(scim: Scim) -> None:
    alice = await scim.create_user("alice", displayName="Alice Liddell")
    bob = await scim.create_user("bob")
    expected = {alice["id"]: "Alice Liddell", bob["id"]: "bob"}
    created = await scim.post(f"/Groups{WITH_DISPLAY}", {"schemas": [GROUP_SCHEMA], "displayName": "g",
                                                         "members": [{"value": alice["id"]}, {"value": bob["id"]}]})
    assert displays(created.body) == expected
    path = f"/Groups/{created.body['id']}"
    assert displays((await scim.get(path + WITH_DISPLAY)).body) == expected
    assert displays((await scim.get(f"/Groups{WITH_DISPLAY}")).body["Resources"][0]) == expected
    assert displays((await scim.get(f"{path}?attributes=members,{GROUP_SCHEMA}:members.display")).body) == expected
    assert displays((await scim.post("/Groups/.search", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "attributes": ["members", "members.display"]})).body["Resources"][0]) == expected
    patched = await scim.request("PATCH", path + WITH_DISPLAY, {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "h"}]})
    assert displays(patched.body) == expected
    put = await scim.put(path + WITH_DISPLAY, {"schemas": [GROUP_SCHEMA], "displayName": "h"})
    assert displays(put.body) == expected
    # Not asked for, it is left out, as returned="request" says.
    assert all("display" not in m for m in (await scim.get(path)).body["members"])
    # A User's groups carry their display by default.
    assert [g["display"] for g in (await scim.get(f"/Users/{alice['id']}")).body["groups"]] == ["h"]


async def test_display_named_through_a_value_filter_in_attributes_is_returned(scim: Scim) -> None:
    # members.display named through a value filter (`members[...].display`, or a filter on display itself) is
    # asked for as surely as `members.display` is; the unfixed code loaded display only for the literal
    # `members.display`, so these answers silently dropped the members (or matched none of them).
    alice = await scim.create_user("alice", displayName="Alice Liddell")
    bob = await scim.create_user("bob")
    group = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "g",
                                        "members": [{"value": alice["id"]}, {"value": bob["id"]}]})
    path = f"/Groups/{group.body['id']}"
    through_filter = (await scim.get(f'{path}?attributes=members[type eq "User"].display')).body
    assert sorted(m["display"] for m in through_filter["members"]) == ["Alice Liddell", "bob"]
    matching = (await scim.get(f'{path}?attributes=members[display eq "alice liddell"]')).body
    assert [m["value"] for m in matching["members"]] == [alice["id"]]
    remaining = (await scim.get(f'{path}?excludedAttributes=members[display sw "Alice"]')).body
    assert [m["value"] for m in remaining["members"]] == [bob["id"]]


async def test_display_in_input_is_accepted_and_ignored(scim: Scim) -> None:
    """Identity providers send the display they know (RFC 7643 §8.4); rollcall keeps its own."""
    alice = await scim.create_user("alice", displayName="Alice")
    bob = await scim.create_user("bob")
    created = await scim.post(f"/Groups{WITH_DISPLAY}", {"schemas": [GROUP_SCHEMA], "displayName": "g", "members": [
        {"value": alice["id"], "display": "Someone Else", "$ref": "x", "type": "User"}]})
    assert created.status == 201 and displays(created.body) == {alice["id"]: "Alice"}
    path = f"/Groups/{created.body['id']}"
    patched = await scim.request("PATCH", path + WITH_DISPLAY, {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": bob["id"], "display": "Robert"}]}]})
    assert patched.status == 200 and displays(patched.body) == {alice["id"]: "Alice", bob["id"]: "bob"}
    put = await scim.put(path + WITH_DISPLAY, {"schemas": [GROUP_SCHEMA], "displayName": "g", "members": [
        {"value": bob["id"], "display": "Robert"}]})
    assert put.status == 200 and displays(put.body) == {bob["id"]: "bob"}


async def test_renaming_a_member_gives_its_groups_a_new_version(scim: Scim) -> None:
    """The group's representation changes with its member's name, so its ETag must not vouch for the old one."""
    alice = await scim.create_user("alice", displayName="Alice")
    group = await scim.create_group("g", [alice["id"]])
    path = f"/Groups/{group['id']}"
    etag = (await scim.get(path)).headers["ETag"]
    await scim.patch(f"/Users/{alice['id']}", [{"op": "replace", "path": "title", "value": "CEO"}])
    assert (await scim.get(path, headers={"If-None-Match": etag})).status == 304
    await scim.patch(f"/Users/{alice['id']}", [{"op": "replace", "path": "displayName", "value": "Alice L"}])
    answer = await scim.get(path + WITH_DISPLAY, headers={"If-None-Match": etag})
    assert answer.status == 200 and displays(answer.body) == {alice["id"]: "Alice L"}
