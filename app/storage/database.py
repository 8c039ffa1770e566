"""The SQLite database: opening, schema migration, and the transactions every query runs in.

One writer connection, whose thread runs write transactions one at a time, gives SQLite's single-writer
model without "database is locked" errors; readers use their own connections so a request never sees
another request's uncommitted writes (WAL lets them read while the writer writes).
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from app.storage.filter_sql import register_functions

SCHEMA_VERSION = 5
BUSY_TIMEOUT_MS = 5000
# A lookup on the event loop waits at most this long for SQLite before moving to a reader thread.
LOOP_BUSY_TIMEOUT_MS = 20
# The most writes one group commit takes; a bound on how long the first of them waits for the others.
MAX_GROUP_COMMIT = 64
READ_CONNECTIONS = 2
# SQLite's primary result codes for "another connection holds the lock": the only errors a lookup retries on a
# reader thread, where a longer busy timeout applies. Decided by code, never by the message's wording.
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})

T = TypeVar("T")


class DatabaseError(Exception):
    """The database cannot be used as asked (newer schema, unreadable file)."""


class NoDatabase(DatabaseError):
    """There is no file at `path`, and the caller asked to open an existing database, not to create one."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(f"There is no database at {path}.")
        self.path = str(path)


# Everything rollcall writes holds personal data or token hashes: only its own user may read it.
PRIVATE_FILE_MODE = 0o600


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


def _configure(conn: sqlite3.Connection, synchronous: str) -> None:
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    register_functions(conn)


def _pragma(conn: sqlite3.Connection, setting: str) -> list[Any]:
    # Fetch the answer: a cursor left unread keeps its statement open, and COMMIT refuses to run after it.
    return conn.execute(f"PRAGMA {setting}").fetchall()


