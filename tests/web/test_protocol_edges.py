"""Authentication, content types, discovery and the error format, at the HTTP edge."""

from __future__ import annotations

import pytest

from tests.conftest import USER_SCHEMA, Scim

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.mark.parametrize("header", [None, "Bearer", "Basic dXNlcjpwYXNz", "Bearer wrong-token", "Token abc"])
async def test_every_route_needs_a_valid_bearer_token(scim: Scim, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    for path in ("/Users", "/Groups", "/ServiceProviderConfig", "/Schemas", "/ResourceTypes", "/Nope"):
        answer = await scim.get(path, auth=False, headers=headers)
        assert answer.status == 401, path
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert answer.body["schemas"] == [ERROR] and answer.body["status"] == "401"


async def test_bearer_scheme_word_is_case_insensitive(scim: Scim) -> None:
    answer = await scim.get("/Users", auth=False, headers={"Authorization": f"bearer {scim.token}"})
    assert answer.status == 200


async def test_revoked_token_stops_working_at_once(scim: Scim, settings) -> None:
    from app.domain.tokens import revoke_token
    from app.storage.factory import open_storage

    assert (await scim.get("/Users")).status == 200
    db = open_storage(settings.db_path)
    await db.open()
    await revoke_token(db, "tests")
    await db.close()
    assert (await scim.get("/Users")).status == 401


@pytest.mark.parametrize("content_type", ["application/scim+json", "application/json",
                                          "application/json; charset=utf-8", "application/scim+json;charset=UTF-8"])
async def test_request_content_types_accepted(scim: Scim, content_type: str) -> None:
    answer = await scim.request("POST", "/Users", raw=b'{"userName": "ct"}', headers={"Content-Type": content_type})
    assert answer.status == 201
    assert answer.headers["Content-Type"].startswith("application/scim+json")


async def test_other_content_types_are_415(scim: Scim) -> None:
    answer = await scim.request("POST", "/Users", raw=b"userName=x", headers={"Content-Type": "text/plain"})
    assert answer.status == 415 and answer.body["schemas"] == [ERROR]


@pytest.mark.parametrize("raw,fragment", [(b"{not json", "not valid JSON"), (b"\xff\xfe{}", "UTF-8"),
                                          (b"[1, 2]", "object"), (b'"just a string"', "object"), (b"", "empty")])
async def test_malformed_bodies_are_400_invalidSyntax(scim: Scim, raw: bytes, fragment: str) -> None:
    answer = await scim.request("POST", "/Users", raw=raw)
    assert answer.status == 400, answer.body
    assert answer.body["scimType"] == "invalidSyntax" and fragment in answer.body["detail"]


async def test_body_over_the_limit_is_413(scim: Scim) -> None:
    answer = await scim.request("POST", "/Users", raw=b'{"userName": "' + b"x" * (1024 * 1024 + 10) + b'"}')
    assert answer.status == 413 and answer.body["schemas"] == [ERROR]


async def test_trailing_slashes_are_accepted(scim: Scim) -> None:
    assert (await scim.get("/scim/v2/Users/")).status == 200
    assert (await scim.get("/scim/v2//Users")).status == 200
    assert (await scim.get("/scim/v2/ServiceProviderConfig/")).status == 200


async def test_unknown_paths_are_scim_404s(scim: Scim) -> None:
    answer = await scim.get("/Widgets")
    assert answer.status == 404 and answer.body["schemas"] == [ERROR] and answer.body["status"] == "404"


@pytest.mark.parametrize("method,path", [("POST", "/ServiceProviderConfig"), ("DELETE", "/Schemas"),
                                         ("PUT", "/ResourceTypes"), ("POST", "/Users/some-id"),
                                         ("DELETE", "/Users")])
async def test_unsupported_methods_are_scim_405s(scim: Scim, method: str, path: str) -> None:
    answer = await scim.request(method, path, {} if method in ("POST", "PUT") else None)
    assert answer.status == 405 and answer.body["schemas"] == [ERROR] and answer.body["status"] == "405"
    assert answer.headers["Allow"]


async def test_discovery_endpoints(scim: Scim) -> None:
    config = (await scim.get("/ServiceProviderConfig")).body
    assert config["patch"]["supported"] is True and config["bulk"]["supported"] is True
    assert config["filter"]["supported"] is True and config["filter"]["maxResults"] == 1000
    assert config["etag"]["supported"] is True and config["sort"]["supported"] is True
    types = (await scim.get("/ResourceTypes")).body
    assert {t["name"] for t in types["Resources"]} == {"User", "Group"}
    assert (await scim.get("/ResourceTypes/User")).body["endpoint"] == "/Users"
    assert (await scim.get("/ResourceTypes/Widget")).status == 404
    schemas = (await scim.get("/Schemas")).body
    assert {s["id"] for s in schemas["Resources"]} == {
        USER_SCHEMA, "urn:ietf:params:scim:schemas:core:2.0:Group",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}
    assert (await scim.get(f"/Schemas/{USER_SCHEMA}")).body["name"] == "User"
    assert (await scim.get("/Schemas/urn:nope")).status == 404


async def test_a_very_long_filter_is_a_scim_error_not_a_parser_error(scim: Scim) -> None:
    from urllib.parse import quote

    text = " or ".join(f'userName eq "user{i:05d}@example.com"' for i in range(200))
    answer = await scim.get("/Users?filter=" + quote(text))
    assert len(quote(text)) > 8190
    assert answer.status == 400 and answer.body["scimType"] == "invalidFilter"
    assert "limit is 4096" in answer.body["detail"]


async def test_the_body_limit_is_configurable(scim_with) -> None:
    scim = await scim_with(max_body_bytes=4096)
    assert (await scim.post("/Users", {"userName": "small"})).status == 201
    answer = await scim.post("/Users", {"userName": "x" * 5000})
    assert answer.status == 413 and "4096 bytes" in answer.body["detail"]


# SQLite only: --durability is SQLite's synchronous setting.
@pytest.mark.engines("sqlite", reason="durability=full is SQLite's synchronous=FULL pragma")
async def test_durability_full_makes_every_commit_wait_for_the_disk(scim_with) -> None:
    from app.web.keys import DATABASE

    async def synchronous_of(scim) -> int:
        database = scim.client.server.app[DATABASE]
        return await database.read(lambda tx: tx.connection.execute("PRAGMA synchronous").fetchone()[0])

    assert await synchronous_of(await scim_with()) == 1  # NORMAL
    assert await synchronous_of(await scim_with(durability="full")) == 2  # FULL
