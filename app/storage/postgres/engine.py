"""The PostgreSQL engine: the storage interface on a database that several rollcall instances share.

Driver: psycopg 3 (with psycopg_pool), not asyncpg. The interface's transaction bodies are synchronous and
re-runnable (SQLite's engine runs each whole on its writer thread: one hop per write, with group commit). psycopg's
synchronous API runs the same body on a thread of this engine's pool holding one connection: one hop onto a thread
per transaction, and no hop back onto the event loop per statement, which an asyncio driver would need for a body
that is not a coroutine.

Isolation: every write runs SERIALIZABLE, and is run again from the start on a serialization failure or a deadlock.
Serializable rather than READ COMMITTED with row locks because the guarantees are predicates over several rows
(exact membership under concurrent PATCHes, the roster and the feed derived from what the change read, the last
admin, uniqueness of a folded key checked and written): SSI makes each body behave as if it ran alone, on every
instance, with no lock list to keep right. Uniqueness itself is the unique indexes'. Reads run REPEATABLE READ
READ ONLY: one snapshot per read.

Contention: under SSI, row locks cannot turn conflicts into waits (SELECT ... FOR UPDATE of a row another write
changed after this one's snapshot is itself a serialization failure), and under many writers the same rows are hot
(a group's version moves with every member change; the mass-removal window reads the feed every departure
appends to), so retries that race each other can collide again and again (64 writers over two instances: about
3.7 bodies run again per request, and some writes ran out of retries). So writes take turns with the advisory lock
WRITE_TURNS. A first attempt (BESIDE) tries for it shared, inside its transaction, in the round trip of BEGIN and
its first statement: writes run side by side, as before, at no cost. An attempt after a conflict (ALONE) waits for
it exclusively before BEGIN, so before its snapshot: it waits for the writes under way to finish, reads what they
committed, and runs alone, so it cannot conflict again: at most two attempts per write among instances of this
version. A first attempt that began while one ran alone (its try fails; its snapshot may be older than that
write's commit) is rolled back and begun again once it holds the lock shared (WAITING), not counted as a conflict.
Correctness never rests on the lock (SSI still checks every attempt); it only orders the retries. A write still
conflicting after RETRY_SECONDS (with writers that do not take part: an older instance during a rolling upgrade)
is given up with `Contended` (nothing written; the web layer answers 503 with Retry-After), logged once at
WARNING.

Round trips: a transaction's BEGIN travels with its first statement, and the feed's lock with its rows (one
pipeline each); an update that keeps the unique key needs no savepoint. A PATCH of a user takes 12 round trips to
the server, where it took 20. Commit order: the feed's lock is held through COMMIT, and so through its WAL flush;
on this machine a flush costs ~0.14 ms (pg_test_fsync) against 6-8 ms of CPU per write (rollcall's and the
server's, sharing one core in bench/), so the lock does not limit write throughput here; on slow storage it
would, and PostgreSQL's own group commit (commit_delay) would then help, but it is a superuser setting of the
server, not rollcall's to set.

Across instances: nothing is cached per process that another instance's commit could make stale: change_stamp()
never repeats (so a revoked token is refused on the next request everywhere), and `generation` stays odd (the
paging hint cache is off). Events commit in seq order (an advisory lock taken by each append, held to its commit),
so a webhook cursor never skips an event that committed late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
from psycopg.types.json import set_json_loads
from psycopg_pool import ConnectionPool

from app.protocol.resolved import SearchQuery
from app.storage.errors import Contended, DatabaseError, NoDatabase
from app.storage.postgres import migrations
from app.storage.postgres.transaction import RETRYABLE, Conflict, NotYourTurn, Tx

T = TypeVar("T")
log = logging.getLogger("rollcall.storage")

POOL_SIZE = 8
# List searches built at once, on threads of their own: as many as SQLite's reader threads (see search()).
SEARCHES_AT_ONCE = 2
# The first key of the webhook endpoints' advisory locks (the second is the endpoint's id): "whk".
WEBHOOK_LOCKS = 0x77686B
# The advisory lock by which writes take turns (the module docstring, _taking_turn): "rollwrit".
WRITE_TURNS = 0x726F6C6C77726974
# How a write attempt takes its turn (see the module docstring and _taking_turn).
BESIDE = "beside"  # a first attempt: WRITE_TURNS shared, if free of a write alone, else it waits (WAITING)
WAITING = "waiting"  # WRITE_TURNS shared, waited for before BEGIN
ALONE = "alone"  # after a conflict: WRITE_TURNS exclusive, waited for before BEGIN
NOT_YOUR_TURN = (NotYourTurn.SQLSTATE, NotYourTurn.STATEMENT)
# How long a write may keep colliding with concurrent ones before it is given up (Contended, a 503): by time, not
# by a count of attempts, since one attempt under load may take 1 ms or 100 ms. Well below a client's timeout.
RETRY_SECONDS = 5.0
CONNECT_TIMEOUT_S = 10


def redact(url: str) -> str:
    """The URL without its password (or any secret in the user part), fit for a log or an error."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://(unparseable URL)"
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{user}@{host}" if user else host
    query = "&".join(p for p in parts.query.split("&") if p and not p.lower().startswith("password="))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def driver_report() -> str:
    """What `rollcall check` says of the PostgreSQL driver: psycopg's version and the libpq it runs on."""
    return f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__}, libpq {psycopg.pq.version()})"


