"""Backup, restore, schema upgrades and `rollcall check`."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from app.storage.factory import open_storage
from app.storage.schema_version import SCHEMA_VERSION
from app.storage.sqlite.backup import backup
from app.storage.sqlite.migrations import migrate
from tests.conftest import REPO, serve_process
from tests.postgres_server import PostgresServer

SQLITE_FILE = pytest.mark.engines("sqlite", reason=(
    "SQLite's backup and migration of a file; on PostgreSQL `rollcall backup` points to pg_dump and `rollcall "
    "migrate` runs each step in one transaction (test_migrate_and_backup_on_postgresql_never_show_the_password, "
    "tests/storage/test_postgres_migrations.py)"))



def rollcall(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


@SQLITE_FILE
def test_backup_of_a_live_database_is_consistent_and_restorable(tmp_path: Path) -> None:
    with serve_process(tmp_path) as server:
        headers = {"Authorization": f"Bearer {server.token}"}
        with httpx2.Client(base_url=server.base_url, headers=headers, trust_env=False) as http:
            for i in range(20):
                assert http.post("/Users", json={"userName": f"u{i}"}).status_code == 201
            copy = tmp_path / "backup.db"
            made = rollcall("backup", str(copy), "--db", server.db_path)
            assert made.returncode == 0 and "integrity check ok" in made.stdout
            assert http.post("/Users", json={"userName": "after-backup"}).status_code == 201
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 20
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert not Path(str(copy) + "-wal").exists()
    # Restore, as README says: stop the server, put the backup in place of the database, start again.
    restored = tmp_path / "restored"
    restored.mkdir()
    (restored / "served.db").write_bytes(copy.read_bytes())
    with serve_process(restored, token_name=None) as server:
        rows = sqlite3.connect(server.db_path).execute("SELECT count(*) FROM users").fetchone()[0]
        assert rows == 20


@SQLITE_FILE
def test_backup_refuses_to_overwrite(tmp_path: Path) -> None:
    asyncio.run(_create(tmp_path / "a.db"))
    (tmp_path / "exists.db").write_text("precious")
    refused = rollcall("backup", str(tmp_path / "exists.db"), "--db", str(tmp_path / "a.db"))
    assert refused.returncode == 1 and "already exists" in refused.stderr
    assert (tmp_path / "exists.db").read_text() == "precious"


async def _create(path: Path) -> None:
    db = open_storage(path)
    await db.open()
    await db.close()


@SQLITE_FILE
def test_migrate_on_a_current_database_does_nothing(tmp_path: Path) -> None:
    asyncio.run(_create(tmp_path / "a.db"))
    result = rollcall("migrate", "--db", str(tmp_path / "a.db"))
    assert result.returncode == 0 and "up to date" in result.stdout
    assert list(tmp_path.glob("*.backup")) == []


@SQLITE_FILE
def test_migrations_apply_in_order_each_once(tmp_path: Path) -> None:
    steps = ((2, "ALTER TABLE users ADD COLUMN nickname TEXT;"), (3, "CREATE TABLE extra (x);"))
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    try:
        assert migrate(conn, steps, target=3) == (0, 3)
        assert migrate(conn, steps, target=3) == (3, 3)
        assert "nickname" in [row[1] for row in conn.execute("PRAGMA table_info(users)")]
    finally:
        conn.close()


def test_check_reports_versions_and_speedups() -> None:
    result = rollcall("check")
    assert result.returncode == 0
    for expected in ("rollcall ", "python ", "sqlite ", "aiohttp ", "speedup aiohttp._http_parser: loaded",
                     "schema.sql found", "event loop: uvloop " if sys.platform == "linux" else "event loop: "):
        assert expected in result.stdout


def test_check_fails_loudly_on_linux_without_uvloop() -> None:
    # As a binary that missed uvloop would: serve still works, on the slower stock loop.
    result = subprocess.run([sys.executable, "-c", "import sys; sys.modules['uvloop'] = None\n"
                             "from app.cli import main; sys.exit(main(['check']))"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    if sys.platform != "linux":
        pytest.skip("uvloop is a dependency on Linux only")
    assert result.returncode == 1
    assert "event loop: asyncio (uvloop MISSING" in result.stdout and "slow or broken" in result.stderr


def test_check_fails_loudly_when_the_compiled_parser_is_not_in_use() -> None:
    import os

    result = subprocess.run([sys.executable, "-m", "app", "check"], cwd=REPO, capture_output=True, text=True,
                            timeout=60, env={**os.environ, "AIOHTTP_NO_EXTENSIONS": "1"})
    assert result.returncode == 1
    assert "aiohttp._http_parser" in result.stdout and "slow or broken" in result.stderr


# -- backup: a new file or nothing; never through a symlink, never a half file -------------------------------

def _refused(result: subprocess.CompletedProcess[str]) -> str:
    """One `rollcall: ...` line on stderr and exit status 1: no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rollcall: "), result.stderr
    return lines[0]


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@SQLITE_FILE
def test_backup_does_not_write_through_a_symlink_at_the_partial_name(tmp_path: Path) -> None:
    asyncio.run(_create(tmp_path / "a.db"))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out.db.partial").symlink_to(victim)
    line = _refused(rollcall("backup", str(tmp_path / "out.db"), "--db", str(tmp_path / "a.db")))
    assert "out.db.partial is in the way" in line
    assert victim.read_text() == "precious"
    assert (tmp_path / "out.db.partial").is_symlink()  # not ours: left as it was
    assert not (tmp_path / "out.db").exists()


