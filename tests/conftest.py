"""Shared fixtures: the real application on a real SQLite file, spoken to over real HTTP."""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
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
from app.storage.interface import Storage, Transaction
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


@pytest.fixture(scope="session")
def bench() -> ModuleType:
    """bench/run.py, the benchmark, loaded as a module (it is a script, not a package)."""
    path = Path(__file__).resolve().parent.parent / "bench" / "run.py"
    spec = importlib.util.spec_from_file_location("bench_run", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engines(*names, reason): run this storage-facing test on these engines only, "
                                       "for a test of one engine's own mechanics (its query plans, its files); "
                                       "reason says why (tests/test_engine_coverage.py asks for it)")


def _engines_of(definition: Any) -> list[str]:
    marker = definition.get_closest_marker("engines")
    return [name for name in ENGINES if marker is None or name in marker.args]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each test that needs `engine` (through `settings`, `database`, ...) runs once per engine in ENGINES, or in
    those of its `engines` marker; one that needs `module_engine` (a server shared by a module) likewise, with one
    database per engine for the whole module."""
    if "engine" in metafunc.fixturenames:
        metafunc.parametrize("engine", _engines_of(metafunc.definition), indirect=True)
    if "module_engine" in metafunc.fixturenames:
        metafunc.parametrize("module_engine", _engines_of(metafunc.definition), indirect=True, scope="module")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test kept to some engines that takes no engine parameter (it builds its SQLite file itself) is skipped
    when the run tests none of them, as the parametrized ones are."""
    for item in items:
        marker = item.get_closest_marker("engines")
        if marker is None or "engine" in item.fixturenames or "module_engine" in item.fixturenames:
            continue
        if not set(marker.args) & set(ENGINES):
            item.add_marker(pytest.mark.skip(reason=f"runs on {', '.join(marker.args)} only; "
                                                    f"ROLLCALL_TEST_ENGINES={','.join(ENGINES)}"))


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    """The storage engine under test (see pytest_generate_tests)."""
    if request.param not in ("sqlite", "postgresql"):
        raise ValueError(f"ROLLCALL_TEST_ENGINES names {request.param!r}; the engines are sqlite and postgresql")
    return str(request.param)


@pytest.fixture(scope="module")
def module_engine(request: pytest.FixtureRequest) -> str:
    """The storage engine under test for a whole module's shared server (see pytest_generate_tests)."""
    if request.param not in ("sqlite", "postgresql"):
        raise ValueError(f"ROLLCALL_TEST_ENGINES names {request.param!r}; the engines are sqlite and postgresql")
    return str(request.param)


@pytest.fixture(scope="module")
def module_db_location(module_engine: str, tmp_path_factory: pytest.TempPathFactory,
                       request: pytest.FixtureRequest) -> Iterator[str]:
    """db_location for a whole module: a SQLite file in a folder of its own, or a fresh PostgreSQL database."""
    if module_engine == "sqlite":
        yield str(tmp_path_factory.mktemp("module-db") / "rollcall.db")
        return
    server = request.getfixturevalue("postgres_server")
    url = server.new_database()
    try:
        yield url
    finally:
        server.finished.append(url)  # dropped by the next test that takes a database (see postgres_url)


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


def wait_for_port(port: int, process: subprocess.Popen[bytes], log_path: Path, seconds: float = 30) -> None:
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
            # SIGTERM first: the single-file binary's bootloader passes it on to the server it unpacked and runs,
            # while a SIGKILL of the bootloader would leave that server running after the test.
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
            process.wait(timeout=10)


@pytest.fixture
def running_server(db_location: str, tmp_path: Path) -> Iterator[RunningServer]:
    """`rollcall serve` in a process of its own, on the test's database (either engine)."""
    with serve_process(tmp_path, db=db_location) as server:
        yield server


async def read_database(location: str, body: Callable[[Transaction], Any]) -> Any:
    """`body` in a read transaction of a storage of its own on the test's database (either engine): what another
    connection, another process, sees of it."""
    storage = open_storage(location, must_exist=True)
    await storage.open()
    try:
        return await storage.read(body)
    finally:
        await storage.close()


def read_database_now(location: str, body: Callable[[Transaction], Any]) -> Any:
    """read_database() for synchronous code, even code an event loop runs: in a thread with a loop of its own."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, read_database(location, body)).result()


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
    the data, and an open hold holds someone. Returns the roster and the people held (user id → hold id).
    Read through the storage interface, on whichever engine `db_path` names, in a thread of its own (the tests
    that call it run on an event loop already)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, _read_invariant(db_path, rules or RoleRules())).result()


async def _read_invariant(location: str, rules: RoleRules) -> dict[str, Any]:
    storage = open_storage(location, must_exist=True)
    await storage.open()
    try:
        return await storage.read(lambda tx: _check_invariant(tx, rules))
    finally:
        await storage.close()


def _check_invariant(tx: Transaction, rules: RoleRules) -> dict[str, Any]:
    user_ids = tx.roster.all_user_ids()
    roster = {user_id: entry.role for user_id, entry in tx.roster.entries(user_ids).items()}
    implied = holds.implied_roster(tx, rules)
    held = {user_id: person.hold_id for user_id, person in tx.holds.held_now(user_ids).items()}
    expected = {u: r for u, r in implied.items() if u not in held}
    expected.update({u: roster.get(u, "absent") for u in held})
    assert roster == expected, "the roster is not what the data implies minus the held departures"
    assert roster == holds.expected_roster(tx, rules)
    for user_id in held:
        assert implied.get(user_id) != roster[user_id], f"{user_id} is held from a change the data undid"
    open_ids = {hold.id for hold in tx.holds.all_open()}
    assert set(held.values()) == open_ids, "an open hold that holds nobody, or a person held by a closed hold"
    # The feed tells each hold's story: opened once with its count; closed once, as it was closed.
    told: dict[int, list[str]] = {}
    for event in tx.feed.after(0, 1_000_000):
        if not event["type"].startswith("hold."):
            continue
        told.setdefault(event["holdId"], []).append(event["type"])
        if event["type"] == "hold.opened":
            assert event["count"] == len(tx.holds.held_in(event["holdId"], still_held=False))
    # Hold ids grow from 1 (an id may be skipped by a transaction run again): look a little past the last known.
    last = max([*told, *open_ids], default=0)
    stored = {hold_id: hold.state for hold_id in range(1, last + 20) if (hold := tx.holds.get(hold_id))}
    assert set(told) == set(stored), "a hold without its events, or events of a hold that is not stored"
    for hold_id, state in stored.items():
        assert told[hold_id] == ["hold.opened"] + ([] if state == "open" else [f"hold.{state}"]), (hold_id, state)
    return {"roster": roster, "held": held}
