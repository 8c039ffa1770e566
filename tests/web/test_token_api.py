"""/api/tokens over real HTTP: an admin token lists, mints, rotates and revokes tokens; no value is ever listed;
bad input is a SCIM 400; other scopes get 403 (the scope walk in tests/reliability covers every route)."""

from __future__ import annotations

from app.config import Settings
from tests.conftest import Scim, mint_token


async def test_an_admin_token_manages_tokens_over_the_api(scim: Scim, settings: Settings) -> None:
    admin = Scim(scim.client, await mint_token(settings.db_path, "ops", ("admin",)))
    made = await admin.post("/api/tokens", {"name": "app", "scopes": ["roster"], "expires": "90d"})
    assert made.status == 201 and made.body["scopes"] == ["roster"] and made.body["token"].startswith("rc_")
    app = Scim(scim.client, made.body["token"])
    assert (await app.get("/api/members")).status == 200 and (await app.get("/Users")).status == 403
    listed = await admin.get("/api/tokens")
    assert listed.status == 200
    by_name = {t["name"]: t for t in listed.body["tokens"]}
    assert by_name["app"]["scopes"] == ["roster"] and by_name["app"]["expires"] is not None
    assert by_name["tests"]["scopes"] == ["scim", "roster"]
    assert made.body["token"] not in str(listed.body) and scim.token not in str(listed.body)
    rotated = await admin.post("/api/tokens/app/rotate", {"grace": "1h"})
    assert rotated.status == 200 and rotated.body["token"] != made.body["token"]
    assert (await Scim(scim.client, rotated.body["token"]).get("/api/members")).status == 200
    assert (await app.get("/api/members")).status == 200  # the old value, within its grace period
    assert (await admin.delete("/api/tokens/app")).status == 204
    assert (await app.get("/api/members")).status == 401
    assert (await Scim(scim.client, rotated.body["token"]).get("/api/members")).status == 401
    assert (await admin.delete("/api/tokens/app")).status == 404


async def test_bad_token_requests_get_a_400_and_a_scim_token_a_403(scim: Scim, settings: Settings) -> None:
    admin = Scim(scim.client, await mint_token(settings.db_path, "ops", ("admin",)))
    for body, words in (({}, "name is required"), ({"name": "a b"}, "Invalid token name"),
                        ({"name": "x", "scopes": ["root"]}, "Unknown scope"), ({"name": "x", "scopes": "scim"},
                                                                                 "scopes is a list"),
                        ({"name": "x", "expires": "soon"}, "duration"), ({"name": "tests"}, "already exists")):
        answer = await admin.post("/api/tokens", body)
        assert answer.status == 400 and words in answer.body["detail"], (body, answer.body)
    refused = await scim.get("/api/tokens")
    assert refused.status == 403 and "'admin' scope" in refused.body["detail"]
