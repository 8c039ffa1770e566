"""PostgreSQL's schema: schema.postgres.sql for an empty database, then numbered steps, each in its own transaction.

The database's version is the one row of `rollcall_schema`. Version 4 is where PostgreSQL starts (schema.postgres.sql
is SQLite's schema.sql with its steps 2-4 applied); a later release appends (5, "...") here as it does to SQLite's
MIGRATIONS, and the numbers stay the same on both engines. Several instances may start at once against one
database: a session-level advisory lock makes them migrate one after another, and the second finds nothing to do.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from app.storage.errors import DatabaseError
from app.storage.schema_version import SCHEMA_VERSION, read_schema_file

BASE_VERSION = 4
# Version 5, as SQLite's step 5: the console's sign-in sessions and one-time sign-in links (app/domain/sessions.py),
# hashes only, each naming the token that opened it (revoking it ends the session on every instance, since every
# instance checks the session here on each request); and the roster by role, for the console's members page.
_CONSOLE_SESSIONS = """
CREATE TABLE console_sessions (
    id_hash     TEXT PRIMARY KEY,          -- SHA-256 of the cookie's value
    token_name  TEXT NOT NULL,             -- the admin token signed in with
    created     DOUBLE PRECISION NOT NULL, -- unix time: the absolute limit counts from here
    last_seen   DOUBLE PRECISION NOT NULL  -- unix time: the idle limit counts from here
);
CREATE INDEX console_sessions_by_token ON console_sessions (token_name);
CREATE INDEX roster_by_role ON roster (role, user_name_key, user_id);
CREATE TABLE console_links (
    code_hash   TEXT PRIMARY KEY,          -- SHA-256 of the one-time code
    token_name  TEXT NOT NULL,
    expires     DOUBLE PRECISION NOT NULL  -- unix time
);
-- The members search, as SQLite's step 5: each user's folded userName, displayName and e-mails joined by U+001F
-- (app/storage/search_key.py writes it from now on; doc_folded holds the values folded by rollcall already),
-- copied onto their roster entry, and the roster's order with it.
ALTER TABLE users ADD COLUMN search_key TEXT NOT NULL DEFAULT '';
UPDATE users SET search_key = user_name_key || chr(31) || coalesce(doc_folded ->> 'displayName', '') || coalesce(
    (SELECT string_agg(chr(31) || (e.value ->> 'value'), '' ORDER BY e.n)
     FROM jsonb_array_elements(CASE WHEN jsonb_typeof(doc_folded -> 'emails') = 'array' THEN doc_folded -> 'emails'
     END) WITH ORDINALITY AS e (value, n) WHERE jsonb_typeof(e.value -> 'value') = 'string'), '');
ALTER TABLE roster ADD COLUMN search_key TEXT NOT NULL DEFAULT '';
UPDATE roster SET search_key = coalesce((SELECT u.search_key FROM users u WHERE u.id = roster.user_id),
                                        user_name_key);
-- Trigrams of each key (pg_trgm, a trusted extension in Debian's postgresql package): a term that matches few
-- people is found through them instead of by reading all 100,000 entries.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX roster_search_trigrams ON roster USING gin (search_key gin_trgm_ops);
"""
# Steps after BASE_VERSION, by the version they bring the database to, numbered as SQLite's are.
MIGRATIONS: tuple[tuple[int, str], ...] = ((5, _CONSOLE_SESSIONS),)
# pg_advisory_lock key held while migrating: "rollcall" in ASCII, so that nobody else's lock collides with it.
_MIGRATION_LOCK = 0x726F6C6C63616C6C


def schema_sql() -> str:
    """The text of schema.postgres.sql."""
    return read_schema_file("schema.postgres.sql")


def schema_version(conn: psycopg.Connection) -> int:
    exists = conn.execute("SELECT to_regclass('rollcall_schema') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = conn.execute("SELECT version FROM rollcall_schema").fetchone()
    return int(row[0]) if row else 0


def _apply(conn: psycopg.Connection, script: str, version: int, first: bool) -> None:
    """One step and the new version, committed together or not at all."""
    with conn.transaction():
        conn.execute(script.encode())  # a script of several statements: sent as one simple query
        if first:
            conn.execute("CREATE TABLE rollcall_schema (version INTEGER NOT NULL)")
            conn.execute("INSERT INTO rollcall_schema (version) VALUES (%s)", (version,))
        else:
            conn.execute("UPDATE rollcall_schema SET version = %s", (version,))


def migrate(conn: psycopg.Connection, migrations: Sequence[tuple[int, str]] | None = None,
            target: int | None = None) -> tuple[int, int]:
    """Bring the database to `target` (default SCHEMA_VERSION); returns (version before, after). `conn` must be in
    autocommit mode (each step is its own transaction). Refuses a database written by a newer rollcall."""
    migrations = MIGRATIONS if migrations is None else migrations
    target = SCHEMA_VERSION if target is None else target
    conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
    try:
        version = before = schema_version(conn)
        if version > target:
            raise DatabaseError(
                f"The database was written by a newer rollcall (schema version {version}; "
                f"this one understands up to {target}). Upgrade rollcall.")
        if version == 0:
            _apply(conn, schema_sql(), BASE_VERSION, first=True)
            version = BASE_VERSION
        for step, script in migrations:
            if version < step <= target:
                _apply(conn, script, step, first=False)
                version = step
        return before, version
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))


def pending_migration(url: str) -> tuple[int, int] | None:
    """(current, target) when the database at `url` holds data at an older schema version; else None."""
    from app.storage.postgres.engine import redact

    try:
        with psycopg.connect(url, autocommit=True) as conn:
            version = schema_version(conn)
    except psycopg.OperationalError as error:
        raise DatabaseError(f"Cannot connect to {redact(url)}: {str(error).strip().splitlines()[0]}") from None
    return (version, SCHEMA_VERSION) if 0 < version < SCHEMA_VERSION else None


async def upgrade(url: str) -> tuple[int, int, None] | None:
    """Apply pending steps (no file to back up: back PostgreSQL up with pg_dump first). (before, after, None)."""
    import asyncio

    def run() -> tuple[int, int, None] | None:
        if pending_migration(url) is None:
            return None
        with psycopg.connect(url, autocommit=True) as conn:
            before, after = migrate(conn)
        return before, after, None

    return await asyncio.to_thread(run)
