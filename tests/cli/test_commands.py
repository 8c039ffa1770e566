"""The `rollcall` command, run as a process the way an admin runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from app import __version__
from app.storage.factory import is_postgres
from tests.conftest import REPO, RunningServer, free_port

SQLITE_PATH = pytest.mark.engines("sqlite", reason=(
    "what a command does with a SQLite path that names no database file yet (a PostgreSQL database is made "
    "beforehand, with CREATE DATABASE)"))



def rollcall(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=30, env={**os.environ, **(env or {})})


def test_version() -> None:
    result = rollcall("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"rollcall {__version__}"


def test_token_create_prints_the_token_alone_on_the_last_line(db_location: str) -> None:
    db = db_location
    created = rollcall("token", "create", "--name", "jumpcloud", "--db", db)
    assert created.returncode == 0, created.stderr
    token = created.stdout.splitlines()[-1]
    assert token.startswith("rc_") and len(token) > 40 and " " not in token
    if not is_postgres(db):  # only the hash is stored (on both engines: tests/reliability/test_authentication.py)
        assert token not in Path(db).read_bytes().decode("latin-1")
    listed = rollcall("token", "list", "--db", db)
    assert "jumpcloud" in listed.stdout and "live" in listed.stdout and token not in listed.stdout
    again = rollcall("token", "create", "--name", "jumpcloud", "--db", db)
    assert again.returncode == 1 and "already exists" in again.stderr
    revoked = rollcall("token", "revoke", "jumpcloud", "--db", db)
    assert revoked.returncode == 0
    assert "revoked" in rollcall("token", "list", "--db", db).stdout
    assert rollcall("token", "revoke", "nobody", "--db", db).returncode == 1


def test_flags_come_from_the_environment_too(db_location: str) -> None:
    db = db_location
    created = rollcall("token", "create", "--name", "fromenv", env={"ROLLCALL_DB": db})
    assert created.returncode == 0
    assert "fromenv" in rollcall("token", "list", "--db", db).stdout


def test_serve_creates_and_prints_a_first_token_once(db_location: str) -> None:
    db = db_location
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "app", "serve", "--db", db, "--port", str(port)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = [process.stdout.readline() for _ in range(3)] if process.stdout else []
    finally:
        process.terminate()
        process.wait(timeout=10)
    token = next(line.split()[-1] for line in lines if "Token:" in line)
    assert any(f"http://127.0.0.1:{port}/scim/v2" in line for line in lines)
    listed = rollcall("token", "list", "--db", db)
    assert "default" in listed.stdout and token not in listed.stdout


@pytest.fixture
def provisioned(running_server: RunningServer) -> RunningServer:
    headers = {"Authorization": f"Bearer {running_server.token}"}
    with httpx2.Client(base_url=running_server.base_url, headers=headers, trust_env=False) as http:
        user = http.post("/Users", json={"userName": "ann@acme.com", "displayName": "Ann",
                                         "emails": [{"value": "ann@acme.com", "primary": True}]}).json()
        http.post("/Groups", json={"displayName": "rollcall-administrators", "members": [{"value": user["id"]}]})
    return running_server


def test_members_prints_the_roster_as_table_json_and_csv(provisioned: RunningServer) -> None:
    table = rollcall("members", "--db", provisioned.db_path)
    assert table.returncode == 0
    assert "ann@acme.com" in table.stdout and "admin" in table.stdout and "rollcall-administrators" in table.stdout
    as_json = json.loads(rollcall("members", "--json", "--db", provisioned.db_path).stdout)
    assert [(m["userName"], m["role"]) for m in as_json["members"]] == [("ann@acme.com", "admin")]
    as_csv = rollcall("members", "--csv", "--db", provisioned.db_path).stdout.splitlines()
    assert as_csv[0].startswith("userName,role,email") and as_csv[1].startswith("ann@acme.com,admin,ann@acme.com")


def test_events_prints_the_feed(provisioned: RunningServer) -> None:
    printed = rollcall("events", "--db", provisioned.db_path).stdout.splitlines()
    assert any("member.joined" in line and "by served" in line for line in printed)
    as_json = [json.loads(line) for line in rollcall("events", "--json", "--after", "2", "--db",
                                                     provisioned.db_path).stdout.splitlines()]
    assert all(e["seq"] > 2 for e in as_json) and as_json


# -- a mistyped --db: refused, with one line, and nothing is created ------------------------------------------

def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """A refusal is exit status 1 and one `rollcall: ...` line on stderr: no traceback, nothing on stdout."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rollcall: "), result.stderr
    assert result.stdout == ""
    return lines[0]


