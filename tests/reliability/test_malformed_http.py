"""Bytes aiohttp's parser refuses, and bytes that used to reach our code as a 500: sent over raw sockets to a real
`rollcall serve`, with a real token made by `rollcall token create`. No byte of the token may reach the log or
an answer; every answer is a SCIM error, never a 500; the log has no traceback."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.reliability.conftest import ServedDatabase, ServerProcess, assert_scim_error, create_token_with_cli

pytestmark = pytest.mark.engines("sqlite", reason="HTTP parsing, no storage: the bytes never reach a database")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedDatabase]:
    directory = tmp_path_factory.mktemp("malformed")
    token = create_token_with_cli(directory / "rollcall.db", "malformed")
    server = ServerProcess(directory / "rollcall.db", directory / "serve.log").start()
    try:
        yield ServedDatabase(directory / "rollcall.db", token, server)
    finally:
        server.stop()


def exchange(port: int, request: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes, read until the server closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if b"\r\n\r\n" in received and _complete(received):
                    break
        except (TimeoutError, ConnectionResetError):
            pass
    return received


def _complete(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def parse(received: bytes) -> tuple[int, dict[str, str], str]:
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {name.strip(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return status, headers, body.decode("utf-8", "replace")


def substrings(secret: str, length: int = 8) -> set[str]:
    return {secret[i:i + length] for i in range(len(secret) - length + 1)}


def assert_secret_absent(secret: str, *texts: str) -> None:
    for text in texts:
        for piece in substrings(secret):
            assert piece not in text, f"{piece!r} of the token appears in: {text[:300]!r}"


@pytest.mark.parametrize("framing", [b"\x01", b"\nX-After: bare-lf", b"\r\n folded-continuation"],
                         ids=["control character", "bare LF", "folded header"])
def test_a_malformed_authorization_header_leaks_no_token_byte(served: ServedDatabase, framing: bytes) -> None:
    token = served.token
    request = (b"GET /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token.encode()
               + framing + b"\r\n\r\n")
    status, headers, body = parse(exchange(served.server.port, request))
    assert status == 400
    assert headers["Server"] == "rollcall"
    parsed = assert_scim_error(status, headers, body)
    assert parsed["scimType"] == "invalidSyntax"
    time.sleep(0.2)  # let the server write its log line
    assert_secret_absent(token, body, json.dumps(headers), served.server.output())
    assert "Traceback" not in served.server.output()


@pytest.mark.parametrize("value", [b"Bearer \xff", b"Bearer rc_\xc3\xa9t\xc3\xa9", b"Bearer \xed\xa0\x80"])
def test_a_non_ascii_bearer_token_is_401_not_500(served: ServedDatabase, value: bytes) -> None:
    request = b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: " + value + b"\r\nConnection: close\r\n\r\n"
    status, headers, body = parse(exchange(served.server.port, request))
    assert status == 401, body
    assert_scim_error(status, headers, body)
    assert "Traceback" not in served.server.output()


@pytest.mark.parametrize("authenticated", [False, True], ids=["without a token", "with a token"])
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_garbage_gzip_body_is_400_or_401_without_a_traceback(served: ServedDatabase, authenticated: bool,
                                                              framing: str) -> None:
    body = b"\x1f\x8b garbage, not gzip at all"
    auth = b"Authorization: Bearer " + served.token.encode() + b"\r\n" if authenticated else b""
    framed = (b"Content-Length: %d\r\n\r\n" % len(body) + body if framing == "length"
              else b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    request = (b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Type: application/scim+json\r\n"
               b"Content-Encoding: gzip\r\nConnection: close\r\n" + framed)
    status, headers, text = parse(exchange(served.server.port, request))
    assert status == (400 if authenticated else 401), text
    parsed = assert_scim_error(status, headers, text)
    if authenticated:
        assert parsed["scimType"] == "invalidSyntax" and "gzip" in parsed["detail"]
    time.sleep(0.2)
    assert "Traceback" not in served.server.output(), served.server.output()[-3000:]


@pytest.mark.parametrize("authenticated", [False, True], ids=["without a token", "with a token"])
def test_a_body_with_broken_chunked_framing_is_answered_without_a_traceback(served: ServedDatabase,
                                                                            authenticated: bool) -> None:
    auth = b"Authorization: Bearer " + served.token.encode() + b"\r\n" if authenticated else b""
    request = (b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Type: application/scim+json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"use\r\nzz\r\n")
    received = exchange(served.server.port, request)
    if received:
        status, headers, text = parse(received)
        assert status in (400, 401), text
        assert_scim_error(status, headers, text)
    time.sleep(0.2)
    assert "Traceback" not in served.server.output(), served.server.output()[-3000:]


@pytest.mark.parametrize("route", [b"/scim/v2/Users", b"/scim/v2/Bulk"])
def test_a_client_that_hangs_up_mid_body_leaves_no_traceback_and_no_500(served: ServedDatabase, route: bytes) -> None:
    # aiohttp raises ConnectionResetError("Connection lost") from request.read() when the client goes away
    # before its Content-Length is in; the unfixed code logged it as an unhandled error (a traceback) and
    # counted a 500.
    request = (b"POST " + route + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + served.token.encode() +
               b"\r\nContent-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{\"userName\"")
    with socket.create_connection(("127.0.0.1", served.server.port), timeout=5) as sock:
        sock.sendall(request)
        time.sleep(0.3)  # the handler is waiting for the rest of the body
    time.sleep(0.5)
    output = served.server.output()
    assert "Traceback" not in output and "Connection lost" not in output, output[-3000:]
    assert "status=500" not in output, output[-3000:]


def test_every_answer_says_server_rollcall(served: ServedDatabase) -> None:
    port = served.server.port
    for request in (b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    b"BREW /pot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n",
                    b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"):
        status, headers, _body = parse(exchange(port, request))
        assert headers.get("Server") == "rollcall", (request[:30], status, headers)
        assert "aiohttp" not in json.dumps(headers) and "Python" not in json.dumps(headers)
