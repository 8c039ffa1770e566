"""RFC 7644 for Groups, and every membership dialect JumpCloud, Okta and Entra send."""

from __future__ import annotations

import pytest

from tests.conftest import GROUP_SCHEMA, Scim


async def members_of(scim: Scim, group_id: str) -> list[str]:
    body = (await scim.get(f"/Groups/{group_id}")).body
    return sorted(m["value"] for m in body.get("members", []))


async def test_post_group_with_inline_members(scim: Scim) -> None:
    alice, bob = await scim.create_user("alice"), await scim.create_user("bob")
    group = await scim.create_group("rollcall-members", [alice["id"], bob["id"]])
    assert group["displayName"] == "rollcall-members"
    assert sorted(m["value"] for m in group["members"]) == sorted([alice["id"], bob["id"]])
    member = next(m for m in group["members"] if m["value"] == alice["id"])
    assert member == {"value": alice["id"], "$ref": member["$ref"], "type": "User"}
    assert member["$ref"].endswith(f"/Users/{alice['id']}")


async def test_group_display_name_is_unique_case_insensitively(scim: Scim) -> None:
    await scim.create_group("Engineering")
    answer = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "engineering"})
    assert answer.status == 409 and answer.body["scimType"] == "uniqueness"


async def test_any_group_name_is_accepted_for_jumpcloud_test_connection(scim: Scim) -> None:
    group = await scim.create_group("JC-Test-Group-8f3c")
    assert (await scim.delete(f"/Groups/{group['id']}")).status == 204


async def test_add_member_by_patch_value_array(scim: Scim) -> None:
    user = await scim.create_user("u1")
    group = await scim.create_group("g")
    answer = await scim.patch(f"/Groups/{group['id']}",
                              [{"op": "add", "path": "members", "value": [{"value": user["id"]}]}])
    assert answer.status == 200
    assert [m["value"] for m in answer.body["members"]] == [user["id"]]


async def test_adding_an_existing_member_is_a_no_op(scim: Scim) -> None:
    user = await scim.create_user("u1")
    group = await scim.create_group("g", [user["id"]])
    answer = await scim.patch(f"/Groups/{group['id']}",
                              [{"op": "add", "path": "members", "value": [{"value": user["id"]}]}])
    assert answer.status == 200
    assert await members_of(scim, group["id"]) == [user["id"]]
    assert answer.body["meta"]["version"] == group["meta"]["version"]


async def test_remove_with_value_array_removes_only_those_members(scim: Scim) -> None:
    """JumpCloud and Entra remove members this way; emptying the group here is a well-known bug."""
    a = await scim.create_user("a")
    b = await scim.create_user("b")
    c = await scim.create_user("c")
    group = await scim.create_group("g", [a["id"], b["id"], c["id"]])
    answer = await scim.patch(f"/Groups/{group['id']}",
                              [{"op": "remove", "path": "members", "value": [{"value": b["id"]}]}])
    assert answer.status == 200
    assert await members_of(scim, group["id"]) == sorted([a["id"], c["id"]])


async def test_remove_with_value_filter_path(scim: Scim) -> None:
    a, b = await scim.create_user("a"), await scim.create_user("b")
    group = await scim.create_group("g", [a["id"], b["id"]])
    answer = await scim.patch(f"/Groups/{group['id']}", [{"op": "remove", "path": f'members[value eq "{a["id"]}"]'}])
    assert answer.status == 200
    assert await members_of(scim, group["id"]) == [b["id"]]


async def test_entra_capitalised_remove_with_value_array(scim: Scim) -> None:
    a, b = await scim.create_user("a"), await scim.create_user("b")
    group = await scim.create_group("g", [a["id"], b["id"]])
    answer = await scim.patch(f"/Groups/{group['id']}",
                              [{"op": "Remove", "path": "members", "value": [{"value": a["id"]}]}])
    assert answer.status == 200
    assert await members_of(scim, group["id"]) == [b["id"]]


