"""Descriptor exhaustion without a token: hundreds of half-open connections, under a low open-files limit, must not
stop a normal client from being answered, must be closed by the server within seconds, and must not flood the log."""

from __future__ import annotations

import os
import resource
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from app.cli.options import OPTIONS
from app.config import Settings
from tests.conftest import REPO, free_port, wait_for_port
from tests.reliability.conftest import create_token_with_cli

pytestmark = pytest.mark.engines("sqlite", reason="HTTP connection handling, no storage: sockets and file limits")

HALF_OPEN = 300
# The log of a server under this attack stays small: no line per connection, no traceback per accept().
LOG_BUDGET_BYTES = 64 * 1024


@dataclass
class Served:
    port: int
    token: str
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _open_files(soft: int, hard: int | None) -> Callable[[], None]:
    def apply() -> None:  # runs in the child, before exec: like `ulimit -Sn 256` (and -Hn) in its shell
        _, current_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, current_hard if hard is None else hard))
    return apply


@contextmanager
def serve_limited(tmp_path: Path, soft: int, hard: int | None, *extra: str) -> Iterator[Served]:
    db_path = tmp_path / "limited.db"
    token = create_token_with_cli(db_path, "limited")
    port = free_port()
    log_path = tmp_path / "limited.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--db", str(db_path), "--host", "127.0.0.1", "--port", str(port),
             *extra], cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_open_files(soft, hard))
    try:
        wait_for_port(port, process, log_path)
        yield Served(port, token, log_path, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _half_open(port: int, count: int) -> list[socket.socket]:
    """Connections that start a request and never finish its headers."""
    held = []
    for number in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        # Half of them stop inside the request line, half inside a header.
        sock.sendall(b"GET /scim/v2/Us" if number % 2 else b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        sock.setblocking(False)
        held.append(sock)
    return held


def _trickle(held: list[socket.socket]) -> None:
    """One more byte on each connection still open, as a slowloris client does to look alive."""
    for sock in held:
        with suppress(OSError):
            sock.send(b"a")


def _normal_request(served: Served) -> float:
    """Seconds a normal authenticated GET takes; it must succeed."""
    started = time.monotonic()
    answer = httpx2.get(f"http://127.0.0.1:{served.port}/scim/v2/Users?count=1", timeout=5,
                        headers={"Authorization": f"Bearer {served.token}"})
    elapsed = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    return elapsed


def _closed_by_server(held: list[socket.socket], seconds: float, trickle: bool = True) -> float:
    """Wait until the server has closed every held connection (EOF or reset); the seconds it took."""
    started = time.monotonic()
    selector = selectors.DefaultSelector()
    for sock in held:
        selector.register(sock, selectors.EVENT_READ)
    remaining = set(held)
    last_trickle = started
    while remaining and time.monotonic() - started < seconds:
        for key, _ in selector.select(timeout=0.2):
            sock = key.fileobj
            try:
                data = sock.recv(65536)  # type: ignore[union-attr]
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data or b"HTTP/1." in data:
                selector.unregister(sock)
                remaining.discard(sock)  # type: ignore[arg-type]
        if trickle and time.monotonic() - last_trickle > 0.5:
            _trickle(list(remaining))
            last_trickle = time.monotonic()
    selector.close()
    assert not remaining, f"{len(remaining)} of {len(held)} half-open connections still open after {seconds} s"
    return time.monotonic() - started


def _assert_quiet_log(served: Served) -> None:
    log = served.log
    assert len(log.encode()) < LOG_BUDGET_BYTES, f"the log grew to {len(log.encode())} bytes"
    assert "Errno 24" not in log and "Too many open files" not in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]


def test_the_defaults_close_half_open_and_idle_connections_within_30_seconds() -> None:
    assert Settings().header_timeout <= 30 and OPTIONS["header-timeout"].default == Settings().header_timeout
    assert Settings().keepalive_timeout < 75 and OPTIONS["keepalive-timeout"].default == Settings().keepalive_timeout


def test_under_a_soft_limit_of_256_held_connections_do_not_starve_a_normal_client(tmp_path: Path) -> None:
    with serve_limited(tmp_path, 256, None, "--header-timeout", "3") as served:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        held = _half_open(served.port, HALF_OPEN)
        try:
            _trickle(held)
            assert max(_normal_request(served) for _ in range(5)) < 1
            took = _closed_by_server(held, 30)
        finally:
            for sock in held:
                sock.close()
        assert took < 30
        assert _normal_request(served) < 1
        assert f"was 256), hard {hard}" in served.log, served.log[-2000:]
        _assert_quiet_log(served)


def test_at_a_hard_limit_of_256_the_cap_fits_under_it_and_newcomers_replace_the_longest_waiting(
        tmp_path: Path) -> None:
    # No raising past a hard limit of 256: the cap is lowered to leave room for SQLite, the log and the backlog,
    # and a normal client still gets in, taking the place of the connection that had waited longest.
    with serve_limited(tmp_path, 256, 256, "--header-timeout", "3") as served:
        held = _half_open(served.port, HALF_OPEN)
        try:
            # Under 2 s: a client left waiting for a slot would wait out the 3 s header timeout of those held.
            assert max(_normal_request(served) for _ in range(5)) < 2
            took = _closed_by_server(held, 30)
        finally:
            for sock in held:
                sock.close()
        assert took < 30
        assert "serving at most 144 connections at once" in served.log, served.log[-2000:]
        assert served.log.count("closed the connection that had waited longest") <= 3  # repeats are counted
        _assert_quiet_log(served)


def test_an_idle_kept_alive_connection_is_closed_after_the_keepalive_timeout(tmp_path: Path) -> None:
    with serve_limited(tmp_path, 1024, None, "--keepalive-timeout", "2") as served, \
            socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert sock.recv(65536) == b""  # closed by the server, not by the 10 s client timeout
        assert time.monotonic() - started < 5


def test_sigterm_with_hundreds_of_held_connections_exits_0_within_the_grace(tmp_path: Path) -> None:
    with serve_limited(tmp_path, 256, None) as served:
        held = _half_open(served.port, HALF_OPEN)
        try:
            started = time.monotonic()
            served.process.terminate()
            assert served.process.wait(timeout=10) == 0
            assert time.monotonic() - started < 5
        finally:
            for sock in held:
                sock.close()
        _assert_quiet_log(served)


def test_at_the_cap_with_every_connection_busy_a_new_one_is_closed_at_once(tmp_path: Path) -> None:
    with serve_limited(tmp_path, 1024, None, "--max-connections", "2") as served:
        busy = []
        time.sleep(0.3)  # the probe connection of wait_for_port is gone
        for _ in range(2):  # authenticated uploads that are still sending their body: busy, not waiting
            sock = socket.create_connection(("127.0.0.1", served.port), timeout=5)
            sock.sendall(b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + served.token.encode()
                         + b"\r\nContent-Type: application/scim+json\r\nContent-Length: 22\r\n\r\n{\"userName\": ")
            busy.append(sock)
            time.sleep(0.3)  # its headers are in: it is busy before the next one arrives
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as refused:
            started = time.monotonic()
            with suppress(ConnectionResetError):
                assert refused.recv(100) == b""
            assert time.monotonic() - started < 1
        for number, sock in enumerate(busy):
            sock.sendall(b'"busy-%d"}' % number)  # the body, 22 bytes, is complete
            assert sock.recv(65536).startswith(b"HTTP/1.1 201"), "a busy connection was closed"
            sock.close()
        assert "with every connection busy: refused a new connection" in served.log
        _assert_quiet_log(served)


def test_a_token_holder_trickling_a_body_gets_408_and_the_connection_back(tmp_path: Path) -> None:
    # Once its headers are in, a request counts as busy, and the connection cap never takes a busy one back: without
    # a body deadline, a token holder trickling bodies could hold every connection for as long as it liked.
    with serve_limited(tmp_path, 1024, None, "--body-timeout", "1") as served:
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
            sock.sendall(f"POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {served.token}\r\n"
                         "Content-Type: application/scim+json\r\nContent-Length: 1000\r\n\r\n{\"userName\"".encode())
            started = time.monotonic()
            sock.settimeout(0.2)
            answer = b""
            while b"408" not in answer and time.monotonic() - started < 10:
                with suppress(OSError):
                    sock.sendall(b" ")  # a byte every 0.2 s: never idle, never done
                with suppress(TimeoutError):
                    answer += sock.recv(4096)
            took = time.monotonic() - started
            assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
            assert 0.8 < took < 5, took
            sock.settimeout(20)
            with suppress(OSError):
                while chunk := sock.recv(4096):  # the rest of the answer, then the server closes the connection
                    answer += chunk
            assert b"--body-timeout" in answer and time.monotonic() - started < 20
        assert served.token not in served.log and "Traceback" not in served.log
