"""The SQLite schema: schema.sql for a new file, then numbered steps, each applied atomically.

Version 1 is schema.sql itself, applied to an empty file; each later version is a step in MIGRATIONS, applied to
every file below it (a new file included), so each statement of the schema is written once. A release appends
(N, "ALTER TABLE ...") and bumps app/storage/schema_version.py (every engine numbers its steps the same way).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from app.storage.errors import DatabaseError
from app.storage.schema_version import SCHEMA_VERSION, read_schema_file


def schema_sql() -> str:
    """The text of schema.sql."""
    return read_schema_file("schema.sql")



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
# point lookup (kept in step by resources.py on every write of a user). Existing tokens get the scopes every
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
# an index of the roster by role, for the console's members page at 100,000 members. PostgreSQL's step 5 is the same
# (app/storage/postgres/migrations.py).
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
-- The members search (?q=): each user's folded userName, displayName and e-mails joined by U+001F
-- (app/storage/search_key.py, which writes it from now on), copied onto their roster entry; the roster's order with
-- it and the role, so a search walks one index alone, tests one column per entry and stops at a page's end.
ALTER TABLE users ADD COLUMN search_key TEXT NOT NULL DEFAULT '';
UPDATE users SET search_key = scim_fold(user_name) || char(31) || scim_fold(coalesce(display_name, ''))
    || coalesce((SELECT group_concat(char(31) || scim_fold(json_extract(e.value, '$.value')), '')
                 FROM json_each(users.doc, '$.emails') e WHERE json_type(e.value, '$.value') = 'text'), '');
ALTER TABLE roster ADD COLUMN search_key TEXT NOT NULL DEFAULT '';
UPDATE roster SET search_key = coalesce((SELECT u.search_key FROM users u WHERE u.id = roster.user_id), user_name_key);
CREATE INDEX roster_search ON roster (user_name_key, user_id, role, search_key);
"""
MIGRATIONS: tuple[tuple[int, str], ...] = ((2, _HOLDS), (3, _TOKEN_SCOPES_AND_EMAILS), (4, _WEBHOOKS_STEP),
                                           (5, _CONSOLE_SESSIONS))


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


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



async def upgrade(path: str | Path) -> tuple[int, int, Path | None] | None:
    """Apply pending schema upgrades to the file at `path`, backing it up first.
    Returns (version before, after, backup file), or None when there was nothing to do."""
    from app.storage.sqlite.backup import backup
    from app.storage.sqlite.engine import SqliteStorage

    pending = pending_migration(path)
    if pending is None:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    copy = Path(f"{path}.v{pending[0]}-{stamp}.backup")
    backup(path, copy)
    storage = SqliteStorage(path)
    await storage.open()  # open() migrates
    await storage.close()
    return pending[0], pending[1], copy
