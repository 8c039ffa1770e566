"""The SQLite database: opening, schema migration, and the transactions every query runs in.

One writer connection serialised by a lock gives SQLite's single-writer model without "database is
locked" errors; readers use their own connections so a request never sees another request's
uncommitted writes (WAL lets them read while the writer writes).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 5000
READ_CONNECTIONS = 2


def fold(value: object) -> object:
    """SQL `scim_fold(x)`: Unicode case folding, which SQLite's own lower() and NOCASE lack."""
    return value.casefold() if isinstance(value, str) else value


class DatabaseError(Exception):
    """The database cannot be used as asked (newer schema, unreadable file)."""


def schema_sql() -> str:
    """The text of schema.sql: beside the package in a checkout or a PyInstaller bundle,
    under share/rollcall when installed from a wheel."""
    here = Path(__file__).resolve().parent.parent.parent
    candidates = [here / "schema.sql", Path(sys.prefix) / "share" / "rollcall" / "schema.sql"]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.insert(0, Path(bundle) / "schema.sql")
    for candidate in candidates:
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    raise DatabaseError("schema.sql was not found next to the application; reinstall rollcall.")


async def _connect(path: str, synchronous: str) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await conn.execute("PRAGMA foreign_keys = ON")
    await conn.execute(f"PRAGMA synchronous = {synchronous}")
    await conn.create_function("scim_fold", 1, fold, deterministic=True)
    return conn


class Database:
    """Owns the connections to one SQLite file."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        self.path = str(path)
        self.synchronous = synchronous
        self._writer: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []

    async def open(self) -> None:
        try:
            self._writer = await _connect(self.path, self.synchronous)
            await self._writer.execute("PRAGMA journal_mode = WAL")
            await migrate(self._writer)
            for _ in range(READ_CONNECTIONS):
                reader = await _connect(self.path, self.synchronous)
                await reader.execute("PRAGMA query_only = ON")
                self._all_readers.append(reader)
                self._readers.put_nowait(reader)
        except BaseException:
            # An open connection keeps a thread alive, and with it the process: close what opened.
            await self.close(optimize=False)
            raise

    async def close(self, optimize: bool = True) -> None:
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()
        if self._writer is not None:
            if optimize:
                await self._writer.execute("PRAGMA optimize")
            await self._writer.close()
            self._writer = None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: everything inside commits together or not at all."""
        assert self._writer is not None, "Database.open() was not called"
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    async def current_schema_version(self) -> int:
        async with self.read() as conn:
            return await schema_version(conn)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """One read transaction: every query inside sees the same snapshot."""
        reader = await self._readers.get()
        try:
            await reader.execute("BEGIN")
            try:
                yield reader
            finally:
                await reader.execute("COMMIT")
        finally:
            self._readers.put_nowait(reader)


# Upgrades, by the version they bring the file to. Version 1 is schema.sql itself, applied to an empty
# file; a later release appends (2, "ALTER TABLE ..."), and so on, and bumps SCHEMA_VERSION.
MIGRATIONS: tuple[tuple[int, str], ...] = ()


async def schema_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return row[0] if row else 0


async def migrate(conn: aiosqlite.Connection, migrations: tuple[tuple[int, str], ...] = MIGRATIONS,
                  target: int = SCHEMA_VERSION) -> tuple[int, int]:
    """Bring the file to `target`, each step in its own transaction; returns (version before, after).
    Refuses a file written by a newer rollcall."""
    version = await schema_version(conn)
    if version > target:
        raise DatabaseError(
            f"The database was written by a newer rollcall (schema version {version}; "
            f"this one understands up to {target}). Upgrade rollcall."
        )
    before = version
    if version == 0:
        script = schema_sql()
        await conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = 1;\nCOMMIT;")
        version = 1
    for step, script in migrations:
        if version < step <= target:
            await conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {step};\nCOMMIT;")
            version = step
    return before, version


async def pending_migration(path: str | Path) -> tuple[int, int] | None:
    """(current, target) when the file at `path` holds data at an older schema version; else None."""
    if not Path(path).exists():
        return None
    conn = await aiosqlite.connect(str(path))
    try:
        version = await schema_version(conn)
    finally:
        await conn.close()
    return (version, SCHEMA_VERSION) if 0 < version < SCHEMA_VERSION else None


def backup(source: str | Path, target: str | Path) -> None:
    """A consistent copy of a live database (SQLite's online backup), verified with integrity_check."""
    target = Path(target)
    if target.exists():
        raise DatabaseError(f"{target} already exists; choose a new file name for the backup.")
    if not Path(source).is_file():
        raise DatabaseError(f"There is no database at {source}.")
    partial = target.with_name(target.name + ".partial")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
            verdict = dst.execute("PRAGMA integrity_check").fetchone()[0]
            dst.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file, no -wal beside it
        finally:
            dst.close()
    finally:
        src.close()
    if verdict != "ok":
        partial.unlink(missing_ok=True)
        raise DatabaseError(f"The copy failed its integrity check ({verdict}); the source may be damaged.")
    partial.rename(target)


class DatabaseLock:
    """Keeps a second `rollcall serve` off a database file that one already serves.

    An advisory lock on `<db>.lock`, released by the kernel when the process ends however it ends,
    so a crash never leaves a stale lock behind.
    """

    def __init__(self, db_path: str | Path) -> None:
        self.path = Path(str(db_path) + ".lock")
        self._handle: Any = None

    def acquire(self) -> None:
        import fcntl

        handle = open(self.path, "a+")  # noqa: SIM115 -- held open for the life of the server
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise DatabaseError(f"{self.path.with_suffix('')} is already being served by {holder}; "
                                "stop that server first (two servers on one file would fight over it).") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"rollcall pid {os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


async def upgrade(path: str | Path) -> tuple[int, int, Path] | None:
    """Apply pending schema upgrades to the file at `path`, backing it up first.
    Returns (version before, after, backup file), or None when there was nothing to do."""
    pending = await pending_migration(path)
    if pending is None:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    copy = Path(f"{path}.v{pending[0]}-{stamp}.backup")
    backup(path, copy)
    db = Database(path)
    await db.open()  # open() migrates
    await db.close()
    return pending[0], pending[1], copy
