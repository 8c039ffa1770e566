"""The SQLite engine: opening the file, and the threads and connections every transaction runs on.

One writer connection, whose thread runs write transactions one at a time, gives SQLite's single-writer
model without "database is locked" errors; readers use their own connections so a request never sees
another request's uncommitted writes (WAL lets them read while the writer writes).

Why threads of its own, not aiosqlite: a transaction here is a plain function of the connection (a body of the
Transaction in transaction.py), run whole on the connection's thread: one thread hop per transaction instead of
one per statement and per fetch, which profiling showed to be the largest cost of a request. aiosqlite has no
public call for running a function on its thread (its `_execute` is private), and its public API hops once per
statement. So each connection here lives on a thread the engine owns, fed through a queue: a whole body, and a
whole group commit, is one hop, as it was through aiosqlite's `_execute` (the server's CPU time per request, GET,
filter and POST, measured side by side against the aiosqlite version: the same within noise; `make bench
ARGS=--quick` before and after is in the commit that made this change). rollcall no longer depends on aiosqlite.

Lookups that an index answers in microseconds (a token, a resource by id, `userName eq`) skip even
that hop: under load a hop costs more than the query, as the thread waits for the GIL and the event
loop for the thread's answer (bench/: GET by id went from 780 to 1,380 requests/s on two cores when
its reads stopped hopping). They run on the event loop's own connection, with a short busy timeout
and a fall-back to the reader threads, so a slow moment in SQLite never stalls the loop for long. Whether a
search is such a lookup is the engine's decision, from SQLite's own query plan (query_plan.py).

The lookups, and the token check's change stamp, of one turn of the event loop share one read transaction on that
connection (the loop snapshot), ended on the loop's next turn: a GET's stamp and its read, and the requests of one
busy turn, take SQLite's WAL read lock once instead of once each (and skip a BEGIN and a COMMIT). A snapshot never
outlives a commit of this process (it is taken again when `generation` moves), and a request that arrives after a
commit by another process (a `rollcall token revoke`) runs in a later turn, so it sees what was committed before it
arrived, as a transaction of its own would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from app.protocol.resolved import SearchQuery
from app.storage.errors import Contended, DatabaseError, NoDatabase
from app.storage.interface import Transaction
from app.storage.sqlite.files import PRIVATE_FILE_MODE
from app.storage.sqlite.functions import register_functions
from app.storage.sqlite.migrations import migrate, schema_version
from app.storage.sqlite.resources import is_point_search
from app.storage.sqlite.transaction import SqliteTransaction

BUSY_TIMEOUT_MS = 5000
# A lookup on the event loop waits at most this long for SQLite before moving to a reader thread.
LOOP_BUSY_TIMEOUT_MS = 20
# The most writes one group commit takes; a bound on how long the first of them waits for the others.
MAX_GROUP_COMMIT = 64
READ_CONNECTIONS = 2
# The write-ahead log is checkpointed (its pages copied into the file, both synced) on a thread of its own, after
# this many commits, rather than by SQLite in the commit that takes the log past 1,000 pages: that commit waited
# for the copy and two fsyncs, 70% of the writer's time per commit on average (one-member adds, in-process, 2,000
# of them), while every write queued behind it; the more pages a batch dirties (a large group's members land on
# many), the more often. A PASSIVE checkpoint never blocks the writer or a reader.
CHECKPOINT_COMMITS = 100
# ... and the writer still checkpoints itself once the log holds this many pages (16 MiB), as SQLite would at
# 1,000: a log the checkpoint thread could not bring back to its start (writes never paused) stays bounded.
BACKSTOP_CHECKPOINT_PAGES = 4000
# SQLite's primary result codes for "another connection holds the lock": the only errors a lookup retries on a
# reader thread, where a longer busy timeout applies. Decided by code, never by the message's wording.
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})

T = TypeVar("T")
Body = Callable[[Transaction], T]
log = logging.getLogger("rollcall.storage")


def _configure(conn: sqlite3.Connection, synchronous: str) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    register_functions(conn)


def _connect(path: str, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        _configure(conn, synchronous)
    except BaseException:
        conn.close()
        raise
    return conn


def _pragma(conn: sqlite3.Connection, setting: str) -> list[Any]:
    # Fetch the answer: a cursor left unread keeps its statement open, and COMMIT refuses to run after it.
    return conn.execute(f"PRAGMA {setting}").fetchall()


def _checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """A PASSIVE checkpoint: (1 if it could not run, pages in the log, pages checkpointed)."""
    busy, pages, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(busy), int(pages), int(copied)


def _commit_together(conn: sqlite3.Connection, bodies: list[Body[Any]]) -> list[tuple[bool, Any]]:
    """One transaction for a batch of writes, each in its own savepoint: (failed, result or exception)."""
    outcomes: list[tuple[bool, Any]] = []
    tx = SqliteTransaction(conn)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        if not _is_busy(error):
            raise
        # Another process (a `rollcall` command, a backup) held the file's write lock all through busy_timeout.
        raise Contended(1, BUSY_TIMEOUT_MS / 1000) from None
    try:
        if len(bodies) == 1:
            # A write alone (an identity provider sending one request at a time) needs no savepoint: undoing the
            # transaction undoes it and nothing else, two statements fewer on the writer.
            try:
                outcomes.append((False, bodies[0](tx)))
            except Exception as error:
                conn.execute("ROLLBACK")
                return [(True, error)]
        else:
            for body in bodies:
                conn.execute("SAVEPOINT request")
                try:
                    outcomes.append((False, body(tx)))
                except Exception as error:
                    conn.execute("ROLLBACK TO request")
                    outcomes.append((True, error))
                conn.execute("RELEASE request")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return outcomes


def _in_transaction(conn: sqlite3.Connection, tx: SqliteTransaction, body: Body[T]) -> T:
    conn.execute("BEGIN")
    try:
        result = body(tx)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def _settle(future: asyncio.Future[Any], failed: bool, value: Any) -> None:
    if future.done():  # cancelled while its work ran
        return
    if failed:
        future.set_exception(value)
    else:
        future.set_result(value)


class _ConnectionThread:
    """A thread that owns one connection and runs functions of it, one at a time, in the order asked."""

    def __init__(self, name: str) -> None:
        self._work: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()
        self.conn: sqlite3.Connection | None = None

    def _serve(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            loop, future, function, args = item
            try:
                outcome = (False, function(*args))
            except BaseException as error:  # handed to the caller, whatever it is
                outcome = (True, error)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting
                loop.call_soon_threadsafe(_settle, future, *outcome)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._work.put((loop, future, function, args))
        return await future

    async def open(self, path: str, synchronous: str) -> sqlite3.Connection:
        self.conn = await self.run(_connect, path, synchronous)
        return self.conn

    async def close(self) -> None:
        if self.conn is not None:
            await self.run(self.conn.close)
            self.conn = None
        self._work.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)


class SqliteStorage:
    """Owns the connections to one SQLite file: a writer thread, READ_CONNECTIONS reader threads, and a
    connection of the event loop's own for lookups."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL", must_exist: bool = False) -> None:
        self.path = str(path)
        self.synchronous = synchronous
        self.must_exist = must_exist
        self._writer: _ConnectionThread | None = None
        self._checkpointer: _ConnectionThread | None = None
        self._checkpointing: asyncio.Task[None] | None = None
        self._commits_unchecked = 0
        self._readers: asyncio.Queue[tuple[_ConnectionThread, SqliteTransaction]] = asyncio.Queue()
        self._threads: list[_ConnectionThread] = []
        self._loop_reader: sqlite3.Connection | None = None
        self._loop_tx: SqliteTransaction | None = None
        self._snapshot_generation = -1  # the generation when the loop snapshot was taken
        self._snapshot_ends = False  # its end is scheduled
        self._snapshot_stamp: int | None = None  # its PRAGMA data_version, once read
        self._pending: list[tuple[Body[Any], asyncio.Future[Any]]] = []
        self._committing: asyncio.Task[None] | None = None
        # Odd while a commit is under way, and one more after it: a read that sees the same even value
        # before its snapshot as an earlier read did saw the same data (app/domain/paging.py caches on it).
        self._generation = 0

    @property
    def location(self) -> str:
        return self.path

    @property
    def generation(self) -> int:
        return self._generation

    async def open(self) -> None:
        """Open the file, creating it (0600) unless `must_exist`, and bring its schema up to date."""
        self._create_file()
        try:
            self._writer = _ConnectionThread("rollcall-sqlite-writer")
            self._threads.append(self._writer)
            writer = await self._writer.open(self.path, self.synchronous)
            await self._writer.run(_pragma, writer, "journal_mode = WAL")
            await self._writer.run(migrate, writer)
            await self._writer.run(_pragma, writer, f"wal_autocheckpoint = {BACKSTOP_CHECKPOINT_PAGES}")
            self._checkpointer = _ConnectionThread("rollcall-sqlite-checkpoint")
            self._threads.append(self._checkpointer)
            await self._checkpointer.open(self.path, self.synchronous)
            for number in range(1, READ_CONNECTIONS + 1):
                thread = _ConnectionThread(f"rollcall-sqlite-reader-{number}")
                self._threads.append(thread)
                reader = await thread.open(self.path, self.synchronous)
                await thread.run(_pragma, reader, "query_only = ON")
                self._readers.put_nowait((thread, SqliteTransaction(reader)))
            self._loop_reader = _connect(self.path, self.synchronous)
            self._loop_reader.execute(f"PRAGMA busy_timeout = {LOOP_BUSY_TIMEOUT_MS}")
            _pragma(self._loop_reader, "query_only = ON")
            self._loop_tx = SqliteTransaction(self._loop_reader)
        except BaseException as error:
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

    async def close(self, optimize: bool = True) -> None:
        if self._checkpointing is not None:
            await self._checkpointing
        self._checkpointer = None
        if self._loop_reader is not None:
            self._loop_reader.close()  # ends the loop snapshot, if one is open
            self._loop_reader = None
            self._loop_tx = None
        while not self._readers.empty():
            self._readers.get_nowait()
        writer, threads, self._threads = self._writer, self._threads, []
        self._writer = None
        if writer is not None and writer.conn is not None and optimize:
            await writer.run(_pragma, writer.conn, "optimize")
        for thread in threads:
            await thread.close()

    async def write(self, body: Body[T]) -> T:
        """Run `body` as one write transaction: it commits whole, or (if it raises) not at all, and this
        returns only after the commit. Writes run one after another, in the order they were asked for.

        Writes that arrive while a commit is under way are committed together (group commit): each runs
        in a savepoint of its own, so one that raises is undone alone, and the batch shares one BEGIN,
        one COMMIT and one thread hop, which is most of a small write's cost."""
        assert self._writer is not None, "SqliteStorage.open() was not called"
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((body, future))
        if self._committing is None:
            self._committing = asyncio.create_task(self._commit_pending())
        return await future

    async def _commit_pending(self) -> None:
        writer = self._writer
        assert writer is not None and writer.conn is not None
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_GROUP_COMMIT], self._pending[MAX_GROUP_COMMIT:]
                self._generation += 1
                try:
                    outcomes = await writer.run(_commit_together, writer.conn, [body for body, _ in batch])
                except BaseException as error:  # the COMMIT itself failed: nothing in the batch happened
                    self._generation += 1
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    if not isinstance(error, Exception):
                        raise
                    continue
                self._generation += 1
                for (_, future), (failed, value) in zip(batch, outcomes, strict=True):
                    _settle(future, failed, value)
                self._commits_unchecked += 1
                if self._commits_unchecked >= CHECKPOINT_COMMITS and self._checkpointing is None:
                    self._commits_unchecked = 0
                    self._checkpointing = asyncio.create_task(self._checkpoint())
        finally:
            self._committing = None

    async def _checkpoint(self) -> None:
        checkpointer = self._checkpointer
        try:
            if checkpointer is not None and checkpointer.conn is not None:
                await checkpointer.run(_checkpoint, checkpointer.conn)
        except Exception:  # the next one, or the writer's own at the backstop, tries again
            log.warning("checkpoint of %s failed", self.path, exc_info=True)
        finally:
            self._checkpointing = None

    async def read(self, body: Body[T]) -> T:
        """Run `body` as one read transaction: every query in it sees the same snapshot."""
        thread, tx = await self._readers.get()
        try:
            return await thread.run(_in_transaction, tx.connection, tx, body)
        finally:
            self._readers.put_nowait((thread, tx))

    async def lookup(self, body: Body[T]) -> T:
        """Run `body`, a read that an index answers at once, as one read transaction on the event loop's
        own connection (see the module docstring); if SQLite is busy, on a reader thread instead."""
        try:
            return body(self._loop_snapshot())
        except sqlite3.OperationalError as error:
            if not _is_busy(error):
                raise
            self._end_loop_snapshot()
            return await self.read(body)

    def change_stamp(self) -> Hashable:
        """The event loop's connection's PRAGMA data_version, read on its own (no BEGIN/COMMIT around it): SQLite
        promises it changes when another connection commits (the writer's commits are another connection's).
        While the file is busy it vouches for nothing.

        Read once per loop snapshot: inside a read transaction the value is that of the snapshot, and the requests
        of one busy turn share both."""
        try:
            tx = self._loop_snapshot()
            if self._snapshot_stamp is None:
                self._snapshot_stamp = tx.connection.execute("PRAGMA data_version").fetchone()[0]
            return self._snapshot_stamp
        except sqlite3.OperationalError as error:
            if not _is_busy(error):
                raise
            self._end_loop_snapshot()
            return object()

    async def search(self, body: Body[T], queries: Sequence[SearchQuery]) -> T:
        """Run `body` on the event loop when SQLite's plan for every one of `queries` reaches rows by equality on
        unique keys only (the identity provider's `userName eq` lookup, a resource by id), in the very
        transaction that asked for the plans; anything that may walk a table runs on a reader thread, so the
        event loop keeps serving while it does."""
        try:
            tx = self._loop_snapshot()
            point = all(is_point_search(tx.connection, query) for query in queries)
            result = body(tx) if point else None
        except sqlite3.OperationalError as error:
            if not _is_busy(error):
                raise
            self._end_loop_snapshot()
            point = False
        if point:
            return result  # type: ignore[return-value]  # set whenever point is True
        return await self.read(body)

    def _loop_snapshot(self) -> SqliteTransaction:
        """The event loop's connection, in this turn's loop snapshot (the module docstring): begun here if there is
        none, or if this process has begun or finished a commit since it was taken, and ended on the next turn."""
        tx = self._loop_tx
        assert tx is not None, "SqliteStorage.open() was not called"
        conn = tx.connection
        if conn.in_transaction:
            if self._snapshot_generation == self._generation:
                return tx
            conn.execute("ROLLBACK")
        # Deferred: the snapshot is taken by the first query, which follows at once (no await in between).
        conn.execute("BEGIN")
        self._snapshot_stamp = None
        self._snapshot_generation = self._generation
        if not self._snapshot_ends:
            self._snapshot_ends = True
            asyncio.get_running_loop().call_soon(self._end_loop_snapshot)
        return tx

    def _end_loop_snapshot(self) -> None:
        """End the loop snapshot (ROLLBACK: it only read, and unlike COMMIT it cannot fail on a statement left
        unfinished), so that the next turn's lookups see what has been committed since."""
        self._snapshot_ends = False
        conn = self._loop_reader
        if conn is not None and conn.in_transaction:
            conn.execute("ROLLBACK")

    async def schema_version(self) -> int:
        return await self.read(lambda tx: schema_version(_connection(tx)))

    async def claim_endpoint(self, webhook_id: int) -> bool:
        return True  # one server per file (the serve lock): it delivers every endpoint's events

    async def release_endpoint(self, webhook_id: int) -> None:
        return None


def _is_busy(error: sqlite3.OperationalError) -> bool:
    # Extended codes (SQLITE_BUSY_SNAPSHOT, ...) carry the primary code in their low byte.
    return (error.sqlite_errorcode or 0) & 0xFF in _BUSY_CODES


def _connection(tx: Transaction) -> sqlite3.Connection:
    assert isinstance(tx, SqliteTransaction)
    return tx.connection
