"""The route table: endpoint names match without regard to case, as Microsoft's Entra test collection sends them."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import Settings
from tests.conftest import GROUP_SCHEMA, PATCH_OP, USER_SCHEMA, Scim, mint_token

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
SPELLINGS = [str.lower, str.upper]


@pytest.mark.parametrize("spell", SPELLINGS, ids=["lower", "upper"])
async def test_every_resource_endpoint_answers_in_another_case(scim: Scim, spell: Any) -> None:
    users, groups = spell("/Users"), spell("/Groups")
    # The Entra collection's first request: POST /users.
    created = await scim.post(users, {"schemas": [USER_SCHEMA], "userName": "Test_User_ab@contoso.com"})
    assert created.status == 201, created.body
    user_id = created.body["id"]
    assert created.body["meta"]["location"].endswith(f"/scim/v2/Users/{user_id}")  # the canonical spelling
    group = await scim.post(groups, {"schemas": [GROUP_SCHEMA], "displayName": "Group_ab",
                                     "members": [{"value": user_id}]})
    assert group.status == 201, group.body
    group_id = group.body["id"]

    listed = await scim.get(f"{users}?filter=userName eq \"Test_User_ab@contoso.com\"")
    assert listed.status == 200 and listed.body["totalResults"] == 1
    assert (await scim.get(f"{users}/{user_id}")).body["id"] == user_id
    assert (await scim.get(f"{groups}/{group_id}")).body["id"] == group_id
    assert (await scim.get(groups)).body["totalResults"] == 1
    for path in (users, f"{users}/{user_id}", groups, spell("/ServiceProviderConfig"), spell("/Schemas"),
                 spell("/ResourceTypes"), f"{spell('/ResourceTypes')}/User", f"{spell('/Schemas')}/{USER_SCHEMA}"):
        assert (await scim.get(path)).status == 200, path
        assert (await scim.request("HEAD", path)).status == 200, f"HEAD {path}"
    for path in (f"{users}/.search", f"{groups}/.search", spell("/.search")):
        searched = await scim.post(path, {"schemas": [SEARCH], "filter": f'id eq "{user_id}"'})
        assert searched.status == 200, (path, searched.body)

    replaced = await scim.put(f"{users}/{user_id}", {"schemas": [USER_SCHEMA], "userName": "Test_User_ab@contoso.com",
                                                     "title": "put"})
    assert replaced.status == 200 and replaced.body["title"] == "put"
    patched = await scim.request("PATCH", f"{groups}/{group_id}", {
        "schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "Group_cd"}]})
    assert patched.status in (200, 204), patched.body
    assert (await scim.delete(f"{groups}/{group_id}")).status == 204
    assert (await scim.delete(f"{users}/{user_id}")).status == 204
    assert (await scim.get(f"/Users/{user_id}")).status == 404


async def test_a_name_that_is_no_endpoint_in_any_case_is_still_not_found(scim: Scim) -> None:
    for path in ("/userz", "/Users/x/y", "/users.search", "/schemasx", "/xusers"):
        assert (await scim.get(path)).status == 404, path


async def test_metrics_count_every_spelling_under_the_routes_own_name(scim_with: Any, settings: Settings) -> None:
    scim = await scim_with(metrics=True)
    scraper = await mint_token(settings.db_path, "prometheus", ("admin",))  # /metrics needs the admin scope
    user = await scim.create_user("someone")
    for path in (f"/users/{user['id']}", f"/USERS/{user['id']}", f"/Users/{user['id']}"):
        assert (await scim.get(path)).status == 200
    response = await scim.client.get("/metrics", headers={"Authorization": f"Bearer {scraper}"})
    text = await response.text()
    assert 'rollcall_requests_total{method="GET",route="/scim/v2/Users/{id}",status="200"} 3.0' in text