async def test_replace_members_with_empty_list_empties_the_group(scim: Scim) -> None:
    a = await scim.create_user("a")
    group = await scim.create_group("g", [a["id"]])
    answer = await scim.patch(f"/Groups/{group['id']}", [{"op": "replace", "path": "members", "value": []}])
    assert answer.status == 200
    assert "members" not in answer.body
    assert await members_of(scim, group["id"]) == []


async def test_replace_members_sets_exactly_those(scim: Scim) -> None:
    a, b, c = await scim.create_user("a"), await scim.create_user("b"), await scim.create_user("c")
    group = await scim.create_group("g", [a["id"], b["id"]])
    await scim.patch(f"/Groups/{group['id']}",
                     [{"op": "replace", "path": "members", "value": [{"value": b["id"]}, {"value": c["id"]}]}])
    assert await members_of(scim, group["id"]) == sorted([b["id"], c["id"]])


async def test_rename_by_patch_both_spellings_and_put_keeps_members(scim: Scim) -> None:
    a = await scim.create_user("a")
    group = await scim.create_group("rollcall-members", [a["id"]])
    path = f"/Groups/{group['id']}"
    renamed = await scim.patch(path, [{"op": "replace", "path": "displayName", "value": "rollcall-admins"}])
    assert renamed.body["displayName"] == "rollcall-admins"
    renamed = await scim.patch(path, [{"op": "replace", "value": {"displayName": "rollcall-guests"}}])
    assert renamed.body["displayName"] == "rollcall-guests"
    put = await scim.put(path, {"schemas": [GROUP_SCHEMA], "displayName": "final"})
    assert put.status == 200 and put.body["displayName"] == "final"
    assert await members_of(scim, group["id"]) == [a["id"]]


async def test_patch_is_one_transaction_for_groups(scim: Scim) -> None:
    a = await scim.create_user("a")
    group = await scim.create_group("g")
    answer = await scim.patch(f"/Groups/{group['id']}", [
        {"op": "add", "path": "members", "value": [{"value": a["id"]}]},
        {"op": "replace", "path": "displayName", "value": "renamed"},
        {"op": "replace", "path": "displayName", "value": 12},
    ])
    assert answer.status == 400
    fetched = (await scim.get(f"/Groups/{group['id']}")).body
    assert fetched["displayName"] == "g" and "members" not in fetched


async def test_excluded_members_are_not_returned(scim: Scim) -> None:
    a = await scim.create_user("a")
    group = await scim.create_group("g", [a["id"]])
    fetched = (await scim.get(f"/Groups/{group['id']}?excludedAttributes=members")).body
    assert "members" not in fetched and fetched["displayName"] == "g"
    listed = (await scim.get("/Groups?excludedAttributes=members")).body
    assert "members" not in listed["Resources"][0]


async def test_delete_group_keeps_its_users(scim: Scim) -> None:
    a = await scim.create_user("a")
    group = await scim.create_group("g", [a["id"]])
    assert (await scim.delete(f"/Groups/{group['id']}")).status == 204
    assert (await scim.get(f"/Users/{a['id']}")).status == 200
    assert "groups" not in (await scim.get(f"/Users/{a['id']}")).body


async def test_write_answers_list_members_only_for_groups_of_at_most_100(scim: Scim) -> None:
    users = [await scim.create_user(f"m{i:03d}") for i in range(102)]
    group = await scim.create_group("big", [u["id"] for u in users[:100]])
    assert len(group["members"]) == 100
    answer = await scim.patch(f"/Groups/{group['id']}",
                              [{"op": "add", "path": "members", "value": [{"value": users[100]["id"]}]}])
    assert answer.status == 200 and "members" not in answer.body
    assert answer.body["meta"]["version"] != group["meta"]["version"]
    assert len(await members_of(scim, group["id"])) == 101


