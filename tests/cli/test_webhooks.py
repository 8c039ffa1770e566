"""`rollcall webhook ...`, as an operator runs it, and the schema step that brings the webhook tables."""

from __future__ import annotations

import base64
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.storage.factory import is_postgres
from app.storage.schema_version import SCHEMA_VERSION
from app.storage.sqlite.migrations import migrate
from tests.conftest import REPO, read_database_now


def rollcall(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_add_prints_the_secret_alone_on_the_last_line_and_list_shows_the_endpoint(db_location: str) -> None:
    db = db_location
    added = rollcall("webhook", "add", "--url", "https://wiki.example.com/rollcall", "--event", "member.*",
                     "--event", "group.*", "--description", "the wiki", "--db", db)
    assert added.returncode == 0, added.stderr
    secret = added.stdout.splitlines()[-1]
    assert added.stdout == secret + "\n"
    assert secret.startswith("whsec_") and 24 <= len(base64.b64decode(secret.removeprefix("whsec_"))) <= 32
    listed = rollcall("webhook", "list", "--db", db)
    assert listed.returncode == 0
    assert listed.stdout.split("\t")[:4] == ["1", "https://wiki.example.com/rollcall", "member.*,group.*", "active"]
    assert "last delivery never" in listed.stdout and "0 consecutive failures" in listed.stdout
    assert secret.removeprefix("whsec_") not in listed.stdout + listed.stderr
    rotated = rollcall("webhook", "rotate-secret", "1", "--db", db)
    assert rotated.returncode == 0 and rotated.stdout.strip().startswith("whsec_")
    assert rotated.stdout.strip() != secret
    assert rollcall("webhook", "deliveries", "1", "--db", db).stdout == ""
    redelivered = rollcall("webhook", "redeliver", "1", "--from", "1", "--db", db)
    assert redelivered.returncode == 0 and "from seq 1" in redelivered.stdout
    assert rollcall("webhook", "remove", "1", "--db", db).returncode == 0
    assert rollcall("webhook", "list", "--db", db).stdout == ""


def test_a_bad_url_is_refused_and_creates_nothing(db_location: str) -> None:
    db = db_location
    for url, says in (("ftp://files.example.com/", "http:// or https://"),
                      ("https://admin:hunter2@app.example.com/", "user name or password")):
        refused = rollcall("webhook", "add", "--url", url, "--db", db)
        assert refused.returncode == 1 and says in refused.stderr and refused.stdout == ""
        assert "hunter2" not in refused.stderr
    refused = rollcall("webhook", "add", "--url", "https://app.example.com/", "--event", "members", "--db", db)
    assert refused.returncode == 1 and "Invalid event pattern" in refused.stderr
    if is_postgres(db):  # the test's database exists already: nothing was written to it
        assert read_database_now(db, lambda tx: tx.webhooks.ids()) == []
    else:
        assert not Path(db).exists()


def test_unknown_ids_are_named(db_location: str) -> None:
    db = db_location
    assert rollcall("webhook", "add", "--url", "http://127.0.0.1:9/", "--db", db).returncode == 0
    for action in (("remove", "7"), ("deliveries", "7"), ("rotate-secret", "7"), ("redeliver", "7", "--from", "1")):
        answer = rollcall("webhook", *action, "--db", db)
        assert answer.returncode == 1 and "No webhook has the id 7" in answer.stderr, action
    answer = rollcall("webhook", "redeliver", "1", "--from", "0", "--db", db)
    assert answer.returncode == 1 and "at least 1" in answer.stderr


@pytest.mark.engines("sqlite", reason="SQLite's upgrade of a version-1 file; PostgreSQL starts at version 4")
def test_a_database_from_before_webhooks_gains_the_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        migrate(conn, (), target=1)  # a version-1 file, from before webhooks (and the later steps)
    finally:
        conn.close()
    upgraded = rollcall("migrate", "--db", str(path))
    assert upgraded.returncode == 0 and f"to {SCHEMA_VERSION}" in upgraded.stdout, upgraded.stderr
    assert rollcall("webhook", "add", "--url", "https://app.example.com/", "--db", str(path)).returncode == 0