def _configure(conn: psycopg.Connection) -> None:
    set_json_loads(orjson.loads, conn)


class PostgresStorage:
    """A connection pool to one PostgreSQL database, running each body whole on one of its connections."""

    def __init__(self, url: str, *, must_exist: bool = False, pool_size: int = POOL_SIZE,
                 retry_seconds: float | None = None) -> None:
        self._url = url
        self.must_exist = must_exist
        self.pool_size = pool_size
        self.retry_seconds = RETRY_SECONDS if retry_seconds is None else retry_seconds
        self._pool: ConnectionPool | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._search_threads: ThreadPoolExecutor | None = None
        self.retries = 0  # bodies run again after a conflict, for tests and diagnostics
        self.most_attempts = 0  # the most attempts one write took to commit, likewise
        # What conflicted, for tests and diagnostics: (SQLSTATE, the statement's fixed text, no values) -> count.
        self.conflicts: Counter[tuple[str, str]] = Counter()
        # Webhook endpoints this instance delivers for: session advisory locks on one connection of their own, so
        # that they last across transactions and vanish with the connection if this process dies.
        self._claims: psycopg.Connection | None = None
        self._claimed: set[int] = set()
        self._claims_lock = threading.Lock()

    @property
    def location(self) -> str:
        return redact(self._url)

    @property
    def generation(self) -> int:
        return 1  # other instances commit unseen: never promise that nothing changed

    async def open(self) -> None:
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        try:
            with psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                if self.must_exist and migrations.schema_version(conn) == 0:
                    raise NoDatabase(self.location)
                migrations.migrate(conn)
        except psycopg.OperationalError as error:
            raise DatabaseError(f"Cannot connect to {self.location}: {_first_line(error)}") from None
        self._pool = ConnectionPool(self._url, min_size=1, max_size=self.pool_size, open=False,
                                    kwargs={"autocommit": True}, configure=_configure, name="rollcall")
        self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        self._threads = ThreadPoolExecutor(max_workers=self.pool_size, thread_name_prefix="rollcall-pg")
        self._search_threads = ThreadPoolExecutor(max_workers=SEARCHES_AT_ONCE, thread_name_prefix="rollcall-pg-list")

    async def close(self) -> None:
        await asyncio.to_thread(self._drop_claims)
        pool, executors = self._pool, (self._threads, self._search_threads)
        self._pool = self._threads = self._search_threads = None
        for threads in executors:
            if threads is not None:
                threads.shutdown(wait=True)
        if pool is not None:
            await asyncio.to_thread(pool.close)

    async def write(self, body: Callable[[Tx], T]) -> T:
        return await self._on_thread(self._run, body, True)

    async def read(self, body: Callable[[Tx], T]) -> T:
        return await self._on_thread(self._run, body, False)

    async def lookup(self, body: Callable[[Tx], T]) -> T:
        return await self.read(body)

    def change_stamp(self) -> Hashable:
        # Other instances commit without this one knowing: no two stamps are ever equal, so nothing is cached
        # past a commit made elsewhere (a revoked token is refused on the next request on every instance).
        return object()

    async def search(self, body: Callable[[Tx], T], queries: Sequence[SearchQuery]) -> T:
        # A list page is built (rows read, rendered, encoded) on the thread that reads it, up to its byte budget
        # several times over in memory. On threads of their own, as few as SQLite's readers: with the GIL more
        # would add no speed, and every thread that ever built a large page keeps a malloc arena of that size.
        assert self._search_threads is not None, "PostgresStorage.open() was not called"
        return await asyncio.get_running_loop().run_in_executor(self._search_threads, self._run, body, False)

    async def schema_version(self) -> int:
        return await self.read(lambda tx: migrations.schema_version(tx.conn))

    async def claim_endpoint(self, webhook_id: int) -> bool:
        """Whether this instance may deliver the endpoint's events now: True while it holds the endpoint's advisory
        lock (taken here if free), False while another instance does. Checked before each delivery, so that an
        instance that lost its lock connection stops at once and another takes over, in order, from the cursor."""
        return await asyncio.to_thread(self._claim, webhook_id)

    async def release_endpoint(self, webhook_id: int) -> None:
        await asyncio.to_thread(self._release, webhook_id)

    def _claim(self, webhook_id: int) -> bool:
        with self._claims_lock:
            try:
                if self._claims is None or self._claims.closed:
                    self._claimed.clear()
                    self._claims = psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
                if webhook_id in self._claimed:
                    self._claims.execute("SELECT 1")  # the connection, and so the lock, is still there
                    return True
                row = self._claims.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                           (WEBHOOK_LOCKS, webhook_id)).fetchone()
            except psycopg.OperationalError:
                self._drop_claims_locked()
                return False
            if row and row[0]:
                self._claimed.add(webhook_id)
                return True
            return False

    def _release(self, webhook_id: int) -> None:
        with self._claims_lock:
            if webhook_id not in self._claimed or self._claims is None:
                return
            self._claimed.discard(webhook_id)
            try:
                self._claims.execute("SELECT pg_advisory_unlock(%s, %s)", (WEBHOOK_LOCKS, webhook_id))
            except psycopg.OperationalError:
                self._drop_claims_locked()

    def _drop_claims(self) -> None:
        with self._claims_lock:
            self._drop_claims_locked()

    def _drop_claims_locked(self) -> None:
        self._claimed.clear()
        if self._claims is not None:
            # A closed connection's locks go when its backend exits, a moment later; a clean stop lets go at once.
            with contextlib.suppress(psycopg.Error):
                self._claims.execute("SELECT pg_advisory_unlock_all()")
            self._claims.close()
            self._claims = None

    async def _on_thread(self, function: Callable[..., T], *args: Any) -> T:
        assert self._threads is not None, "PostgresStorage.open() was not called"
        return await asyncio.get_running_loop().run_in_executor(self._threads, function, *args)

    def _run(self, body: Callable[[Tx], T], writes: bool) -> T:
        assert self._pool is not None
        started = time.monotonic()
        turn = BESIDE if writes else None
        with self._pool.connection() as conn:
            attempt = 0
            while True:
                attempt += 1
                with _taking_turn(conn, turn):
                    tx = Tx(conn, "BEGIN ISOLATION LEVEL SERIALIZABLE" if writes else
                            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", WRITE_TURNS if turn == BESIDE else None)
                    try:
                        result = body(tx)
                        if not tx.doomed:
                            tx.commit()
                            self.most_attempts = max(self.most_attempts, attempt)
                            return result
                        where = tx.conflicted or ("?", "(swallowed by the body)")
                    except Conflict as conflict:
                        where = (conflict.sqlstate, conflict.statement)
                    except RETRYABLE as error:  # at COMMIT
                        where = (error.sqlstate or "?", "COMMIT")
                    except BaseException:
                        _rollback(conn)
                        if not tx.doomed:
                            raise
                        where = tx.conflicted or ("?", "(swallowed by the body)")
                    _rollback(conn)
                if where == NOT_YOUR_TURN:
                    turn, attempt = WAITING, attempt - 1  # not a conflict: it has not run yet
                    continue
                self.conflicts[where] += 1
                elapsed = time.monotonic() - started
                if elapsed >= self.retry_seconds:
                    # SQLSTATE and the statement's fixed text only: never a value, so never a token byte.
                    log.warning("a write transaction was given up after %d attempts over %.1f s, each colliding "
                                "with concurrent ones (the last: SQLSTATE %s at %s)", attempt, elapsed, *where)
                    raise Contended(attempt, elapsed)
                self.retries += 1
                if turn == ALONE:
                    # Alone and still conflicting: with a write outside this turn-taking (an older rollcall during
                    # a rolling upgrade). Spread the retries out so that they do not collide again in lock step.
                    time.sleep(random.uniform(0, min(0.05, 0.001 * 2 ** min(attempt, 6))))
                turn = ALONE if writes else None


@contextlib.contextmanager
def _taking_turn(conn: psycopg.Connection, turn: str | None) -> Iterator[None]:
    """WAITING or ALONE: hold WRITE_TURNS, shared or exclusive, around one attempt of a write. Taken before BEGIN,
    so before the transaction's snapshot: the attempt waits for the writes that hold it in the other mode to
    finish, and then reads what they committed. Session-level, so that it lasts through COMMIT (and goes with the
    connection if that is lost). BESIDE tries for it inside the transaction instead (Tx), with no round trip."""
    if turn not in (WAITING, ALONE):
        yield
        return
    mode = "_shared" if turn == WAITING else ""
    conn.execute(f"SELECT pg_advisory_lock{mode}(%s)", (WRITE_TURNS,))
    try:
        yield
    finally:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.execute(f"SELECT pg_advisory_unlock{mode}(%s)", (WRITE_TURNS,))
        else:
            conn.close()  # the lock must never outlive its attempt (it would stop every write): closing drops it


def _rollback(conn: psycopg.Connection) -> None:
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.execute("ROLLBACK")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
