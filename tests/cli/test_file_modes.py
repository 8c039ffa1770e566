"""Every file rollcall creates holds personal data or token hashes: it is 0600, whatever the umask it started with.

The test process runs with the usual umask 022 (under which SQLite alone creates 0644 files), and the commands run as
processes that inherit it, as they do from a shell or a service manager without UMask=."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from app.storage.factory import open_storage
from app.storage.schema_version import SCHEMA_VERSION
from app.storage.sqlite.backup import backup
from app.storage.sqlite.lock import DatabaseLock
from tests.conftest import REPO, serve_process

SQLITE_FILES = pytest.mark.engines("sqlite", reason="the modes of SQLite's files (database, -wal, -shm, lock); "
                                                   "PostgreSQL keeps its data in its own cluster")
PRIVATE = 0o600
# The real `rollcall` command line, as a release with one more schema step would ship it.
NEWER_ROLLCALL = """
import sys
from app.storage.sqlite import migrations as database
database.MIGRATIONS = (*database.MIGRATIONS, (database.SCHEMA_VERSION + 1, "CREATE TABLE extra (x TEXT);"))
database.SCHEMA_VERSION += 1
from app.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def rollcall(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@SQLITE_FILES
def test_serve_creates_the_database_its_wal_shm_and_lock_private(tmp_path: Path) -> None:
    with serve_process(tmp_path, token_name=None) as server:
        deadline = time.monotonic() + 15
        while not (found := re.search(r"Token:\s+(\S+)", server.log)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert found, server.log
        headers = {"Authorization": f"Bearer {found.group(1)}"}
        with httpx2.Client(base_url=server.base_url, headers=headers, trust_env=False) as http:
            assert http.post("/Users", json={"userName": "ann"}).status_code == 201
        db = Path(server.db_path)
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}.lock")]
        assert {f.name: oct(mode(f)) for f in files} == {f.name: oct(PRIVATE) for f in files}


@SQLITE_FILES
def test_token_create_backup_and_migrate_create_private_files(tmp_path: Path) -> None:
    db = tmp_path / "rollcall.db"
    assert rollcall("token", "create", "--name", "jumpcloud", "--db", str(db)).returncode == 0
    assert mode(db) == PRIVATE
    copy = tmp_path / "copy.db"
    assert rollcall("backup", str(copy), "--db", str(db)).returncode == 0
    assert mode(copy) == PRIVATE
    # `migrate` by a rollcall one schema version newer: the backup it makes first is private too.
    result = subprocess.run([sys.executable, "-c", NEWER_ROLLCALL, "migrate", "--db", str(db)], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    upgraded = f"from schema version {SCHEMA_VERSION} to {SCHEMA_VERSION + 1}"
    assert result.returncode == 0 and upgraded in result.stdout, result.stderr
    made = list(tmp_path.glob(f"rollcall.db.v{SCHEMA_VERSION}-*.backup"))
    assert len(made) == 1 and mode(made[0]) == PRIVATE
    assert mode(db) == PRIVATE


@SQLITE_FILES
def test_the_storage_layer_creates_private_files_when_used_as_a_library(tmp_path: Path) -> None:
    """Without the CLI's umask: the database, its -wal and -shm, the lock and a backup are created 0600 themselves."""
    path = tmp_path / "lib.db"
    lock = DatabaseLock(path)
    lock.acquire()
    try:
        async def use() -> None:
            db = open_storage(path)
            await db.open()
            try:
                await db.write(lambda tx: tx.connection.execute("INSERT INTO settings VALUES ('k', 'v')"))
                files = [path, Path(f"{path}-wal"), Path(f"{path}-shm"), lock.path]
                assert {f.name: oct(mode(f)) for f in files} == {f.name: oct(PRIVATE) for f in files}
            finally:
                await db.close()

        asyncio.run(use())
    finally:
        lock.release()
    backup(path, tmp_path / "lib-copy.db")
    assert mode(tmp_path / "lib-copy.db") == PRIVATE
