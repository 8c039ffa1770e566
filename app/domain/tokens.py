"""Bearer tokens: minting, hashing and checking. The database only ever sees the hash."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from app.domain import scopes as scope_names
from app.domain.clock import utc_in, utc_now
from app.storage.errors import TokenNameTaken
from app.storage.interface import Storage
from app.storage.records import LiveHash, TokenRecord

log = logging.getLogger("rollcall.tokens")

TOKEN_PREFIX = "rc_"
# How often, at most, a token's last use is written to the database.
LAST_USED_EVERY_S = 60.0
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


@dataclass(frozen=True)
class Identity:
    """Who a request's token is: its name, its scopes."""

    name: str
    scopes: tuple[str, ...]


async def create_token(db: Storage, name: str, scopes: Sequence[str] = scope_names.DEFAULT_SCOPES,
                       expires_in: int | None = None) -> str:
    """Mint a token called `name` and return it; this is the only time it exists in clear."""
    check_name(name)
    token = new_token()
    expires = utc_in(expires_in) if expires_in is not None else None
    try:
        await db.write(lambda tx: tx.tokens.insert(name, hash_token(token), utc_now(), scope_names.encode(scopes),
                                                   expires))
    except TokenNameTaken:
        raise TokenError(f"A token named {name!r} already exists; pick another name.") from None
    return token


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def rotate_token(db: Storage, name: str, grace: int) -> str:
    """A new value for the live token `name`, same scopes and expiry; the old value works `grace` seconds more."""
    token = new_token()
    if not await db.write(lambda tx: tx.tokens.rotate(name, hash_token(token), utc_now(), utc_in(grace))):
        raise TokenError(f"No live token is named {name!r}; see `rollcall token list`.")
    return token


class Authenticator:
    """Checks bearer tokens, remembering the ones seen valid for as long as the storage's change stamp says
    nothing has been committed since (Storage.change_stamp; SQLite: PRAGMA data_version, on one connection).

    A revocation (by `rollcall token revoke`, another process, or any other write) is such a commit, so it
    takes effect on the very next request; meanwhile a request costs a PRAGMA outside any transaction instead of
    a query in one. The stamp is read before the lookup, so what a lookup found is remembered under a stamp no
    later than what it saw. An expiry
    (or the end of a rotated-out value's grace period) is no commit, so each remembered answer carries its own
    end and is checked against the clock on every request.

    When a token was last used is remembered here and written at most once a minute per token, in the
    background: a request never waits for it, and a busy token costs one small write a minute, not one each."""

    def __init__(self, db: Storage) -> None:
        self.db = db
        self._stamp: Hashable = None
        # hash -> the live token's record and the Identity it gives, made once rather than on every request
        self._known: dict[str, tuple[LiveHash, Identity]] = {}
        self._written: dict[str, float] = {}  # token name -> monotonic time its last use was last written
        self._writes: set[asyncio.Task[None]] = set()

    async def authenticate(self, presented: str) -> Identity | None:
        """Who the live token `presented` is, or None."""
        if not _PRESENTABLE.fullmatch(presented):
            return None
        presented_hash = hash_token(presented)
        stamp = self.db.change_stamp()
        if stamp != self._stamp:
            self._stamp, self._known = stamp, {}
        known = self._known.get(presented_hash)
        if known is None:
            now = utc_now()
            found = await self.db.lookup(lambda tx: tx.tokens.find_live_hash(presented_hash, now))
            if found is None:
                return None
            known = found, Identity(found.name, scope_names.decode(found.scopes))
            if stamp == self._stamp:  # no newer stamp arrived while it looked
                self._known[presented_hash] = known
        found, identity = known
        # The lookup matched on the hash already; compare again in constant time so no code path
        # depends on how much of a guess was right.
        if not hmac.compare_digest(found.stored_hash, presented_hash):
            return None
        # The clock is read only for a token that expires (most never do) and when its use is written.
        if found.until is not None and found.until <= utc_now():
            return None
        self._note_use(found.name)
        return identity

    def _note_use(self, name: str) -> None:
        moment = time.monotonic()
        written = self._written.get(name)
        if written is not None and moment - written < LAST_USED_EVERY_S:
            return
        self._written[name] = moment
        task = asyncio.get_running_loop().create_task(self._write_use(name, utc_now()))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write_use(self, name: str, now: str) -> None:
        try:
            await self.db.write(lambda tx: tx.tokens.record_use({name: now}))
        except Exception:  # a bookkeeping write that fails must not fail anything else; the next one retries
            self._written.pop(name, None)
            log.warning("could not record when token %r was last used", name, exc_info=True)

    async def flush(self) -> None:
        """Wait for the last-use writes under way (before the database closes)."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)


async def list_tokens(db: Storage) -> list[TokenRecord]:
    return await db.read(lambda tx: tx.tokens.list_all())


async def has_live_token(db: Storage) -> bool:
    return await db.read(lambda tx: tx.tokens.count_live(utc_now())) > 0


async def revoke_token(db: Storage, name: str) -> None:
    if not await db.write(lambda tx: tx.tokens.revoke(name, utc_now())):
        raise TokenError(f"No live token is named {name!r}; see `rollcall token list`.")
