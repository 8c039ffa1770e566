"""Helpers shared by the reliability suite: `rollcall serve` as a real process, tokens minted by the real CLI,
the checks every SCIM error response must pass, and the roster recomputed from the SCIM data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app.domain.roles import RoleRules
from app.storage.factory import is_postgres
from tests.conftest import REPO, free_port

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
# The scimType values RFC 7644 §3.12 defines for 400 responses.
SCIM_TYPES_OF_400 = frozenset({"invalidFilter", "invalidSyntax", "invalidPath", "invalidValue", "noTarget",
                               "mutability", "tooMany", "uniqueness", "sensitive", "invalidVers"})
# What must never reach a client: a traceback, a source location, the storage engine or its SQL.
LEAK_MARKERS = ("Traceback", 'File "', "sqlite", "SELECT ", "INSERT ", "aiosqlite")
START_TIMEOUT_S = 20


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run `python -m app ARGS` as an operator would."""
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, check=True)


def create_token_with_cli(db_path: str | Path, name: str) -> str:
    """`rollcall token create --name NAME --db DB`: the token is alone on the last line of stdout."""
    return cli("token", "create", "--name", name, "--db", str(db_path)).stdout.strip().splitlines()[-1]


@dataclass
class ServerProcess:
    """`python -m app serve` on a loopback port, with its combined stdout/stderr kept in a file."""

    db_path: Path | str  # a file, or a PostgreSQL URL (as a str: a Path would fold its "//")
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    extra: tuple[str, ...] = ()  # more `serve` flags

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/scim/v2"

    def start(self) -> ServerProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app", "serve", "--db", str(self.db_path), "--host", "127.0.0.1",
                 "--port", str(self.port), *self.extra],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rollcall serve exited early:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"rollcall serve did not listen within {START_TIMEOUT_S}s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush, close or clean anything up."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), as a service manager does it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""


@dataclass
class ServedDatabase:
    """A database file (or a PostgreSQL URL) with a token made by the CLI, and a server process for it (not started
    yet)."""

    db_path: Path | str
    token: str
    server: ServerProcess


@pytest.fixture
def served_database(db_location: str, tmp_path: Path) -> Iterator[ServedDatabase]:
    """The test's database (either engine) with a token the CLI made, and a server for it."""
    db_path: Path | str = db_location if is_postgres(db_location) else Path(db_location)
    token = create_token_with_cli(db_path, "reliability")
    server = ServerProcess(db_path, tmp_path / "serve.log")
    try:
        yield ServedDatabase(db_path, token, server)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def module_server(module_db_location: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedDatabase]:
    """One running server for a whole module (hypothesis reuses it across all its examples), once per engine."""
    directory = tmp_path_factory.mktemp("served")
    db_path = module_db_location
    token = create_token_with_cli(db_path, "reliability")
    server = ServerProcess(db_path, directory / "serve.log").start()
    try:
        yield ServedDatabase(db_path, token, server)
    finally:
        server.stop()


def assert_no_leak(text: str, sent: str = "") -> None:
    """No traceback, source location, SQL or storage-engine name in what a client reads
    (unless the client itself sent that text and it is being quoted back)."""
    for marker in LEAK_MARKERS:
        assert marker not in text or marker in sent, f"{marker!r} leaked into a response: {text[:500]}"


def assert_scim_error(status: int, headers: Any, body_text: str, *, sent: str = "") -> dict[str, Any]:
    """An error answer is a SCIM Error body (RFC 7644 §3.12): the Error schema, `status` as the HTTP status
    in a string, a scimType from RFC 7644 on every 400, the SCIM content type, and nothing internal."""
    import json

    assert 400 <= status < 500, f"expected a 4xx, got {status}: {body_text[:500]}"
    assert headers.get("Content-Type", "").startswith("application/scim+json"), headers.get("Content-Type")
    body = json.loads(body_text)
    assert body["schemas"] == [ERROR_SCHEMA], body
    assert body["status"] == str(status), body
    assert isinstance(body.get("detail", ""), str)
    if status == 400:
        assert body.get("scimType") in SCIM_TYPES_OF_400, body
    assert_no_leak(body_text, sent)
    return body


def expected_roles(users: list[dict[str, Any]], groups: list[dict[str, Any]], rules: RoleRules | None = None
                   ) -> dict[str, str]:
    """The roster as the README defines it, recomputed from GET /Users and GET /Groups alone:
    every active user with a role, the highest among the role groups they are in."""
    rules = rules or RoleRules()
    names_of: dict[str, list[str]] = {}
    for group in groups:
        for member in group.get("members", []):
            names_of.setdefault(member["value"], []).append(group["displayName"])
    roles = {}
    for user in users:
        role = rules.role_of_user(user.get("active", True) is not False, names_of.get(user["id"], []))
        if role is not None:
            roles[user["id"]] = role
    return roles


def check_feed_matches_roster(events: list[dict[str, Any]], roster: dict[str, str]) -> int:
    """For each user, the last member.* event says what the roster says: joined/role_changed to the current role
    for members, none or member.left for everyone else. Returns the number of users checked."""
    last: dict[str, dict[str, Any]] = {}
    seqs = [event["seq"] for event in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "the change feed's seq must strictly increase"
    for event in events:
        if event["type"].startswith("member."):
            last[event["userId"]] = event
    for user_id, role in roster.items():
        event = last.get(user_id)
        assert event is not None, f"member {user_id} has no member.* event"
        assert event["type"] in ("member.joined", "member.role_changed"), event
        assert event.get("role", event.get("to")) == role, (event, role)
    for user_id, event in last.items():
        if user_id not in roster:
            assert event["type"] == "member.left", event
    return len(set(last) | set(roster))
