"""The SQLite database: opening, schema migration, and the transactions every query runs in.

One writer connection serialised by a lock gives SQLite's single-writer model without "database is
locked" errors; readers use their own connections so a request never sees another request's
uncommitted writes (WAL lets them read while the writer writes).
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

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
        self._writer = await _connect(self.path, self.synchronous)
        await self._writer.execute("PRAGMA journal_mode = WAL")
        await migrate(self._writer)
        for _ in range(READ_CONNECTIONS):
            reader = await _connect(self.path, self.synchronous)
            await reader.execute("PRAGMA query_only = ON")
            self._all_readers.append(reader)
            self._readers.put_nowait(reader)

    async def close(self) -> None:
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()
        if self._writer is not None:
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


async def migrate(conn: aiosqlite.Connection) -> None:
    """Create the schema in an empty file; refuse a file written by a newer rollcall."""
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    version = row[0] if row else 0
    if version > SCHEMA_VERSION:
        raise DatabaseError(
            f"The database was written by a newer rollcall (schema version {version}; "
            f"this one understands up to {SCHEMA_VERSION}). Upgrade rollcall."
        )
    if version == SCHEMA_VERSION:
        return
    script = schema_sql()
    await conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;")
