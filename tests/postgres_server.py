"""A real PostgreSQL server for the tests, started by the test setup itself (no server is assumed to be running).

tests/postgres_cluster.py makes a throw-away cluster (initdb, pg_ctl on a free loopback port), once per test
session and only when a test asks for PostgreSQL. Each test gets a fresh database, copied with
`CREATE DATABASE ... TEMPLATE` from one that was migrated once, which takes milliseconds where migrating would
take far longer. initdb refuses to run as root: as root the cluster belongs to the `postgres` user, who runs it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.postgres_cluster import PostgresServer, postgres_bin, start_server, stop_server

__all__ = ["PostgresServer", "postgres_bin", "postgres_server", "postgres_url"]

# Fast and throw-away: a crash loses a test cluster, never data anyone keeps. (The benchmark starts its cluster
# durable, as rollcall's users run it.)
_SERVER_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=300",
                    "shared_buffers=64MB")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL cluster, started on first use and stopped when the session ends."""
    server = start_server(_SERVER_SETTINGS)
    try:
        server.template = _migrated_template(server)
        yield server
    finally:
        stop_server(server)


def _migrated_template(server: PostgresServer) -> str:
    """A database at the current schema version, for CREATE DATABASE ... TEMPLATE to copy for each test."""
    import psycopg

    from app.storage.postgres.migrations import migrate

    name = "rollcall_template"
    server.admin_sql(f"CREATE DATABASE {name}")
    with psycopg.connect(server.url(name), autocommit=True) as conn:
        migrate(conn)
    return name


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database of its own for one test, already at the current schema version.

    It is dropped when the next test starts, not when this one ends: fixtures are torn down in the reverse order
    of their set-up, so an app a test started may still be closing its connections when this fixture's teardown
    runs, and dropping the database under it would only make its pool complain."""
    for finished in postgres_server.finished:
        postgres_server.drop_database(finished)
    postgres_server.finished.clear()
    url = postgres_server.new_database()
    try:
        yield url
    finally:
        postgres_server.finished.append(url)


def wait_until_a_write_waits_for_a_lock(url: str, seconds: float = 10) -> None:
    """Until some backend of the URL's database waits for a lock: the write under test, on a row another
    connection holds."""
    with psycopg.connect(url, autocommit=True) as watcher:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            row = watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                  "AND wait_event_type = 'Lock'").fetchone()
            if row and row[0] > 0:
                return
            time.sleep(0.01)
    raise AssertionError("the write never waited for the held row")
