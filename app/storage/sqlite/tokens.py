"""SQL for bearer tokens. Only SHA-256 hashes are stored; see schema.sql and migrations.py."""

from __future__ import annotations

import sqlite3

from app.storage.errors import TokenNameTaken, UniquenessConflict
from app.storage.records import LiveHash, TokenRecord
from app.storage.sqlite.resources import integrity_error

_COLUMNS = "name, scopes, created, expires, last_used, revoked, previous_until"


def insert(conn: sqlite3.Connection, name: str, token_hash: str, now: str, scopes: str, expires: str | None
           ) -> None:
    try:
        conn.execute("INSERT INTO tokens (name, hash, created, scopes, expires) VALUES (?, ?, ?, ?, ?)",
                     (name, token_hash, now, scopes, expires))
    except sqlite3.IntegrityError as error:
        failure = integrity_error(error)
        raise (TokenNameTaken(name) if isinstance(failure, UniquenessConflict) else failure) from error


def find_live_hash(conn: sqlite3.Connection, token_hash: str, now: str) -> LiveHash | None:
    """The unrevoked token whose current value, or rotated-out value still in its grace period, has this hash.
    Expiry is checked here and again by the caller, which may remember the answer past `now`."""
    row = conn.execute(
        "SELECT name, hash, scopes, expires FROM tokens WHERE hash = ? AND revoked IS NULL "
        "AND (expires IS NULL OR expires > ?)", (token_hash, now)).fetchone()
    if row:
        return LiveHash(row[0], row[1], row[2], row[3])
    row = conn.execute(
        "SELECT name, previous_hash, scopes, expires, previous_until FROM tokens WHERE previous_hash = ? "
        "AND revoked IS NULL AND previous_until > ? AND (expires IS NULL OR expires > ?)",
        (token_hash, now, now)).fetchone()
    if row:
        return LiveHash(row[0], row[1], row[2], min(row[4], row[3]) if row[3] else row[4])
    return None


def get(conn: sqlite3.Connection, name: str) -> TokenRecord | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM tokens WHERE name = ?", (name,)).fetchone()
    return TokenRecord(*row) if row else None


def list_all(conn: sqlite3.Connection) -> list[TokenRecord]:
    return [TokenRecord(*row) for row in conn.execute(f"SELECT {_COLUMNS} FROM tokens ORDER BY created, name")]


def count_live(conn: sqlite3.Connection, now: str) -> int:
    return int(conn.execute("SELECT count(*) FROM tokens WHERE revoked IS NULL AND (expires IS NULL OR expires > ?)",
                            (now,)).fetchone()[0])


def revoke(conn: sqlite3.Connection, name: str, now: str) -> bool:
    return conn.execute("UPDATE tokens SET revoked = ? WHERE name = ? AND revoked IS NULL", (now, name)).rowcount > 0


def rotate(conn: sqlite3.Connection, name: str, new_hash: str, now: str, previous_until: str) -> bool:
    """Give the live token `name` a new hash; its current one keeps working until `previous_until`."""
    return conn.execute(
        "UPDATE tokens SET previous_hash = hash, previous_until = ?, hash = ? "
        "WHERE name = ? AND revoked IS NULL AND (expires IS NULL OR expires > ?)",
        (previous_until, new_hash, name, now)).rowcount > 0


def record_use(conn: sqlite3.Connection, used: dict[str, str]) -> None:
    """Remember when tokens were last used; never moves a time backwards."""
    conn.executemany("UPDATE tokens SET last_used = ? WHERE name = ? AND (last_used IS NULL OR last_used < ?)",
                     [(at, name, at) for name, at in used.items()])