async def test_a_member_filter_with_a_long_chain_runs_in_sql(scim: Scim) -> None:
    # Not only ids, so it is compiled to SQL: nested once per term, 200 terms were SQLite's "parser stack
    # overflow", a 500.
    users = [await scim.create_user(f"chain-{n}") for n in range(3)]
    group = await scim.create_group("rollcall-chain", [user["id"] for user in users])
    chain = " and ".join(['type eq "User"'] * 150)
    path = f'members[(value eq "{users[0]["id"]}" or value eq "{users[1]["id"]}") and {chain}]'
    answer = await scim.patch(f"/Groups/{group['id']}", [{"op": "remove", "path": path}])
    assert answer.status == 200, answer.body
    assert await members_of(scim, group["id"]) == [users[2]["id"]]


async def test_a_member_given_as_a_bare_id_string(scim: Scim) -> None:
    a, b, c = await scim.create_user("a"), await scim.create_user("b"), await scim.create_user("c")
    group = await scim.create_group("g")
    url = f"/Groups/{group['id']}"
    added = await scim.patch(url, [{"op": "add", "path": "members", "value": a["id"]}])
    assert added.status == 200, added.body  # 400 "a member must be an object" before
    assert await members_of(scim, group["id"]) == [a["id"]]
    added = await scim.patch(url, [{"op": "add", "path": "members", "value": [b["id"], c["id"]]}])
    assert added.status == 200 and await members_of(scim, group["id"]) == sorted([a["id"], b["id"], c["id"]])
    removed = await scim.patch(url, [{"op": "remove", "path": "members", "value": [b["id"]]}])
    assert removed.status == 200 and await members_of(scim, group["id"]) == sorted([a["id"], c["id"]])
    replaced = await scim.patch(url, [{"op": "replace", "path": "members", "value": [b["id"]]}])
    assert replaced.status == 200 and await members_of(scim, group["id"]) == [b["id"]]
    pathless = await scim.patch(url, [{"op": "add", "value": {"members": [c["id"]]}}])
    assert pathless.status == 200 and await members_of(scim, group["id"]) == sorted([b["id"], c["id"]])
    put = await scim.put(url, {"schemas": [GROUP_SCHEMA], "displayName": "g", "members": [a["id"]]})
    assert put.status == 200 and await members_of(scim, group["id"]) == [a["id"]]
    posted = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "h", "members": [a["id"], b["id"]]})
    assert posted.status == 201 and await members_of(scim, posted.body["id"]) == sorted([a["id"], b["id"]])


# One member reference, sent by each way of writing members: the same verdict from all of them.
# "{id}" stands for an existing user's id.
ACCEPTED = [
    pytest.param({"value": "{id}"}, id="value"),
    pytest.param({"value": " {id} "}, id="value-with-spaces"),
    pytest.param({"value": "\t{id}\n"}, id="value-with-tab-and-newline"),
    pytest.param(" {id} ", id="bare-string-with-spaces"),
    pytest.param({"$ref": "https://idp.example/scim/v2/Users/{id}"}, id="ref"),
    pytest.param({"$ref": "{id}"}, id="relative-ref"),
    pytest.param({"value": "{id}", "type": "User", "display": "Barbara"}, id="type-and-display"),
    pytest.param({"Value": "{id}", "TYPE": "user"}, id="keys-in-another-case"),
]
REFUSED = [
    pytest.param({"value": "{id}\x00"}, id="nul"),
    pytest.param({"value": "\x00"}, id="only-nul"),
    pytest.param({"value": "{id}\x07x"}, id="control-character"),
    pytest.param("{id}\x00", id="bare-string-with-nul"),
    pytest.param({"value": ""}, id="empty"),
    pytest.param({"value": "   "}, id="blank"),
    pytest.param({"value": 3}, id="number"),
    pytest.param({"value": "{id}", "type": "Group"}, id="group-type"),
    pytest.param({"$ref": "https://idp.example/scim/v2/Groups/{id}"}, id="ref-to-a-group"),
    pytest.param({"display": "Barbara"}, id="no-value"),
    pytest.param(["{id}"], id="nested-array"),
    pytest.param(7, id="a-number-for-a-member"),
]
WAYS = ["post", "put", "patch-add", "patch-replace", "patch-pathless"]


