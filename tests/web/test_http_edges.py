"""The HTTP edge as a client sees it: HEAD wherever GET is, a Server header without versions, compressed bodies,
and the Host header pinned by --trusted-hosts."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from app.config import Settings
from app.web.app import init_app
from tests.conftest import USER_SCHEMA, Scim
from tests.reliability.conftest import assert_scim_error


def test_head_is_routed_wherever_get_is(settings: Settings) -> None:
    app = init_app(settings)
    checked = 0
    for resource in app.router.resources():
        methods = {route.method for route in resource}
        if "GET" in methods:
            assert "HEAD" in methods, f"{resource.canonical} answers GET but not HEAD"
            checked += 1
    assert checked >= 10


async def test_head_on_scim_resources_answers_like_get_without_a_body(scim: Scim) -> None:
    user = await scim.create_user("head")
    for path in ("/scim/v2/Users", f"/scim/v2/Users/{user['id']}", "/scim/v2/Groups", "/api/members"):
        response = await scim.client.request("HEAD", path, headers={"Authorization": f"Bearer {scim.token}"})
        assert response.status == 200, path
        assert await response.read() == b""


async def test_the_server_header_names_no_versions_on_success_and_error(scim: Scim) -> None:
    for answer in (await scim.get("/Users"), await scim.get("/Users/nope"), await scim.get("/Users", auth=False),
                   await scim.request("DELETE", "/Users")):
        assert answer.headers["Server"] == "rollcall", answer.status


async def test_a_gzip_body_is_read(scim: Scim) -> None:
    body = gzip.compress(b'{"schemas": ["%s"], "userName": "zipped"}' % USER_SCHEMA.encode())
    answer = await scim.request("POST", "/Users", raw=body, headers={"Content-Encoding": "gzip"})
    assert answer.status == 201, answer.body
    deflated = zlib.compress(b'{"userName": "deflated"}')
    answer = await scim.request("POST", "/Users", raw=deflated, headers={"Content-Encoding": "deflate"})
    assert answer.status == 201, answer.body


@pytest.mark.parametrize(("raw", "encoding", "status"), [
    (b"0123456789", "gzip", 400),
    (gzip.compress(b'{"userName": "cut"}')[:-6], "gzip", 400),
    (gzip.compress(b'{"userName": "x"}') + b"junk", "gzip", 400),
    (b"\x00garbage", "deflate", 400),
    (gzip.compress(b" " * (3 * 1024 * 1024)), "gzip", 413),  # 3 MiB of JSON whitespace in 3 KB
    (b'{"userName": "x"}', "br", 415),
])
async def test_a_body_its_content_encoding_does_not_fit_is_a_scim_error(scim: Scim, raw: bytes, encoding: str,
                                                                        status: int) -> None:
    answer = await scim.request("POST", "/Users", raw=raw, headers={"Content-Encoding": encoding})
    assert answer.status == status, answer.body
    assert answer.body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    if status == 400:
        assert answer.body["scimType"] == "invalidSyntax"


async def test_trusted_hosts_refuse_any_other_host_before_it_reaches_meta_location(
        scim_with: Callable[..., Awaitable[Scim]]) -> None:
    scim = await scim_with(trusted_hosts=("rollcall.example.com",))
    forged = await scim.post("/Users", {"userName": "forged"}, headers={"Host": "evil.example"})
    assert forged.status == 400
    body = assert_scim_error(forged.status, forged.headers, _json(forged.body))
    assert "evil.example" not in body["detail"]
    listed = await scim.get("/Users", headers={"Host": "rollcall.example.com:8443"})
    assert listed.status == 200 and listed.body["totalResults"] == 0
    created = await scim.post("/Users", {"userName": "trusted"}, headers={"Host": "Rollcall.Example.com"})
    assert created.status == 201
    assert created.body["meta"]["location"].lower().startswith("http://rollcall.example.com/scim/v2/users/")
    health = await scim.client.get("/healthz", headers={"Host": "10.0.0.7:8080"})
    assert health.status == 200  # a load balancer's probe names the address it dials


@pytest.mark.parametrize("hosts", [("",), ("rollcall.example.com/scim",), ("a b",), ("user@host",)])
def test_trusted_hosts_must_be_host_names(hosts: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="--trusted-hosts"):
        Settings(trusted_hosts=hosts)


def _json(body: Any) -> str:
    import json
    return json.dumps(body)


async def test_a_request_without_host_gets_a_location_from_the_listening_address(scim: Scim) -> None:
    import socket
    port = scim.client.server.port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /scim/v2/ServiceProviderConfig HTTP/1.0\r\nAuthorization: Bearer "
                     + scim.token.encode() + b"\r\n\r\n")
        received = b""
        while chunk := await asyncio.get_running_loop().run_in_executor(None, sock.recv, 65536):
            received += chunk
    assert received.startswith(b"HTTP/1.0 200") or received.startswith(b"HTTP/1.1 200"), received[:200]
    assert b'"location":"http://127.0.0.1:8080/scim/v2/ServiceProviderConfig"' in received, received[-300:]
