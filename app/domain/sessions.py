"""The console's sign-in sessions: opened with an admin token, kept server-side as a hash, ended by sign-out, by
8 hours idle, by 24 hours in all, or by the revocation (or expiry) of the token that opened them.

A session's value lives only in the browser's cookie; the database holds its SHA-256, so a copy of the database
signs nobody in. The per-session CSRF token is derived from the value (an HMAC), so it needs no storage and
cannot be turned back into the value; the same goes for the login CSRF token and the pre-session cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from app.domain.clock import Clock, format_time
from app.storage.interface import Storage, Transaction

IDLE_SECONDS = 8 * 3600
ABSOLUTE_SECONDS = 24 * 3600
# A session's last use is written at most this often: the idle limit is hours, a minute's slack changes nothing.
TOUCH_EVERY_SECONDS = 60.0
# How long a one-time sign-in link works (`rollcall demo` prints one).
LINK_SECONDS = 15 * 60
# What a cookie or code of ours can be (secrets.token_urlsafe); anything else is refused before it is hashed.
_MAX_VALUE = 128


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _presentable(value: str) -> bool:
    return 0 < len(value) <= _MAX_VALUE and value.isascii() and all(c.isalnum() or c in "-_" for c in value)


def csrf_for(secret: str, purpose: str) -> str:
    """The CSRF token that goes with a cookie's value: a page's forms carry it, and a POST must bring it back."""
    return hmac.new(secret.encode("utf-8"), purpose.encode("ascii"), hashlib.sha256).hexdigest()


def csrf_matches(secret: str, purpose: str, presented: str) -> bool:
    return presented.isascii() and hmac.compare_digest(csrf_for(secret, purpose), presented)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Session:
    """A live session: the token it was opened with, and the CSRF token its forms carry."""

    token_name: str
    csrf: str


class Sessions:
    """Opens, checks and ends console sessions, and trades one-time sign-in links for them. `clock` is injected
    so that tests can move past the idle and absolute limits. Sessions live in the database, not in this process:
    every instance on a shared database honours a session opened on another, and its end."""

    def __init__(self, db: Storage, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock

    async def open(self, token_name: str) -> str:
        """A new session for the token `token_name` (already checked to be a live admin token): its cookie value,
        which exists only in this answer. Sessions past their limits are dropped on the way."""
        value = new_secret()
        now = self.clock()

        def write(tx: Transaction) -> None:
            tx.sessions.delete_expired(now - ABSOLUTE_SECONDS, now - IDLE_SECONDS)
            tx.sessions.insert(_hash(value), token_name, now)

        await self.db.write(write)
        return value

    async def check(self, value: str, *, touch: bool = True) -> Session | None:
        """The live session whose cookie value is `value`, or None: unknown, past a limit, signed out, or opened
        with a token since revoked or expired. Checked on every request; one indexed lookup. `touch` False checks
        without counting as use (an open event stream is no one at the keyboard)."""
        if not _presentable(value):
            return None
        id_hash = _hash(value)
        now = self.clock()
        found = await self.db.lookup(lambda tx: tx.sessions.find(id_hash, format_time(now)))
        if found is None:
            return None
        if not found.token_live or now - found.created >= ABSOLUTE_SECONDS or now - found.last_seen >= IDLE_SECONDS:
            await self.db.write(lambda tx: tx.sessions.delete(id_hash))
            return None
        if touch and now - found.last_seen >= TOUCH_EVERY_SECONDS:
            await self.db.write(lambda tx: tx.sessions.touch(id_hash, now))
        return Session(found.token_name, csrf_for(value, "session"))

    async def end(self, value: str) -> None:
        if _presentable(value):
            id_hash = _hash(value)
            await self.db.write(lambda tx: tx.sessions.delete(id_hash))

    async def link(self, token_name: str) -> str:
        """A one-time sign-in code for `token_name`, good for LINK_SECONDS and for one use."""
        code = new_secret()
        expires = self.clock() + LINK_SECONDS
        await self.db.write(lambda tx: tx.sessions.insert_link(_hash(code), token_name, expires))
        return code

    async def redeem(self, code: str) -> str | None:
        """A new session's cookie value for a one-time code, or None if the code is unknown, used or expired (or
        its token is no longer live)."""
        if not _presentable(code):
            return None
        now = self.clock()
        token_name = await self.db.write(lambda tx: tx.sessions.take_link(_hash(code), now))
        if token_name is None:
            return None
        value = await self.open(token_name)
        if await self.check(value) is None:  # the token was revoked since the link was made
            return None
        return value
