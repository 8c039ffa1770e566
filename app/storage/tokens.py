"""SQL for bearer tokens. Only SHA-256 hashes are stored; see schema.sql."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import aiosqlite


class TokenNameTaken(Exception):
    """A token (live or revoked) already has this name."""


@dataclass(frozen=True)
class TokenRecord:
    name: str
    created: str
    revoked: str | None


async def insert(conn: aiosqlite.Connection, name: str, token_hash: str, now: str) -> None:
    try:
        await conn.execute("INSERT INTO tokens (name, hash, created) VALUES (?, ?, ?)", (name, token_hash, now))
    except sqlite3.IntegrityError as error:
        raise TokenNameTaken(name) from error


async def find_live_hash(conn: aiosqlite.Connection, token_hash: str) -> tuple[str, str] | None:
    """(name, stored hash) of the live token with this hash, if any."""
    async with conn.execute(
        "SELECT name, hash FROM tokens WHERE hash = ? AND revoked IS NULL", (token_hash,)
    ) as cursor:
        row = await cursor.fetchone()
    return (row[0], row[1]) if row else None


async def list_all(conn: aiosqlite.Connection) -> list[TokenRecord]:
    async with conn.execute("SELECT name, created, revoked FROM tokens ORDER BY created, name") as cursor:
        return [TokenRecord(row[0], row[1], row[2]) async for row in cursor]


async def count_live(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT count(*) FROM tokens WHERE revoked IS NULL") as cursor:
        return (await cursor.fetchone())[0]


async def revoke(conn: aiosqlite.Connection, name: str, now: str) -> bool:
    cursor = await conn.execute("UPDATE tokens SET revoked = ? WHERE name = ? AND revoked IS NULL", (now, name))
    return cursor.rowcount > 0
