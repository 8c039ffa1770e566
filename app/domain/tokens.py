"""Bearer tokens: minting, hashing and checking. The database only ever sees the hash."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3

from app.domain.clock import utc_now
from app.storage import tokens as token_store
from app.storage.database import Database

TOKEN_PREFIX = "rc_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# What a bearer token can be (RFC 6750 §2.1 b64token); ours are TOKEN_PREFIX + URL-safe base64, well inside it.
# Anything else (a non-ASCII byte, a space) is no token of ours, and is refused before it is hashed.
_PRESENTABLE = re.compile(r"[A-Za-z0-9._~+/-]{1,512}=*")


class TokenError(Exception):
    """A token command that cannot be carried out; the message says why."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> None:
    """Refuse a name that `create_token` would refuse, so a caller can check before it opens or prints anything."""
    if not _NAME.fullmatch(name):
        raise TokenError(f"Invalid token name {name!r}: use 1-64 letters, digits, '.', '_' or '-'.")


async def create_token(db: Database, name: str) -> str:
    """Mint a token called `name` and return it; this is the only time it exists in clear."""
    check_name(name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        await db.write(lambda conn: token_store.insert(conn, name, hash_token(token), utc_now()))
    except token_store.TokenNameTaken:
        raise TokenError(f"A token named {name!r} already exists; pick another name.") from None
    return token


class Authenticator:
    """Checks bearer tokens, remembering the ones seen valid for as long as SQLite's data_version says
    no other connection has committed since.

    A revocation (by `rollcall token revoke`, another process, or any other write) is such a commit, so it
    takes effect on the very next request; meanwhile a request costs a PRAGMA instead of a query."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._version: int | None = None
        self._names: dict[str, str] = {}

    async def authenticate(self, presented: str) -> str | None:
        """The name of the live token `presented` is, or None."""
        if not _PRESENTABLE.fullmatch(presented):
            return None
        presented_hash = hash_token(presented)
        found = await self.db.lookup(lambda conn: self._check(conn, presented_hash))
        if found is None:
            return None
        name, stored_hash = found
        # The lookup matched on the hash already; compare again in constant time so no code path
        # depends on how much of a guess was right.
        return name if hmac.compare_digest(stored_hash, presented_hash) else None

    def _check(self, conn: sqlite3.Connection, presented_hash: str) -> tuple[str, str] | None:
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._version, self._names = version, {}
        name = self._names.get(presented_hash)
        if name is not None:
            return name, presented_hash
        found = token_store.find_live_hash(conn, presented_hash)
        if found is not None:
            self._names[presented_hash] = found[0]
        return found


async def list_tokens(db: Database) -> list[token_store.TokenRecord]:
    return await db.read(token_store.list_all)


async def has_live_token(db: Database) -> bool:
    return await db.read(token_store.count_live) > 0


async def revoke_token(db: Database, name: str) -> None:
    if not await db.write(lambda conn: token_store.revoke(conn, name, utc_now())):
        raise TokenError(f"No live token is named {name!r}; see `rollcall token list`.")
