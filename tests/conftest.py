"""Shared fixtures: the real application on a real SQLite file, spoken to over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from app.config import Settings
from app.domain import holds
from app.domain.roles import RoleRules
from app.domain.scopes import DEFAULT_SCOPES
from app.domain.tokens import create_token
from app.storage.factory import open_storage
from app.storage.interface import Storage
from app.storage.sqlite.transaction import SqliteTransaction
from app.web.app import init_app

# The PostgreSQL server fixtures (tests/postgres_server.py): a cluster started only when a test asks for one.
pytest_plugins = ("tests.postgres_server",)
# The storage engines the storage-facing fixtures run each test on: ROLLCALL_TEST_ENGINES=sqlite for one.
ENGINES = tuple(name.strip() for name in os.environ.get("ROLLCALL_TEST_ENGINES", "sqlite,postgresql").split(",")
                if name.strip())

SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
REPO = Path(__file__).resolve().parent.parent
_NOT_SCIM = ("/scim", "/api", "/auth", "/healthz", "/readyz", "/metrics")


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """The storage engine under test: each test that asks runs once per engine in ENGINES."""
    if request.param not in ("sqlite", "postgresql"):
        raise ValueError(f"ROLLCALL_TEST_ENGINES names {request.param!r}; the engines are sqlite and postgresql")
    return str(request.param)


@pytest.fixture
def db_location(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where the test's database is: a SQLite file in the test's folder, or a fresh PostgreSQL database (a URL)."""
    if engine == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "rollcall.db")


@pytest.fixture
def settings(db_location: str) -> Settings:
    return Settings(db_path=db_location)


async def mint_token(db_path: str, name: str = "tests", scopes: Sequence[str] = DEFAULT_SCOPES,
                     expires_in: int | None = None) -> str:
    db = open_storage(db_path)
    await db.open()
    try:
        return await create_token(db, name, scopes, expires_in)
    finally:
        await db.close()


@pytest.fixture
async def token(settings: Settings) -> str:
    return await mint_token(settings.db_path)


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any


class Scim:
    """A SCIM client for tests: real HTTP to the real app, JSON in and out."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.token = token

    async def request(self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
                      auth: bool = True, raw: bytes | None = None) -> Answer:
        sent = {"Content-Type": SCIM_JSON} if body is not None or raw is not None else {}
        if auth:
            sent["Authorization"] = f"Bearer {self.token}"
        sent.update(headers or {})
        response: ClientResponse = await self.client.request(
            method, path if path.startswith(_NOT_SCIM) else f"/scim/v2{path}",
            json=body if raw is None and body is not None else None, data=raw, headers=sent)
        text = await response.text()
        return Answer(response.status, json.loads(text) if text else None, response.headers)

    async def get(self, path: str, **kw: Any) -> Answer:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any, **kw: Any) -> Answer:
        return await self.request("POST", path, body, **kw)

    async def put(self, path: str, body: Any, **kw: Any) -> Answer:
        return await self.request("PUT", path, body, **kw)

    async def patch(self, path: str, operations: list[dict[str, Any]], **kw: Any) -> Answer:
        return await self.request("PATCH", path, {"schemas": [PATCH_OP], "Operations": operations}, **kw)

    async def delete(self, path: str, **kw: Any) -> Answer:
        return await self.request("DELETE", path, **kw)

    async def create_user(self, user_name: str, **attributes: Any) -> dict[str, Any]:
        answer = await self.post("/Users", {"schemas": [USER_SCHEMA], "userName": user_name, **attributes})
        assert answer.status == 201, answer.body
        return answer.body

    async def create_group(self, display_name: str, members: list[str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": display_name}
        if members is not None:
            body["members"] = [{"value": m} for m in members]
        answer = await self.post("/Groups", body)
        assert answer.status == 201, answer.body
        return answer.body


@pytest.fixture
async def scim(aiohttp_client: Any, settings: Settings, token: str) -> Scim:
    client = await aiohttp_client(init_app(settings))
    return Scim(client, token)


@pytest.fixture
def scim_with(aiohttp_client: Any, settings: Settings, token: str) -> Callable[..., Awaitable[Scim]]:
    """A client of the app started with other settings on the same database, e.g. scim_with(group_prefix="acme")."""
    async def start(**overrides: Any) -> Scim:
        client = await aiohttp_client(init_app(replace(settings, **overrides)))
        return Scim(client, token)
    return start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    base_url: str
    token: str
    db_path: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


def wait_for_port(port: int, process: subprocess.Popen[bytes], log_path: Path, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"rollcall serve exited early: {log_path.read_text()}") from None
            time.sleep(0.05)
    raise RuntimeError(f"rollcall serve did not listen on {port} within {seconds} s")


@contextmanager
def serve_process(directory: Path, *extra: str, token_name: str | None = "served", scheme: str = "http",
                  command: Sequence[str] = (sys.executable, "-m", "app"), cwd: Path = REPO,
                  db: str | None = None) -> Iterator[RunningServer]:
    """`rollcall serve` as a separate process on a loopback port, as an identity provider sees it; on `db` (a file
    or a PostgreSQL URL), else on served.db in `directory`."""
    db_path = db or str(directory / "served.db")
    token = asyncio.run(mint_token(db_path, token_name)) if token_name else ""
    port = free_port()
    # The server's output goes to a file: a pipe nobody reads would fill up and stall the server.
    log_path = directory / "served.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*command, "serve", "--db", db_path, "--host", "127.0.0.1", "--port", str(port), *extra],
            cwd=cwd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=log, stderr=subprocess.STDOUT,
        )
        server = RunningServer(f"{scheme}://127.0.0.1:{port}/scim/v2", token, db_path, process, log_path)
        try:
            wait_for_port(port, process, log_path)
            yield server
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


@pytest.fixture
def running_server(tmp_path: Path) -> Iterator[RunningServer]:
    with serve_process(tmp_path) as server:
        yield server


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Storage]:
    db = open_storage(settings.db_path)
    await db.open()
    yield db
    await db.close()


# -- a webhook receiver -------------------------------------------------------------------------------------------

@dataclass
class Delivery:
    headers: dict[str, str]
    body: Any  # the verified JSON body


class WebhookReceiver:
    """A real aiohttp server on loopback that verifies every delivery with the `standardwebhooks` package, as a
    receiver in the wild would, and answers 500 for the first `fail_first` of them (or all, with `failing`)."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.fail_first = 0
        self.failing = False
        self.delay = 0.0
        self.received: list[Delivery] = []  # every verified delivery, repeats included, in arrival order
        self.unverified: list[str] = []  # why a delivery failed verification
        self.answered_500 = 0
        self.url = ""
        self._runner: Any = None

    async def start(self) -> WebhookReceiver:
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: Any) -> Any:
        from aiohttp import web
        from standardwebhooks import Webhook

        raw = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        try:
            assert self.secret is not None, "a delivery came before the test knew the secret"
            assert request.headers.get("Content-Type") == "application/json"
            body = Webhook(self.secret).verify(raw, dict(request.headers))
        except Exception as error:
            self.unverified.append(repr(error))
            return web.Response(status=400)
        if self.failing or self.fail_first > 0:
            self.fail_first -= 1
            self.answered_500 += 1
            return web.Response(status=500)
        self.received.append(Delivery(dict(request.headers), body))
        return web.Response(status=204)

    def unique(self) -> list[Delivery]:
        """The deliveries after dropping repeats by webhook-id, in the order they first came."""
        seen: set[str] = set()
        kept = []
        for delivery in self.received:
            if delivery.headers["webhook-id"] not in seen:
                seen.add(delivery.headers["webhook-id"])
                kept.append(delivery)
        return kept


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    started = await WebhookReceiver().start()
    try:
        yield started
    finally:
        await started.stop()


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 30, what: str = "the condition") -> None:
    """Wait until `check()` holds; a generous bound, not a timing assertion."""
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {seconds} s")
        await asyncio.sleep(0.05)