def _commit_together(conn: sqlite3.Connection, works: list[Callable[[sqlite3.Connection], Any]]
                     ) -> list[tuple[bool, Any]]:
    """One transaction for a batch of writes, each in its own savepoint: (failed, result or exception)."""
    outcomes: list[tuple[bool, Any]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for work in works:
            conn.execute("SAVEPOINT request")
            try:
                outcomes.append((False, work(conn)))
            except Exception as error:
                conn.execute("ROLLBACK TO request")
                outcomes.append((True, error))
            conn.execute("RELEASE request")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return outcomes


@contextmanager
def savepoint(conn: sqlite3.Connection) -> Iterator[None]:
    """Run the block in a savepoint of the transaction under way: if it raises, its changes alone are undone and
    the transaction goes on (each operation of a Bulk request, within the transaction of its batch)."""
    conn.execute("SAVEPOINT operation")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK TO operation")
        conn.execute("RELEASE operation")
        raise
    conn.execute("RELEASE operation")


def _in_transaction(conn: sqlite3.Connection, begin: str, work: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute(begin)
    try:
        result = work(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


class Database:
    """Owns the connections to one SQLite file.

    A transaction is a plain function of a sqlite3 connection, run whole on that connection's aiosqlite
    thread: one thread hop per request instead of one per statement and per fetch, which profiling showed
    to be the largest cost of a request. aiosqlite has no public call for running a function on its thread,
    so `_run` uses its `_execute`, the one primitive all of its public methods are built on (and the
    dependency is pinned to the versions tested).

    Lookups that an index answers in microseconds (a token, a resource by id, `userName eq`) skip even
    that hop: under load a hop costs more than the query, as the thread waits for the GIL and the event
    loop for the thread's answer (bench/: GET by id went from 780 to 1,380 requests/s on two cores when
    its reads stopped hopping). They run on the event loop's own connection, with a short busy timeout
    and a fall-back to the reader threads, so a slow moment in SQLite never stalls the loop for long.
    """

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL", must_exist: bool = False) -> None:
        self.path = str(path)
        self.synchronous = synchronous
        self.must_exist = must_exist
        self._writer: aiosqlite.Connection | None = None
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._loop_reader: sqlite3.Connection | None = None
        self._pending: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._committing: asyncio.Task[None] | None = None
        # Odd while a commit is under way, and one more after it: a read that sees the same even value
        # before its snapshot as an earlier read did saw the same data (app/domain/paging.py caches on it).
        self.generation = 0

    async def open(self) -> None:
        """Open the file, creating it (0600) unless `must_exist`, and bring its schema up to date."""
        self._create_file()
        try:
            self._writer = await self._connect()
            await _run(self._writer, _pragma, "journal_mode = WAL")
            await _run(self._writer, migrate)
            for _ in range(READ_CONNECTIONS):
                reader = await self._connect()
                await _run(reader, _pragma, "query_only = ON")
                self._all_readers.append(reader)
                self._readers.put_nowait(reader)
            self._loop_reader = sqlite3.connect(self.path, isolation_level=None)
            _configure(self._loop_reader, self.synchronous)
            self._loop_reader.execute(f"PRAGMA busy_timeout = {LOOP_BUSY_TIMEOUT_MS}")
            _pragma(self._loop_reader, "query_only = ON")
        except BaseException as error:
            # An open connection keeps a thread alive, and with it the process: close what opened.
            await self.close(optimize=False)
            if isinstance(error, sqlite3.DatabaseError):  # e.g. "file is not a database"
                raise DatabaseError(f"Cannot use {self.path} as a rollcall database: {error}.") from error
            raise

    def _create_file(self) -> None:
        if self.path in ("", ":memory:") or os.path.exists(self.path):
            return
        if self.must_exist:
            raise NoDatabase(self.path)
        # SQLite would create the file 0644 (less the umask). Created 0600 here first, it keeps that mode, and
        # SQLite gives the -wal and -shm files the mode of the database file, whatever the process umask.
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE))
        except OSError as error:
            raise DatabaseError(f"Cannot create the database {self.path}: {error.strerror}.") from None

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await _run(conn, _configure, self.synchronous)
        except BaseException:
            await conn.close()  # not yet one of ours for close() to find; its thread would keep the process alive
            raise
        return conn

    async def close(self, optimize: bool = True) -> None:
        if self._loop_reader is not None:
            self._loop_reader.close()
            self._loop_reader = None
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()
        if self._writer is not None:
            if optimize:
                await _run(self._writer, _pragma, "optimize")
            await self._writer.close()
            self._writer = None

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` as one write transaction: it commits whole, or (if it raises) not at all, and this
        returns only after the commit. Writes run one after another, in the order they were asked for.

        Writes that arrive while a commit is under way are committed together (group commit): each runs
        in a savepoint of its own, so one that raises is undone alone, and the batch shares one BEGIN,
        one COMMIT and one thread hop, which is most of a small write's cost."""
        assert self._writer is not None, "Database.open() was not called"
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((work, future))
        if self._committing is None:
            self._committing = asyncio.create_task(self._commit_pending())
        return await future

    async def _commit_pending(self) -> None:
        assert self._writer is not None
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_GROUP_COMMIT], self._pending[MAX_GROUP_COMMIT:]
                self.generation += 1
                try:
                    outcomes = await _run(self._writer, _commit_together, [work for work, _ in batch])
                except BaseException as error:  # the COMMIT itself failed: nothing in the batch happened
                    self.generation += 1
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    if not isinstance(error, Exception):
                        raise
                    continue
                self.generation += 1
                for (_, future), (failed, value) in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if failed:
                        future.set_exception(value)
                    else:
                        future.set_result(value)
        finally:
            self._committing = None

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` as one read transaction: every query in it sees the same snapshot."""
        reader = await self._readers.get()
        try:
            return await _run(reader, _in_transaction, "BEGIN", work)
        finally:
            self._readers.put_nowait(reader)

    async def lookup(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work`, a read that an index answers at once, as one read transaction on the event loop's
        own connection (see the class docstring); if SQLite is busy, on a reader thread instead."""
        assert self._loop_reader is not None, "Database.open() was not called"
        try:
            return _in_transaction(self._loop_reader, "BEGIN", work)
        except sqlite3.OperationalError as error:
            # Extended codes (SQLITE_BUSY_SNAPSHOT, ...) carry the primary code in their low byte.
            if (error.sqlite_errorcode or 0) & 0xFF not in _BUSY_CODES:
                raise
            return await self.read(work)

    async def current_schema_version(self) -> int:
        return await self.read(schema_version)


async def _run(conn: aiosqlite.Connection, function: Callable[..., T], *args: Any) -> T:
    return await conn._execute(lambda: function(conn._conn, *args))


# Version 2: the safety nets (app/domain/holds.py). A hold is one change whose departures (or an admin's demotion)
# wait for a person; `held` names each person it keeps on the roster, and what happened to them once it closed.
# The partial index lets the sliding window count the feed's joins and departures without walking the feed.
_HOLDS = """
CREATE TABLE holds (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    opened     TEXT NOT NULL,
    cause      TEXT NOT NULL CHECK (cause IN ('mass-removal', 'last-admin')),
    actor      TEXT NOT NULL,              -- the name of the token whose change was held
    change     TEXT NOT NULL,              -- JSON: what that change was
    state      TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'approved', 'cancelled')),
    closed     TEXT,
    closed_by  TEXT
);
CREATE INDEX holds_open ON holds (id) WHERE state = 'open';
CREATE TABLE held (
    hold_id    INTEGER NOT NULL REFERENCES holds (id),
    user_id    TEXT NOT NULL,
    user_name  TEXT NOT NULL,
    role       TEXT NOT NULL,              -- the role they keep on the roster while held
    becomes    TEXT,                       -- the role the change gives them; NULL: they leave
    reason     TEXT NOT NULL,              -- the member.left reason their departure will carry
    outcome    TEXT CHECK (outcome IN ('applied', 'released')),  -- NULL while held
    PRIMARY KEY (hold_id, user_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX held_now ON held (user_id) WHERE outcome IS NULL;
CREATE INDEX events_members_by_time ON events (type, at) WHERE type IN ('member.joined', 'member.left');
"""

# Version 4: webhooks (app/domain/webhooks.py): each endpoint with its cursor over the feed, and its recent attempts.
_WEBHOOKS_STEP = """
-- Webhook endpoints (push). Each one keeps its own cursor over the events table: `cursor` is the seq of the last
-- event it has been handed (delivered, or skipped as not matching its patterns). The events are written in the
-- transaction of the change they describe, so the cursor makes them an outbox per endpoint with nothing to copy.
-- The secret is kept in clear: it signs every delivery (HMAC), so it cannot be stored as a hash.
CREATE TABLE webhooks (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    url                   TEXT NOT NULL,
    events                TEXT NOT NULL,       -- JSON list of event-type patterns, e.g. ["member.*"]
    description           TEXT NOT NULL DEFAULT '',
    secret                TEXT NOT NULL,       -- whsec_<base64>, Standard Webhooks
    created               TEXT NOT NULL,
    cursor                INTEGER NOT NULL,    -- the seq of the last event handled
    state                 TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'failing')),
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    failing_since         REAL,                -- unix time of the first failure in the current run of failures
    retry_at              REAL,                -- unix time before which the next attempt waits
    revision              INTEGER NOT NULL DEFAULT 0  -- bumped by an admin change the worker must not overwrite
);

-- Recent delivery attempts, kept per endpoint for `rollcall webhook deliveries` (the oldest are pruned).
CREATE TABLE webhook_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id  INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    at          TEXT NOT NULL,
    status      INTEGER,                       -- the HTTP status, or NULL when no answer came
    latency_ms  INTEGER NOT NULL,
    error       TEXT                           -- why it failed, when it did
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
"""

# Upgrades, by the version they bring the file to. Version 1 is schema.sql itself, applied to an empty
# file; each later version is a step here, applied to every file below it (a new file included), so each
# statement of the schema is written once. A release appends (4, "ALTER TABLE ..."), and bumps SCHEMA_VERSION.
# Token scopes, expiry, last use and rotation; the roster's own folded userName, so that /api/members pages in index
# order; every user's e-mail addresses, case-folded, for forward auth's
# point lookup (kept in step by storage/resources.py on every write of a user). Existing tokens get the scopes every
# token had until then (the column default).
_TOKEN_SCOPES_AND_EMAILS = """
ALTER TABLE tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'scim roster';
ALTER TABLE tokens ADD COLUMN expires TEXT;
ALTER TABLE tokens ADD COLUMN last_used TEXT;
ALTER TABLE tokens ADD COLUMN previous_hash TEXT;
ALTER TABLE tokens ADD COLUMN previous_until TEXT;
CREATE UNIQUE INDEX tokens_previous_hash ON tokens (previous_hash);
CREATE TABLE user_emails (
    email_key  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (email_key, user_id)
) WITHOUT ROWID;
CREATE INDEX user_emails_by_user ON user_emails (user_id);
INSERT OR IGNORE INTO user_emails (email_key, user_id)
    SELECT scim_fold(json_extract(e.value, '$.value')), u.id FROM users u, json_each(u.doc, '$.emails') e
    WHERE json_type(e.value, '$.value') = 'text';
CREATE INDEX events_member_at ON events (at, seq) WHERE type IN ('member.joined', 'member.left', 'member.role_changed');
ALTER TABLE roster ADD COLUMN user_name_key TEXT NOT NULL DEFAULT '';
UPDATE roster SET user_name_key = scim_fold(user_name);
CREATE INDEX roster_by_name ON roster (user_name_key, user_id);
"""
# Version 5: the console's sign-in sessions and one-time sign-in links (app/domain/sessions.py). Only hashes of their
# values are stored; each names the token that opened it, so revoking that token ends it on the next request. And
# an index of the roster by role, for the console's members page at 100,000 members.
_CONSOLE_SESSIONS = """
CREATE TABLE console_sessions (
    id_hash     TEXT PRIMARY KEY,          -- SHA-256 of the cookie's value
    token_name  TEXT NOT NULL,             -- the admin token signed in with
    created     REAL NOT NULL,             -- unix time: the absolute limit counts from here
    last_seen   REAL NOT NULL              -- unix time: the idle limit counts from here
) WITHOUT ROWID;
CREATE INDEX console_sessions_by_token ON console_sessions (token_name);
-- The members page: its per-role counts read this index, not the table, and ?role= pages seek in it.
CREATE INDEX roster_by_role ON roster (role, user_name_key, user_id);
CREATE TABLE console_links (
    code_hash   TEXT PRIMARY KEY,          -- SHA-256 of the one-time code
    token_name  TEXT NOT NULL,
    expires     REAL NOT NULL              -- unix time
) WITHOUT ROWID;
"""
MIGRATIONS: tuple[tuple[int, str], ...] = ((2, _HOLDS), (3, _TOKEN_SCOPES_AND_EMAILS), (4, _WEBHOOKS_STEP),
                                           (5, _CONSOLE_SESSIONS))


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def _apply(conn: sqlite3.Connection, script: str, version: int) -> None:
    """One step, atomically: its statements and the new user_version commit together or not at all, so a crash
    (even SIGKILL) in the middle leaves the file at the version before, with all its data."""
    try:
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
    except BaseException:
        # executescript stops at the failing statement, inside the transaction: undo the step's first half.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def migrate(conn: sqlite3.Connection, migrations: Sequence[tuple[int, str]] | None = None,
            target: int | None = None) -> tuple[int, int]:
    """Bring the file to `target` (default SCHEMA_VERSION, through MIGRATIONS), each step in its own transaction;
    returns (version before, after). Refuses a file written by a newer rollcall."""
    migrations = MIGRATIONS if migrations is None else migrations
    target = SCHEMA_VERSION if target is None else target
    version = schema_version(conn)
    if version > target:
        raise DatabaseError(
            f"The database was written by a newer rollcall (schema version {version}; "
            f"this one understands up to {target}). Upgrade rollcall."
        )
    before = version
    if version == 0:
        _apply(conn, schema_sql(), 1)
        version = 1
    for step, script in migrations:
        if version < step <= target:
            _apply(conn, script, step)
            version = step
    return before, version