@pytest.mark.parametrize("command", [
    ("token", "list"), ("token", "revoke", "jumpcloud"), ("members",), ("members", "--json"), ("events",),
    ("events", "--follow"), ("backup", "{dir}/copy.db"), ("holds",), ("holds", "approve", "1"),
])
@SQLITE_PATH
def test_a_command_on_a_database_that_does_not_exist_refuses_and_creates_nothing(tmp_path: Path,
                                                                                  command: tuple[str, ...]) -> None:
    typo = tmp_path / "typo.db"
    result = rollcall(*(part.format(dir=tmp_path) for part in command), "--db", str(typo))
    assert _one_error_line(result) == \
        f"rollcall: no database at {typo}; check --db, or run `rollcall serve` to create one"
    assert list(tmp_path.iterdir()) == []  # no typo.db, -wal, -shm, lock or backup


@SQLITE_PATH
def test_the_refusal_holds_when_the_database_comes_from_the_environment(tmp_path: Path) -> None:
    typo = tmp_path / "typo.db"
    result = rollcall("token", "list", env={"ROLLCALL_DB": str(typo)})
    assert f"no database at {typo}" in _one_error_line(result)
    assert list(tmp_path.iterdir()) == []


@SQLITE_PATH
def test_a_database_in_a_directory_that_does_not_exist_is_refused_by_every_command(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "rollcall.db"
    assert f"no database at {path}" in _one_error_line(rollcall("token", "list", "--db", str(path)))
    created = _one_error_line(rollcall("token", "create", "--name", "jumpcloud", "--db", str(path)))
    assert created == f"rollcall: Cannot create the database {path}: No such file or directory."
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n")
    for command in (("token", "list"), ("token", "create", "--name", "jumpcloud"), ("members",), ("events",)):
        line = _one_error_line(rollcall(*command, "--db", str(notes)))
        assert line == f"rollcall: Cannot use {notes} as a rollcall database: file is not a database.", command
    assert notes.read_text() == "not a database\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@SQLITE_PATH
def test_migrate_on_a_path_with_no_database_says_so_and_creates_nothing(tmp_path: Path) -> None:
    typo = tmp_path / "typo.db"
    result = rollcall("migrate", "--db", str(typo))
    assert result.returncode == 0 and f"There is no database at {typo} yet; nothing to migrate" in result.stdout
    assert list(tmp_path.iterdir()) == []


@SQLITE_PATH
def test_token_create_refuses_a_bad_name_before_printing_or_creating_anything(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    result = rollcall("token", "create", "--name", "bad name", "--db", str(db))
    assert "Invalid token name 'bad name'" in _one_error_line(result)
    assert "Created" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_token_create_refuses_a_taken_name_without_saying_it_created_it(db_location: str) -> None:
    db = db_location
    assert rollcall("token", "create", "--name", "jumpcloud", "--db", db).returncode == 0
    again = rollcall("token", "create", "--name", "jumpcloud", "--db", db)
    assert "already exists" in _one_error_line(again) and "Created" not in again.stderr


@SQLITE_PATH
def test_token_create_makes_the_database_it_is_pointed_at(tmp_path: Path) -> None:
    """The one admin command that may create a database: the README's way to get a token before the first start."""
    db = tmp_path / "new.db"
    created = rollcall("token", "create", "--name", "jumpcloud", "--db", str(db))
    assert created.returncode == 0 and created.stdout.strip().startswith("rc_")
    assert created.stderr.startswith("Created token 'jumpcloud'")
    assert "jumpcloud" in rollcall("token", "list", "--db", str(db)).stdout
