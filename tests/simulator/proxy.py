"""A tiny reverse proxy for the selftest's tests, with a switch for each misconfiguration admins make."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import httpx2
from aiohttp import web
from yarl import URL

from tests.conftest import read_database_now

# Not forwarded by any proxy (RFC 9110 §7.6.1), plus what aiohttp recomputes itself.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade", "host", "content-length"}


@dataclass(frozen=True)
class Switches:
    strip_authorization: bool = False      # e.g. Apache without CGIPassAuth
    max_body_bytes: int | None = None      # e.g. nginx client_max_body_size: a plain-text 413 past it
    rewrite_host: bool = False             # send the upstream's address as Host (nginx proxy_pass without Host)
    reject_double_slash: bool = False      # routes by exact path, so /scim/v2//Users is a plain 404
    forbid: tuple[tuple[str, str], ...] = ()  # (method, path fragment): a SCIM 403, as a token without the scope
    delay: float = 0.0                     # seconds before forwarding each request
    refuse_scim_json: bool = False         # a firewall that knows only application/json: a plain-text 415
    drop_query: bool = False               # forwards the path only, so every filter is lost


def proxy_app(backend: str, switches: Switches) -> web.Application:
    """Forward every request to `backend` (http://127.0.0.1:PORT), misbehaving as `switches` say."""
    state: dict[str, aiohttp.ClientSession] = {}

    async def session(app: web.Application) -> Any:
        state["session"] = aiohttp.ClientSession(auto_decompress=False)
        yield
        await state["session"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        if switches.delay:
            await asyncio.sleep(switches.delay)
        path = request.raw_path.split("?")[0]
        if switches.reject_double_slash and "//" in path:
            return web.Response(status=404, text="404 page not found\n", content_type="text/plain")
        for method, fragment in switches.forbid:
            if request.method == method and fragment in path:
                return web.json_response({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                                          "status": "403", "detail": "The token may not do this."},
                                         status=403, content_type="application/scim+json")
        if switches.refuse_scim_json and request.content_type == "application/scim+json":
            return web.Response(status=415, text="Unsupported Media Type\n", content_type="text/plain")
        body = await request.read()
        if switches.max_body_bytes is not None and len(body) > switches.max_body_bytes:
            return web.Response(status=413, text="<html><body>413 Request Entity Too Large</body></html>",
                                content_type="text/html")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        if switches.strip_authorization:
            headers.pop("Authorization", None)
        if not switches.rewrite_host:
            headers["Host"] = request.headers.get("Host", "")
        target = request.raw_path.split("?")[0] if switches.drop_query else request.raw_path
        async with state["session"].request(request.method, URL(backend + target, encoded=True),
                                            headers=headers, data=body or None, allow_redirects=False) as answer:
            payload = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP
                    and k.lower() != "content-encoding"}
            return web.Response(status=answer.status, body=payload, headers=kept)

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.cleanup_ctx.append(session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def snapshot(base_url: str, token: str, db_path: str) -> dict[str, Any]:
    """Everything a selftest must leave as it was: users, groups, the roster and the tokens."""
    headers = {"Authorization": f"Bearer {token}"}
    root = base_url.removesuffix("/scim/v2")
    with httpx2.Client(headers=headers, trust_env=False, timeout=10) as http:
        users = http.get(f"{base_url}/Users", params={"count": "1000"}).json()
        groups = http.get(f"{base_url}/Groups", params={"count": "1000"}).json()
        members = http.get(f"{root}/api/members").json()
    # Every token as stored, less when it was last used (a selftest uses one): a rotation would set previous_until.
    tokens = read_database_now(db_path, lambda tx: [replace(record, last_used=None) for record in tx.tokens.list_all()])
    return {"users": users, "groups": groups, "members": members, "tokens": tokens}


def seed_organization(base_url: str, token: str) -> None:
    """A live organization's worth of data: role groups with members, an inert group, a suspended user."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx2.Client(headers=headers, trust_env=False, timeout=10) as http:
        ids = {}
        for name in ("ada@acme.example", "ben@acme.example", "cleo@acme.example"):
            ids[name] = http.post(f"{base_url}/Users", json={"userName": name, "active": True}).json()["id"]
        for group, people in (("rollcall-administrators", ["ada@acme.example"]),
                              ("rollcall-members", ["ben@acme.example", "cleo@acme.example"]), ("Engineering", [])):
            answer = http.post(f"{base_url}/Groups", json={"displayName": group,
                                                           "members": [{"value": ids[p]} for p in people]})
            assert answer.status_code == 201, answer.text
        http.patch(f"{base_url}/Users/{ids['cleo@acme.example']}", json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}]})
