"""SQL for the console's sessions and one-time sign-in links (migrations.py, version 5). Only hashes of their values
are stored; times are unix seconds."""

from __future__ import annotations

import sqlite3

from app.storage.records import StoredSession


def insert(conn: sqlite3.Connection, id_hash: str, token_name: str, now: float) -> None:
    conn.execute("INSERT INTO console_sessions (id_hash, token_name, created, last_seen) VALUES (?, ?, ?, ?)",
                 (id_hash, token_name, now, now))


def find(conn: sqlite3.Connection, id_hash: str, now_text: str) -> StoredSession | None:
    """The session with this hash, and whether its token is still live at `now_text` (utc_now's format)."""
    row = conn.execute(
        "SELECT s.token_name, s.created, s.last_seen, "
        "t.name IS NOT NULL AND t.revoked IS NULL AND (t.expires IS NULL OR t.expires > ?) "
        "FROM console_sessions s LEFT JOIN tokens t ON t.name = s.token_name WHERE s.id_hash = ?",
        (now_text, id_hash)).fetchone()
    return StoredSession(row[0], row[1], row[2], bool(row[3])) if row else None


def touch(conn: sqlite3.Connection, id_hash: str, now: float) -> None:
    conn.execute("UPDATE console_sessions SET last_seen = ? WHERE id_hash = ? AND last_seen < ?", (now, id_hash, now))


def delete(conn: sqlite3.Connection, id_hash: str) -> None:
    conn.execute("DELETE FROM console_sessions WHERE id_hash = ?", (id_hash,))


def delete_expired(conn: sqlite3.Connection, created_before: float, seen_before: float) -> int:
    """Drop the sessions past either limit, so the table holds only sessions that could still be used."""
    return conn.execute("DELETE FROM console_sessions WHERE created < ? OR last_seen < ?",
                        (created_before, seen_before)).rowcount


def insert_link(conn: sqlite3.Connection, code_hash: str, token_name: str, expires: float) -> None:
    conn.execute("INSERT INTO console_links (code_hash, token_name, expires) VALUES (?, ?, ?)",
                 (code_hash, token_name, expires))


def take_link(conn: sqlite3.Connection, code_hash: str, now: float) -> str | None:
    """Use up the link with this hash: the name of its token if it had not expired, else None. Either way it is
    gone, so a code works once."""
    row = conn.execute("DELETE FROM console_links WHERE code_hash = ? RETURNING token_name, expires",
                       (code_hash,)).fetchone()
    conn.execute("DELETE FROM console_links WHERE expires <= ?", (now,))
    return row[0] if row and row[1] > now else None
