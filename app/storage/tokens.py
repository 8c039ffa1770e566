"""SQL for bearer tokens. Only SHA-256 hashes are stored; see schema.sql."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


class TokenNameTaken(Exception):
    """A token (live or revoked) already has this name."""


@dataclass(frozen=True)
class TokenRecord:
    name: str
    created: str
    revoked: str | None


def insert(conn: sqlite3.Connection, name: str, token_hash: str, now: str) -> None:
    try:
        conn.execute("INSERT INTO tokens (name, hash, created) VALUES (?, ?, ?)", (name, token_hash, now))
    except sqlite3.IntegrityError as error:
        raise TokenNameTaken(name) from error


def find_live_hash(conn: sqlite3.Connection, token_hash: str) -> tuple[str, str] | None:
    """(name, stored hash) of the live token with this hash, if any."""
    row = conn.execute("SELECT name, hash FROM tokens WHERE hash = ? AND revoked IS NULL", (token_hash,)).fetchone()
    return (row[0], row[1]) if row else None


def list_all(conn: sqlite3.Connection) -> list[TokenRecord]:
    return [TokenRecord(row[0], row[1], row[2])
            for row in conn.execute("SELECT name, created, revoked FROM tokens ORDER BY created, name")]


def count_live(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM tokens WHERE revoked IS NULL").fetchone()[0]


def revoke(conn: sqlite3.Connection, name: str, now: str) -> bool:
    return conn.execute("UPDATE tokens SET revoked = ? WHERE name = ? AND revoked IS NULL", (now, name)).rowcount > 0
