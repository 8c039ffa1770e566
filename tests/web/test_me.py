"""/Me (RFC 7644 §3.11): rollcall's tokens belong to clients, not Users, so it answers 501, after authentication."""

from __future__ import annotations

import pytest

from tests.conftest import USER_SCHEMA, Scim

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_me_is_501_with_a_scim_error_for_every_method(scim: Scim, method: str) -> None:
    body = {"schemas": [USER_SCHEMA], "userName": "me"} if method in ("POST", "PUT", "PATCH") else None
    answer = await scim.request(method, "/Me", body)
    assert answer.status == 501
    assert answer.body["schemas"] == [ERROR] and answer.body["status"] == "501"
    assert "no authenticated user resource" in answer.body["detail"]
    assert answer.headers["Content-Type"].startswith("application/scim+json")


async def test_me_needs_a_token_first(scim: Scim) -> None:
    assert (await scim.get("/Me", auth=False)).status == 401
    assert (await scim.get("/Me", headers={"Authorization": "Bearer rc_wrong"})).status == 401
    assert (await scim.get("/Me/")).status == 501
    assert (await scim.get("/Users?filter=userName eq \"me\"")).body["totalResults"] == 0
