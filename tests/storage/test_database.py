"""SqliteStorage.lookup: a read on the event loop's connection that moves to a reader thread only when SQLite
is busy."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from app.protocol.schema_defs import USER_RESOURCE
from app.storage.factory import open_storage
from app.storage.interface import Storage, Transaction
from app.storage.sqlite import engine


# SQLite only: its event-loop fast path and busy codes (PostgreSQL runs every read on a pool thread).
@pytest.mark.engines("sqlite", reason="SQLITE_BUSY from a file held exclusively, and SQLite's reader threads")
@pytest.mark.parametrize("how", ["lookup", "search"])
async def test_a_busy_read_on_the_loop_is_run_again_on_a_reader_thread(database: Storage, tmp_path: Path,
                                                                      how: str) -> None:
    # A genuine SQLITE_BUSY, from a file another connection holds exclusively (WAL readers of our own file are
    # never blocked, so the busy error is borrowed from elsewhere).
    elsewhere = str(tmp_path / "elsewhere.db")
    blocker = sqlite3.connect(elsewhere, isolation_level=None)
    blocker.execute("CREATE TABLE t (x)")
    blocker.execute("BEGIN EXCLUSIVE")
    on_loop_thread: list[bool] = []

    def work(tx: Transaction) -> int:
        conn = tx.connection  # type: ignore[attr-defined]
        on_loop_thread.append(threading.current_thread() is threading.main_thread())
        if len(on_loop_thread) == 1:
            busy = sqlite3.connect(elsewhere, timeout=0)
            try:
                busy.execute("SELECT * FROM t")
            finally:
                busy.close()
        return int(conn.execute("SELECT count(*) FROM users").fetchone()[0])

    try:
        # A search with no query to plan is a point read: it starts on the loop, as a lookup does.
        answer = await (database.lookup(work) if how == "lookup" else database.search(work, []))
        assert answer == 0
    finally:
        blocker.close()
    assert on_loop_thread == [True, False]


# SQLite only: its event-loop fast path and busy codes (PostgreSQL runs every read on a pool thread).
@pytest.mark.engines("sqlite", reason="SQLite's error codes decide a retry on a reader thread")
async def test_other_sqlite_errors_are_raised_at_once_not_retried(database: Storage) -> None:
    # Whether an error means "busy" is decided by its code: a message that merely mentions "busy" or "locked"
    # (here a column name in SQLite's own "no such column") must not send the work to a second attempt.
    calls = 0

    def work(tx: Transaction) -> None:
        nonlocal calls
        calls += 1
        tx.connection.execute("SELECT busy, locked FROM users")  # type: ignore[attr-defined]

    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        await database.lookup(work)
    assert calls == 1


@pytest.mark.engines("sqlite", reason="SQLite's upgrade of a version-1 file; PostgreSQL starts at version 4")
async def test_a_version_1_file_is_upgraded_to_the_safety_nets_with_its_data(tmp_path: Path) -> None:
    from app.storage.schema_version import SCHEMA_VERSION
    from app.storage.sqlite.migrations import migrate, upgrade

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, (), target=1)  # the file a rollcall before the safety nets made
    conn.execute("INSERT INTO roster (user_id, user_name, role, since) VALUES ('u1', 'ann', 'admin', 't')")
    conn.execute("INSERT INTO events (at, type, actor, data) VALUES ('t', 'member.joined', 'x', '{}')")
    conn.close()
    upgraded = await upgrade(path)
    assert upgraded is not None and upgraded[:2] == (1, SCHEMA_VERSION)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT user_id, role FROM roster").fetchall() == [("u1", "admin")]
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_schema")}
        assert {"holds", "held", "held_now", "events_members_by_time"} <= names
    finally:
        conn.close()
    # A new file gets the same schema, by the same steps.
    fresh = tmp_path / "new.db"
    db = open_storage(fresh)
    await db.open()
    await db.close()
    def schema(p: Path) -> list[tuple[str, str]]:
        with sqlite3.connect(p) as c:
            return sorted(c.execute("SELECT name, sql FROM sqlite_schema WHERE sql IS NOT NULL").fetchall())
    assert schema(fresh) == schema(path)


async def test_a_write_that_raises_alone_or_among_others_is_undone_alone(database: Storage) -> None:
    # The SQLite writer runs a write that comes alone without a savepoint, and writes that queue together each in
    # one of their own (engine._commit_together): either way the one that raises leaves nothing, the rest commit.
    now = "2026-01-01T00:00:00.000000Z"

    def insert(user_id: str, fail: bool = False) -> Callable[[Transaction], None]:
        def body(tx: Transaction) -> None:
            tx.resources.insert(USER_RESOURCE, user_id, {"userName": user_id}, now)
            if fail:
                raise RuntimeError("changed my mind")
        return body

    with pytest.raises(RuntimeError):
        await database.write(insert("alone", fail=True))
    await database.write(insert("after"))
    outcomes = await asyncio.gather(*(database.write(insert(f"u{n}", fail=n == 2)) for n in range(5)),
                                    return_exceptions=True)
    assert [isinstance(o, RuntimeError) for o in outcomes] == [False, False, True, False, False]
    stored = await database.read(lambda tx: sorted(tx.roster.all_user_ids()))
    assert stored == ["after", "u0", "u1", "u3", "u4"]


@pytest.mark.engines("sqlite", reason="SQLite's write-ahead log and its checkpoints")
async def test_the_log_is_checkpointed_on_a_thread_of_its_own_not_in_a_commit(
        database: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "CHECKPOINT_COMMITS", 3)
    done: list[tuple[str, tuple[int, int, int]]] = []

    def checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int]:
        done.append((threading.current_thread().name, real(conn)))
        return done[-1][1]

    real = engine._checkpoint
    monkeypatch.setattr(engine, "_checkpoint", checkpoint)

    def insert(number: int) -> Callable[[Transaction], object]:
        return lambda tx: tx.resources.insert(USER_RESOURCE, f"u{number}", {"userName": f"user{number}"}, "now")

    for number in range(2):
        await database.write(insert(number))
    assert done == []
    await database.write(insert(2))
    for _ in range(200):
        if done:
            break
        await asyncio.sleep(0.01)
    (thread, (busy, pages, copied)), = done
    assert thread == "rollcall-sqlite-checkpoint"
    assert busy == 0 and pages > 0 and copied == pages  # the three commits' pages, all in the file now
    # SQLite's own checkpoint in the writer's commits is only the backstop.
    autocheckpoint = await database.write(lambda tx: tx.connection.execute(  # type: ignore[attr-defined]
        "PRAGMA wal_autocheckpoint").fetchone()[0])
    assert autocheckpoint == engine.BACKSTOP_CHECKPOINT_PAGES