@SQLITE_FILE
def test_backup_refuses_a_partial_left_by_an_interrupted_backup(tmp_path: Path) -> None:
    asyncio.run(_create(tmp_path / "a.db"))
    (tmp_path / "out.db.partial").write_text("someone's")
    assert "out.db.partial is in the way" in _refused(
        rollcall("backup", str(tmp_path / "out.db"), "--db", str(tmp_path / "a.db")))
    assert (tmp_path / "out.db.partial").read_text() == "someone's"
    assert not (tmp_path / "out.db").exists()


@SQLITE_FILE
def test_backup_does_not_follow_a_symlink_at_the_output(tmp_path: Path) -> None:
    asyncio.run(_create(tmp_path / "a.db"))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "to-victim.db").symlink_to(victim)
    (tmp_path / "dangling.db").symlink_to(tmp_path / "would-be-created.db")
    for out in ("to-victim.db", "dangling.db"):
        line = _refused(rollcall("backup", str(tmp_path / out), "--db", str(tmp_path / "a.db")))
        assert line == f"rollcall: {tmp_path / out} already exists; choose a new file name for the backup."
    assert victim.read_text() == "precious"
    assert _names(tmp_path) == ["a.db", "dangling.db", "to-victim.db", "victim.txt"]


@SQLITE_FILE
def test_backup_into_a_directory_that_does_not_exist_says_so(tmp_path: Path) -> None:
    asyncio.run(_create(tmp_path / "a.db"))
    out = tmp_path / "missing" / "out.db"
    line = _refused(rollcall("backup", str(out), "--db", str(tmp_path / "a.db")))
    assert line == f"rollcall: Cannot create {out}: there is no directory {out.parent}."
    assert _names(tmp_path) == ["a.db"]


@SQLITE_FILE
def test_backup_of_a_file_that_is_not_a_database_leaves_nothing_behind(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a database\n")
    out = tmp_path / "out.db"
    line = _refused(rollcall("backup", str(out), "--db", str(tmp_path / "notes.txt")))
    assert line == f"rollcall: Cannot back up {tmp_path / 'notes.txt'}: file is not a database."
    assert _names(tmp_path) == ["notes.txt"]


@SQLITE_FILE
def test_backup_of_a_database_that_does_not_exist_leaves_nothing_behind(tmp_path: Path) -> None:
    line = _refused(rollcall("backup", str(tmp_path / "out.db"), "--db", str(tmp_path / "typo.db")))
    assert "no database at" in line
    assert _names(tmp_path) == []


@SQLITE_FILE
def test_backup_without_hard_links_copies_into_a_new_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a file system without hard links (FAT, some network mounts) the copy is written into a file created
    exclusively, so an existing file is still never overwritten."""
    import errno
    import os

    def no_links(*_: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    asyncio.run(_create(tmp_path / "a.db"))
    monkeypatch.setattr(os, "link", no_links)
    backup(tmp_path / "a.db", tmp_path / "out.db")
    with sqlite3.connect(tmp_path / "out.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert [name for name in _names(tmp_path) if not name.startswith("a.db-")] == ["a.db", "out.db"]
    assert (tmp_path / "out.db").stat().st_mode & 0o777 == 0o600


@SQLITE_FILE
def test_a_migration_step_that_fails_is_undone_whole(tmp_path: Path) -> None:
    steps = ((2, "CREATE TABLE extra (x); INSERT INTO extra VALUES (1); CREATE TABLE extra (y);"),)
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    try:
        migrate(conn, (), target=1)
        with pytest.raises(sqlite3.OperationalError, match="already exists"):
            migrate(conn, steps, target=2)
        assert not conn.in_transaction
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'extra'").fetchone()[0] == 0
    finally:
        conn.close()


def test_migrate_and_backup_on_postgresql_never_show_the_password(postgres_server: PostgresServer) -> None:
    # The test cluster trusts loopback: the password is here only to be kept out of every output.
    url = postgres_server.new_database().replace("postgresql://postgres@", "postgresql://postgres:pw-s3cret@")
    migrated = rollcall("migrate", "--db", url)
    assert migrated.returncode == 0, migrated.stderr
    assert "up to date" in migrated.stdout and "postgresql://postgres@127.0.0.1" in migrated.stdout
    refused = rollcall("backup", "--db", url, str(postgres_server.folder / "copy.db"))
    assert refused.returncode == 1 and "pg_dump" in refused.stderr
    for shown in (migrated, refused):
        assert "pw-s3cret" not in shown.stdout + shown.stderr
