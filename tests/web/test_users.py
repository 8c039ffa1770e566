"""RFC 7644 §3.3-§3.6 for Users, over real HTTP against a real database."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from tests.conftest import ENTERPRISE, SCIM_JSON, USER_SCHEMA, Scim

JANE = {
    "schemas": [USER_SCHEMA],
    "userName": "Jane.Doe@Acme.com",
    "name": {"givenName": "Jane", "familyName": "Doe"},
    "displayName": "Jane Doe",
    "emails": [{"value": "jane.doe@acme.com", "type": "work", "primary": True}],
    "userType": "Employee",
    "active": True,
}


async def test_rfc7644_3_3_post_creates_with_201_location_etag_and_string_id(scim: Scim) -> None:
    answer = await scim.post("/Users", JANE)
    assert answer.status == 201
    body = answer.body
    assert isinstance(body["id"], str) and len(body["id"]) >= 16
    assert answer.headers["Content-Type"].startswith(SCIM_JSON)
    assert answer.headers["Location"] == body["meta"]["location"]
    assert body["meta"]["location"].endswith(f"/scim/v2/Users/{body['id']}")
    assert body["meta"]["location"].startswith("http://")
    assert answer.headers["ETag"] == body["meta"]["version"]
    assert body["meta"]["resourceType"] == "User"
    assert body["meta"]["created"] == body["meta"]["lastModified"]
    assert body["userName"] == "Jane.Doe@Acme.com"
    assert body["active"] is True
    assert body["schemas"] == [USER_SCHEMA]


async def test_password_is_accepted_but_never_stored_or_returned(scim: Scim) -> None:
    created = (await scim.post("/Users", {**JANE, "password": "hunter2"})).body
    assert "password" not in created
    fetched = (await scim.get(f"/Users/{created['id']}")).body
    assert "password" not in fetched


async def test_unknown_attributes_are_ignored(scim: Scim) -> None:
    answer = await scim.post("/Users", {**JANE, "favouriteColour": "teal", "urn:example:thing": {"a": 1}})
    assert answer.status == 201
    assert "favouriteColour" not in answer.body


async def test_enterprise_extension_round_trips(scim: Scim) -> None:
    body = {**JANE, "schemas": [USER_SCHEMA, ENTERPRISE], ENTERPRISE: {"department": "Sales", "employeeNumber": "42"}}
    created = (await scim.post("/Users", body)).body
    assert created[ENTERPRISE] == {"department": "Sales", "employeeNumber": "42"}
    assert ENTERPRISE in created["schemas"]


async def test_username_is_unique_case_insensitively_and_keeps_its_case(scim: Scim) -> None:
    await scim.post("/Users", JANE)
    answer = await scim.post("/Users", {**JANE, "userName": "jane.doe@acme.COM"})
    assert answer.status == 409
    assert answer.body["scimType"] == "uniqueness"
    assert answer.body["status"] == "409"
    assert "jane.doe@acme.COM" in answer.body["detail"]


async def test_get_by_id_and_404_for_unknown_id(scim: Scim) -> None:
    created = await scim.create_user("bjensen")
    fetched = await scim.get(f"/Users/{created['id']}")
    assert fetched.status == 200 and fetched.body == created
    missing = await scim.get("/Users/does-not-exist")
    assert missing.status == 404
    assert missing.body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert missing.body["status"] == "404"


async def test_rfc7644_3_5_1_put_replaces_the_user(scim: Scim) -> None:
    created = (await scim.post("/Users", JANE)).body
    replaced = await scim.put(f"/Users/{created['id']}", {"schemas": [USER_SCHEMA], "userName": "jane@acme.com",
                                                          "active": False})
    assert replaced.status == 200
    assert replaced.body["userName"] == "jane@acme.com"
    assert replaced.body["active"] is False
    assert "name" not in replaced.body and "emails" not in replaced.body
    assert replaced.body["meta"]["created"] == created["meta"]["created"]
    assert replaced.body["meta"]["version"] != created["meta"]["version"]


async def test_put_to_a_taken_username_is_409(scim: Scim) -> None:
    await scim.create_user("taken")
    other = await scim.create_user("other")
    answer = await scim.put(f"/Users/{other['id']}", {"schemas": [USER_SCHEMA], "userName": "TAKEN"})
    assert answer.status == 409 and answer.body["scimType"] == "uniqueness"


async def test_rfc7644_3_6_delete_answers_204_then_404(scim: Scim) -> None:
    created = await scim.create_user("gone")
    assert (await scim.delete(f"/Users/{created['id']}")).status == 204
    assert (await scim.get(f"/Users/{created['id']}")).status == 404
    assert (await scim.delete(f"/Users/{created['id']}")).status == 404


async def test_rfc7644_3_14_if_match_mismatch_is_412_on_put_patch_delete(scim: Scim) -> None:
    created = await scim.create_user("etag")
    stale = {"If-Match": 'W/"999"'}
    path = f"/Users/{created['id']}"
    assert (await scim.put(path, {"userName": "etag"}, headers=stale)).status == 412
    deactivate = [{"op": "replace", "path": "active", "value": False}]
    assert (await scim.patch(path, deactivate, headers=stale)).status == 412
    assert (await scim.delete(path, headers=stale)).status == 412
    current = {"If-Match": created["meta"]["version"]}
    assert (await scim.patch(path, deactivate, headers=current)).status == 200


async def test_if_none_match_gives_304(scim: Scim) -> None:
    created = await scim.create_user("cached")
    answer = await scim.get(f"/Users/{created['id']}", headers={"If-None-Match": created["meta"]["version"]})
    assert answer.status == 304


async def test_patch_answers_200_with_the_full_resource(scim: Scim) -> None:
    created = (await scim.post("/Users", JANE)).body
    answer = await scim.patch(f"/Users/{created['id']}", [
        {"op": "replace", "path": "name.givenName", "value": "Janet"},
        {"op": "replace", "path": "name.familyName", "value": "Doe-Smith"},
        {"op": "replace", "path": "displayName", "value": "Janet Doe-Smith"},
    ])
    assert answer.status == 200
    assert answer.body["name"] == {"givenName": "Janet", "familyName": "Doe-Smith"}
    assert answer.body["emails"] == JANE["emails"]
    assert answer.headers["ETag"] == answer.body["meta"]["version"]


@pytest.mark.parametrize("operation", [
    {"op": "replace", "path": "active", "value": False},                      # JumpCloud
    {"op": "replace", "value": {"active": False}},                            # Okta
    {"op": "Replace", "path": "active", "value": "False"},                    # Entra
])
async def test_deactivation_in_every_dialect(scim: Scim, operation: dict) -> None:
    created = await scim.create_user("suspended", active=True)
    answer = await scim.patch(f"/Users/{created['id']}", [operation])
    assert answer.status == 200 and answer.body["active"] is False
    assert (await scim.get(f"/Users/{created['id']}")).body["active"] is False


async def test_patch_is_all_or_nothing(scim: Scim) -> None:
    created = await scim.create_user("atomic", displayName="Before")
    answer = await scim.patch(f"/Users/{created['id']}", [
        {"op": "replace", "path": "displayName", "value": "After"},
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "x@y.z"},  # no work email: noTarget
    ])
    assert answer.status == 400
    assert (await scim.get(f"/Users/{created['id']}")).body["displayName"] == "Before"


async def test_patch_to_a_taken_username_is_409_and_changes_nothing(scim: Scim) -> None:
    await scim.create_user("first")
    second = await scim.create_user("second")
    answer = await scim.patch(f"/Users/{second['id']}", [{"op": "replace", "path": "userName", "value": "FIRST"}])
    assert answer.status == 409
    assert (await scim.get(f"/Users/{second['id']}")).body["userName"] == "second"


async def test_user_groups_attribute_lists_memberships(scim: Scim) -> None:
    user = await scim.create_user("member")
    group = await scim.create_group("rollcall-members", [user["id"]])
    fetched = (await scim.get(f"/Users/{user['id']}")).body
    assert fetched["groups"] == [{"value": group["id"], "$ref": group["meta"]["location"],
                                  "display": "rollcall-members", "type": "direct"}]


async def test_deleting_a_user_removes_their_memberships(scim: Scim) -> None:
    user = await scim.create_user("leaver")
    stayer = await scim.create_user("stayer")
    group = await scim.create_group("team", [user["id"], stayer["id"]])
    await scim.delete(f"/Users/{user['id']}")
    fetched = (await scim.get(f"/Groups/{group['id']}")).body
    assert [m["value"] for m in fetched["members"]] == [stayer["id"]]
    assert fetched["meta"]["version"] != group["meta"]["version"]


async def test_attributes_and_excluded_attributes_on_get(scim: Scim) -> None:
    created = (await scim.post("/Users", JANE)).body
    only = (await scim.get(f"/Users/{created['id']}?attributes=userName,name.givenName")).body
    assert set(only) == {"schemas", "id", "userName", "name"}
    assert only["name"] == {"givenName": "Jane"}
    without = (await scim.get(f"/Users/{created['id']}?excludedAttributes=emails,name")).body
    assert "emails" not in without and "name" not in without and without["id"] == created["id"]


def _emails(count: int, prefix: str) -> list[dict[str, str]]:
    return [{"value": f"{prefix}{n}@example.com"} for n in range(count)]


async def test_a_4000_value_patch_is_done_or_refused_at_once_and_writers_go_on(scim: Scim) -> None:
    # Pairwise comparison made `remove` of 4,000 values from 4,000 take ~30 s, every other write queued behind it.
    user = await scim.create_user("many", emails=_emails(1000, "held"))
    path = f"/Users/{user['id']}"
    started = time.perf_counter()
    removed = await scim.patch(path, [{"op": "remove", "path": "emails", "value": _emails(4000, "other")}])
    assert removed.status == 200 and len(removed.body["emails"]) == 1000
    added = await scim.patch(path, [{"op": "add", "path": "emails", "value": _emails(4000, "new")}])
    assert (added.status, added.body["scimType"]) == (400, "invalidValue")
    assert added.body["detail"] == "emails holds more than 1000 values (5000 given); the limit is 1000 per attribute"
    one_more = await scim.patch(path, [{"op": "add", "path": "emails", "value": [{"value": "1001@example.com"}]}])
    assert one_more.status == 400 and "the limit is 1000" in one_more.body["detail"]
    assert time.perf_counter() - started < 5.0  # three requests; the pairwise engine took minutes
    assert (await scim.get(path)).body["emails"] == _emails(1000, "held")
    assert (await scim.patch(path, [{"op": "replace", "path": "title", "value": "next"}])).status == 200


async def test_a_patch_whose_filters_would_compare_millions_of_values_is_refused_at_once(scim: Scim) -> None:
    # 200 operations with 250-term filters over 1,000 emails, 900 KB: 50 million comparisons on the writer.
    user = await scim.create_user("filtered", emails=_emails(1000, "held"))
    chain = " or ".join(['value eq "x"'] * 250)
    started = time.perf_counter()
    answer = await scim.patch(f"/Users/{user['id']}", [{"op": "remove", "path": f"emails[{chain}]"}] * 200)
    assert (answer.status, answer.body["scimType"]) == (400, "invalidValue")
    assert "more than 100,000 values" in answer.body["detail"]
    assert time.perf_counter() - started < 30.0  # parsing 900 KB of filters takes ~1 s; the work would take minutes


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_post_and_put_refuse_more_values_than_the_cap(scim: Scim, method: str) -> None:
    user = await scim.create_user("capped")
    body = {"schemas": [USER_SCHEMA], "userName": "capped", "phoneNumbers": [{"value": str(n)} for n in range(1001)]}
    answer = await scim.request(method, "/Users" if method == "POST" else f"/Users/{user['id']}", body)
    assert (answer.status, answer.body["scimType"]) == (400, "invalidValue")
    assert answer.body["detail"].startswith("phoneNumbers holds more than 1000 values")


@pytest.mark.parametrize(("stored", "asked"), [
    ("straße@x.example", "STRASSE@x.example"),  # the example: ß folds to ss, lower() keeps it
    ("ﬁnance@x.example", "FINANCE@x.example"),  # a ligature
])
async def test_get_filter_and_patch_value_filter_fold_case_alike(scim: Scim, stored: str, asked: str) -> None:
    user = await scim.create_user("fold@x.example", emails=[{"value": stored, "type": "work"},
                                                             {"value": "other@x.example", "type": "home"}])
    path = f'emails[value eq "{asked}"]'
    listed = await scim.get(f"/Users?filter={quote(path)}")
    assert listed.body["totalResults"] == 1
    patched = await scim.patch(f"/Users/{user['id']}", [{"op": "replace", "path": f"{path}.type", "value": "other"}])
    assert patched.status == 200, patched.body  # noTarget before: PATCH folded with lower()
    assert {e["value"]: e["type"] for e in patched.body["emails"]}[stored] == "other"
    removed = await scim.patch(f"/Users/{user['id']}", [{"op": "remove", "path": "emails",
                                                         "value": [{"value": asked}]}])
    assert removed.status == 200 and [e["value"] for e in removed.body["emails"]] == ["other@x.example"]


async def test_patch_of_one_attribute_leaves_the_other_searches_and_moves_its_own(scim: Scim) -> None:
    # Each indexed attribute patched alone: its own filter and the members search follow at once, the others still
    # find the user, and the unique userName key moves with the name (the old name is free, the new one is taken).
    user = await scim.create_user("first.name", displayName="First Shown", externalId="ext-1")
    await scim.create_group("rollcall-members", [user["id"]])

    async def filtered(expression: str) -> list[str]:
        answer = await scim.get(f"/Users?filter={quote(expression)}")
        assert answer.status == 200, answer.body
        return [found["id"] for found in answer.body.get("Resources", [])]

    async def searched(term: str) -> list[str]:
        answer = await scim.get(f"/api/members?q={quote(term)}")
        assert answer.status == 200, answer.body
        return [member["userName"] for member in answer.body["members"]]

    async def patch(path: str, value: object) -> None:
        answer = await scim.patch(f"/Users/{user['id']}", [{"op": "replace", "path": path, "value": value}])
        assert answer.status == 200, answer.body

    await patch("displayName", "Second Shown")
    assert await filtered('displayName eq "second shown"') == [user["id"]]
    assert await filtered('displayName eq "First Shown"') == []
    assert await searched("SECOND SHOWN") == ["first.name"] and await searched("first shown") == []
    assert await filtered('userName eq "FIRST.NAME"') == [user["id"]]
    assert await filtered('externalId eq "ext-1"') == [user["id"]]

    await patch("externalId", "ext-2")
    assert await filtered('externalId eq "ext-2"') == [user["id"]] and await filtered('externalId eq "ext-1"') == []
    assert await filtered('displayName eq "Second Shown"') == [user["id"]]

    await patch("userName", "second.name")
    assert await filtered('userName eq "SECOND.NAME"') == [user["id"]]
    assert await filtered('userName eq "first.name"') == []
    assert await searched("second.name") == ["second.name"] and await searched("first.name") == []
    assert await filtered('displayName eq "Second Shown"') == [user["id"]]
    assert (await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "second.name"})).status == 409
    assert (await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "First.Name"})).status == 201

    await patch("active", False)
    assert await filtered("active eq false") == [user["id"]]
    assert await filtered('userName eq "second.name" and active eq true') == []
    assert await filtered('externalId eq "ext-2"') == [user["id"]]