def pending_migration(path: str | Path) -> tuple[int, int] | None:
    """(current, target) when the file at `path` holds data at an older schema version; else None."""
    if not Path(path).exists():
        return None
    conn = sqlite3.connect(path)
    try:
        version = schema_version(conn)
    except sqlite3.DatabaseError as error:
        raise DatabaseError(f"Cannot use {path} as a rollcall database: {error}.") from None
    finally:
        conn.close()
    return (version, SCHEMA_VERSION) if 0 < version < SCHEMA_VERSION else None


def backup(source: str | Path, target: str | Path) -> None:
    """A consistent copy of a live database (SQLite's online backup), verified with integrity_check, as the new
    file `target`: never over an existing file, never through a symlink, never half-written.

    The copy is built in `<target>.partial`, a directory created for it alone (so no other user can put a symlink
    or a journal of their own into it), and then hard-linked to `target`: a link never replaces an existing name,
    so a file that appeared there meanwhile makes the backup fail instead of being overwritten. The directory is
    removed however the backup ends, unless the process is killed; then its name says what it is."""
    target = Path(target)
    if not Path(source).is_file():
        raise NoDatabase(source)
    if os.path.lexists(target):
        raise DatabaseError(f"{target} already exists; choose a new file name for the backup.")
    workdir = target.with_name(target.name + ".partial")
    try:
        os.mkdir(workdir, 0o700)
    except FileExistsError:
        raise DatabaseError(f"{workdir} is in the way (left by an interrupted backup?); remove it, or choose "
                            "another file name for the backup.") from None
    except FileNotFoundError:
        raise DatabaseError(f"Cannot create {target}: there is no directory {target.parent}.") from None
    except OSError as error:
        raise DatabaseError(f"Cannot create {target}: {error.strerror}.") from None
    try:
        copy = workdir / "copy.db"
        os.close(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         PRIVATE_FILE_MODE))
        _copy_database(source, copy)
        _link_new(copy, target)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _copy_database(source: str | Path, copy: Path) -> None:
    try:
        src = sqlite3.connect(f"{Path(source).absolute().as_uri()}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(copy)
            try:
                src.backup(dst)
                verdict = dst.execute("PRAGMA integrity_check").fetchone()[0]
                dst.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file, no -wal beside it
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.DatabaseError as error:  # "file is not a database", "database or disk is full", ...
        raise DatabaseError(f"Cannot back up {source}: {error}.") from None
    if verdict != "ok":
        raise DatabaseError(f"The copy failed its integrity check ({verdict}); the source may be damaged.")


def _link_new(built: Path, target: Path) -> None:
    """Give `built` the name `target`, which must not exist (as a file, a directory or a symlink)."""
    try:
        os.link(built, target)
    except FileExistsError:
        raise DatabaseError(f"{target} already exists; choose a new file name for the backup.") from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise DatabaseError(f"Cannot create {target}: {error.strerror}.") from None
        _copy_new(built, target)  # a file system without hard links (FAT, some network mounts)
    try:
        directory = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(directory)  # the new name, not only the data, survives a power loss
    finally:
        os.close(directory)


def _copy_new(built: Path, target: Path) -> None:
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except FileExistsError:
        raise DatabaseError(f"{target} already exists; choose a new file name for the backup.") from None
    except OSError as error:
        raise DatabaseError(f"Cannot create {target}: {error.strerror}.") from None
    try:
        with open(fd, "wb", closefd=False) as out, open(built, "rb") as data:
            shutil.copyfileobj(data, out)
            out.flush()
            os.fsync(fd)
    except OSError as error:
        os.unlink(target)  # ours: created exclusively above, so no one else's file
        raise DatabaseError(f"Cannot write {target}: {error.strerror}.") from None
    finally:
        os.close(fd)


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

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE_MODE)
        except OSError as error:
            raise DatabaseError(f"Cannot create the lock file {self.path}: {error.strerror}.") from None
        handle = open(fd, "r+")  # noqa: SIM115 -- held open for the life of the server
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
    pending = pending_migration(path)
    if pending is None:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    copy = Path(f"{path}.v{pending[0]}-{stamp}.backup")
    backup(path, copy)
    db = Database(path)
    await db.open()  # open() migrates
    await db.close()
    return pending[0], pending[1], copy