def _with_id(member: object, user_id: str) -> object:
    if isinstance(member, str):
        return member.replace("{id}", user_id)
    if isinstance(member, list):
        return [_with_id(m, user_id) for m in member]
    if isinstance(member, dict):
        return {k: _with_id(v, user_id) for k, v in member.items()}
    return member


async def _write_member(scim: Scim, way: str, member: object, in_array: bool = True
                        ) -> tuple[int, str | None, list[str]]:
    """Write one member by `way` (in an array of one, or alone); the status, scimType and the group's members
    afterwards."""
    group = await scim.create_group(f"g-{way}")
    url, sent = f"/Groups/{group['id']}", [member] if in_array else member
    if way == "post":
        answer = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "new", "members": sent})
        group_id = answer.body.get("id") if answer.status == 201 else group["id"]
    else:
        group_id = group["id"]
        if way == "put":
            answer = await scim.put(url, {"schemas": [GROUP_SCHEMA], "displayName": group["displayName"],
                                          "members": sent})
        elif way == "patch-pathless":
            answer = await scim.patch(url, [{"op": "add", "value": {"members": sent}}])
        else:
            op = way.removeprefix("patch-")
            answer = await scim.patch(url, [{"op": op, "path": "members", "value": sent}])
    scim_type = answer.body.get("scimType") if isinstance(answer.body, dict) else None
    return answer.status, scim_type, await members_of(scim, group_id)


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("member", ACCEPTED)
async def test_post_put_and_patch_accept_the_same_member_references(scim: Scim, way: str, member: object) -> None:
    user = await scim.create_user("barbara")
    status, _, members = await _write_member(scim, way, _with_id(member, user["id"]))
    assert status in (200, 201) and members == [user["id"]], (status, members)


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("member", REFUSED)
async def test_post_put_and_patch_refuse_the_same_member_references(scim: Scim, way: str, member: object) -> None:
    user = await scim.create_user("barbara")
    status, scim_type, members = await _write_member(scim, way, _with_id(member, user["id"]))
    assert (status, scim_type, members) == (400, "invalidValue", [])


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("member", [pytest.param({"value": "{id}"}, id="object"), pytest.param("{id}", id="string")])
async def test_one_member_not_in_an_array_is_read_alike_by_every_way(scim: Scim, way: str, member: object) -> None:
    # `"members": <one member>` without the array: every way took a lone object, and PATCH (the one member parser)
    # a lone id string too, but POST and PUT refused the string ("members must be an array").
    user = await scim.create_user("barbara")
    status, _, members = await _write_member(scim, way, _with_id(member, user["id"]), in_array=False)
    assert status in (200, 201) and members == [user["id"]], (status, members)


async def test_a_member_patch_without_a_read_first_still_answers_404_412_and_moves_the_version(scim: Scim) -> None:
    # A PATCH of members alone is written without reading the group first (Directory.patch): the write itself
    # must still refuse an unknown group and a stale If-Match, and move the version of a changed membership.
    alice, bob = await scim.create_user("alice"), await scim.create_user("bob")
    group = await scim.create_group("g")
    add_alice = [{"op": "add", "path": "members", "value": [{"value": alice["id"]}]}]
    missing = await scim.patch("/Groups/no-such-group", add_alice)
    assert missing.status == 404 and "no-such-group" in missing.body["detail"]
    etag = group["meta"]["version"]
    added = await scim.patch(f"/Groups/{group['id']}", add_alice, headers={"If-Match": etag})
    assert added.status == 200 and added.body["meta"]["version"] != etag
    assert [m["value"] for m in added.body["members"]] == [alice["id"]]
    stale = await scim.patch(f"/Groups/{group['id']}", [{"op": "add", "path": "members",
                                                          "value": [{"value": bob["id"]}]}], headers={"If-Match": etag})
    assert stale.status == 412
    assert await members_of(scim, group["id"]) == [alice["id"]]
    again = await scim.patch(f"/Groups/{group['id']}", add_alice)
    assert again.status == 200 and again.body["meta"]["version"] == added.body["meta"]["version"]