def assert_invariant(db_path: str, rules: RoleRules | None = None) -> dict[str, Any]:
    """roster = what the data implies, minus the held departures; every held person's change still follows from
    the data, and an open hold holds someone. Returns the roster and the people held (user id → hold id)."""
    rules = rules or RoleRules()
    conn = sqlite3.connect(db_path)
    try:
        roster = dict(conn.execute("SELECT user_id, role FROM roster").fetchall())
        tx = SqliteTransaction(conn)
        implied = holds.implied_roster(tx, rules)
        held = dict(conn.execute("SELECT user_id, hold_id FROM held WHERE outcome IS NULL").fetchall())
        expected = {u: r for u, r in implied.items() if u not in held}
        expected.update({u: roster.get(u, "absent") for u in held})
        assert roster == expected, "the roster is not what the data implies minus the held departures"
        assert roster == holds.expected_roster(tx, rules)
        for user_id in held:
            assert implied.get(user_id) != roster[user_id], f"{user_id} is held from a change the data undid"
        open_ids = {row[0] for row in conn.execute("SELECT id FROM holds WHERE state = 'open'")}
        assert set(held.values()) == open_ids, "an open hold that holds nobody, or a person held by a closed hold"
        # The feed tells each hold's story: opened once with its count; closed once, as it was closed.
        told: dict[int, list[str]] = {}
        for kind, hold_id, count in conn.execute(
                "SELECT type, json_extract(data, '$.holdId'), json_extract(data, '$.count') FROM events "
                "WHERE type LIKE 'hold.%' ORDER BY seq"):
            told.setdefault(hold_id, []).append(kind)
            if kind == "hold.opened":
                assert count == conn.execute("SELECT count(*) FROM held WHERE hold_id = ?", (hold_id,)).fetchone()[0]
        stored = {row[0]: row[1] for row in conn.execute("SELECT id, state FROM holds")}
        assert set(told) == set(stored), "a hold without its events, or events of a hold that is not stored"
        for hold_id, state in stored.items():
            assert told[hold_id] == ["hold.opened"] + ([] if state == "open" else [f"hold.{state}"]), (hold_id, state)
        return {"roster": roster, "held": held}
    finally:
        conn.close()
