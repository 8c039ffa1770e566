"""GET /auth/forward over real HTTP and a real SQLite file: members get 200 and X-Rollcall-* headers, everyone
else 403, no identity 400; the identity matches userName or any e-mail without regard to case; the request shapes
of the README's Caddy and nginx snippets are answered; the lookup writes nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.config import Settings
from app.web.keys import DATABASE
from tests.conftest import REPO, Scim, mint_token


@pytest.fixture
async def proxy(scim: Scim, settings: Settings) -> Scim:
    """A client holding a roster-only token, as a proxy would, on the same server as `scim`."""
    return Scim(scim.client, await mint_token(settings.db_path, "proxy", ("roster",)))


async def _people(scim: Scim) -> dict[str, Any]:
    ada = await scim.create_user("ada", emails=[{"value": "Ada@Example.com", "primary": True},
                                               {"value": "ada.lovelace@EXAMPLE.org"}, {"value": "ada@strasse.de"}])
    bob = await scim.create_user("bob", emails=[{"value": "bob@example.com"}])
    eve = await scim.create_user("eve", emails=[{"value": "eve@example.com"}])
    gus = await scim.create_user("gus", emails=[{"value": "gus@example.com"}])
    await scim.create_group("rollcall-administrators", [ada["id"]])
    await scim.create_group("rollcall-members", [bob["id"], eve["id"]])
    answer = await scim.patch(f"/Users/{eve['id']}", [{"op": "replace", "path": "active", "value": False}])
    assert answer.status == 200
    return {"ada": ada, "bob": bob, "eve": eve, "gus": gus}


async def test_a_member_is_let_in_with_role_and_user_headers(scim: Scim, proxy: Scim) -> None:
    people = await _people(scim)
    answer = await proxy.get("/auth/forward", headers={"X-Forwarded-Email": "ADA@example.COM"})
    assert answer.status == 200, answer.body
    assert answer.headers["X-Rollcall-Role"] == "admin"
    assert answer.headers["X-Rollcall-User"] == "ada"
    assert answer.headers["X-Rollcall-User-Id"] == people["ada"]["id"]
    assert answer.body == {"id": people["ada"]["id"], "userName": "ada", "role": "admin"}
    # Any e-mail, not only the primary one; the userName too; and ?user= when no header is sent.
    for named in ("Ada.Lovelace@example.ORG", "ADA", "ada@STRAßE.de"):
        again = await proxy.get("/auth/forward", headers={"X-Forwarded-Email": named})
        assert again.status == 200 and again.headers["X-Rollcall-User"] == "ada"
    asked = await proxy.get("/auth/forward?user=BOB@example.com")
    assert asked.status == 200 and asked.headers["X-Rollcall-Role"] == "member"


@pytest.mark.parametrize("who, why", [("nobody@example.com", "No user"), ("eve@example.com", "not a member"),
                                      ("gus", "not a member")])
async def test_someone_who_is_not_a_member_gets_403(scim: Scim, proxy: Scim, who: str, why: str) -> None:
    await _people(scim)
    answer = await proxy.get("/auth/forward", headers={"X-Forwarded-Email": who})
    assert answer.status == 403
    assert "scimType" not in answer.body and why in answer.body["detail"]
    assert "X-Rollcall-Role" not in answer.headers


async def test_min_role_refuses_anyone_below_it(scim: Scim, proxy: Scim) -> None:
    await _people(scim)
    below = await proxy.get("/auth/forward?min_role=admin", headers={"X-Forwarded-Email": "bob@example.com"})
    assert below.status == 403 and "admin or above" in below.body["detail"]
    assert (await proxy.get("/auth/forward?min_role=admin", headers={"X-Forwarded-Email": "ada"})).status == 200
    assert (await proxy.get("/auth/forward?min_role=member", headers={"X-Forwarded-Email": "bob"})).status == 200
    wrong = await proxy.get("/auth/forward?min_role=owner", headers={"X-Forwarded-Email": "bob"})
    assert wrong.status == 400 and "min_role must be one of" in wrong.body["detail"]


async def test_no_identity_is_a_400_that_names_the_header(scim: Scim, proxy: Scim) -> None:
    for headers in ({}, {"X-Forwarded-Email": "  "}):
        answer = await proxy.get("/auth/forward", headers=headers)
        assert answer.status == 400 and "X-Forwarded-Email" in answer.body["detail"]


async def test_the_header_is_the_one_configured(scim_with: Any, settings: Settings) -> None:
    scim = await scim_with(forward_auth_header="Remote-User")
    await _people(scim)
    assert (await scim.get("/auth/forward", headers={"Remote-User": "ada"})).status == 200
    ignored = await scim.get("/auth/forward", headers={"X-Forwarded-Email": "ada"})
    assert ignored.status == 400 and "Remote-User" in ignored.body["detail"]


async def test_the_email_lookup_follows_every_write_of_a_user(scim: Scim, proxy: Scim) -> None:
    people = await _people(scim)
    bob = people["bob"]["id"]
    replaced = await scim.patch(f"/Users/{bob}", [{"op": "replace", "path": "emails",
                                                   "value": [{"value": "robert@example.com"}]}])
    assert replaced.status == 200
    assert (await proxy.get("/auth/forward?user=bob@example.com")).status == 403
    assert (await proxy.get("/auth/forward?user=ROBERT@example.com")).status == 200
    put = await scim.put(f"/Users/{bob}", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                           "userName": "bob", "emails": [{"value": "bobby@example.com"}]})
    assert put.status == 200
    assert (await proxy.get("/auth/forward?user=robert@example.com")).status == 403
    assert (await proxy.get("/auth/forward?user=bobby@example.com")).status == 200
    assert (await scim.delete(f"/Users/{bob}")).status == 204
    assert (await proxy.get("/auth/forward?user=bobby@example.com")).status == 403


async def test_an_email_shared_by_two_users_names_neither(scim: Scim, proxy: Scim) -> None:
    one = await scim.create_user("one", emails=[{"value": "team@example.com"}])
    two = await scim.create_user("two", emails=[{"value": "TEAM@example.com"}])
    await scim.create_group("rollcall-members", [one["id"], two["id"]])
    answer = await proxy.get("/auth/forward?user=team@example.com")
    assert answer.status == 403 and "more than one user" in answer.body["detail"]


def _readme_block(language: str) -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(rf"```{language}\n(.*?)```", text[text.index("### Forward auth"):], re.S)
    assert match, f"README's Forward auth section has no {language} block"
    return match.group(1)


async def test_caddy_forward_auth_request_shape(scim: Scim, proxy: Scim) -> None:
    """What the README's Caddy snippet sends: GET to its `uri`, the original method and URI in X-Forwarded-Method
    and -Uri, every original header copied (a cookie, the SSO layer's X-Forwarded-Email), Authorization set by
    header_up; the headers it copies back must be in the answer."""
    block = _readme_block("caddyfile")
    uri = re.search(r"^\s*uri (\S+)$", block, re.M).group(1)  # type: ignore[union-attr]
    copied = re.search(r"^\s*copy_headers (.+)$", block, re.M).group(1).split()  # type: ignore[union-attr]
    assert 'header_up Authorization "Bearer ' in block
    await _people(scim)
    headers = {"X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/app/settings?tab=1",
               "X-Forwarded-Host": "app.example.com", "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9",
               "Cookie": "session=abc", "Accept": "text/html", "X-Forwarded-Email": "ada@example.com"}
    answer = await proxy.get(uri, headers=headers)
    assert answer.status == 200
    assert all(name in answer.headers for name in copied) and answer.headers["X-Rollcall-Role"] == "admin"
    guest = await scim.create_user("gwen")
    await scim.create_group("rollcall-guests", [guest["id"]])
    assert (await proxy.get(uri, headers={**headers, "X-Forwarded-Email": "gwen"})).status == 403  # below member


async def test_nginx_auth_request_shape(scim: Scim, proxy: Scim) -> None:
    """What the README's nginx snippet sends: a subrequest to its proxy_pass path with the original method and
    headers, the body dropped (proxy_pass_request_body off, Content-Length ""), X-Original-URI, Authorization;
    the $upstream_http_* headers it reads must be in the answer."""
    block = _readme_block("nginx")
    target = re.search(r"proxy_pass http://[^/]+(/auth/forward\S*);", block).group(1)  # type: ignore[union-attr]
    read_back = [name.replace("_", "-") for name in re.findall(r"\$upstream_http_(\w+)", block)]
    assert "proxy_pass_request_body off;" in block and 'proxy_set_header Authorization "Bearer ' in block
    await _people(scim)
    for method in ("GET", "POST", "PUT", "DELETE", "HEAD"):
        answer = await proxy.request(method, target, headers={
            "X-Original-URI": "/app/upload", "X-Forwarded-Email": "bob@example.com", "Cookie": "s=1",
            "Content-Type": "multipart/form-data; boundary=x"})
        assert answer.status == 200, (method, answer.body)
        assert read_back and all(name in answer.headers for name in read_back)
        assert answer.headers["X-Rollcall-User"] == "bob"
    assert (await proxy.get(target, headers={"X-Forwarded-Email": "eve@example.com"})).status == 403


async def test_forward_auth_needs_the_roster_scope_and_a_scim_token_is_refused(scim: Scim, settings: Settings
                                                                               ) -> None:
    await _people(scim)
    scim_only = await mint_token(settings.db_path, "idp", ("scim",))
    answer = await Scim(scim.client, scim_only).get("/auth/forward?user=ada")
    assert answer.status == 403 and "'roster' scope" in answer.body["detail"] and "scimType" not in answer.body


async def test_asking_writes_nothing(scim: Scim, proxy: Scim) -> None:
    await _people(scim)
    assert (await proxy.get("/auth/forward?user=ada")).status == 200  # the token's first use is written once
    await scim.client.server.app[DATABASE].write(lambda conn: None)  # ...and has committed by now
    before = scim.client.server.app[DATABASE].generation
    for _ in range(30):
        assert (await proxy.get("/auth/forward?user=ada")).status == 200
        assert (await proxy.get("/auth/forward?user=nobody")).status == 403
    assert scim.client.server.app[DATABASE].generation == before

