"""What storage hands back and takes in, whatever the engine: plain frozen records, no connection, no SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

# -- resources ---------------------------------------------------------------------------------------

class StoredResource:
    """A resource as stored: its document, and, when it was read from a row, the document's JSON text as orjson
    wrote it (`document_json`), so that a list page can splice it into its answer unparsed
    (representation.PageFramer). A row's document is parsed only when something asks for it; either way
    the record is read-only, so the text and the document always say the same thing."""

    __slots__ = ("_document", "created", "document_json", "id", "last_modified", "version")

    def __init__(self, id: str, document: dict[str, Any] | None, created: str, last_modified: str, version: int,
                 document_json: bytes | None = None) -> None:
        if document is None and document_json is None:
            raise ValueError("a stored resource needs its document or its JSON text")
        self.id = id
        self._document = document
        self.document_json = document_json
        self.created = created
        self.last_modified = last_modified
        self.version = version

    @property
    def document(self) -> dict[str, Any]:
        if self._document is None:
            # Two threads parsing at once each get an equal dict; the record stays consistent either way.
            self._document = orjson.loads(self.document_json)  # type: ignore[arg-type]
        return self._document

    def _fields(self) -> tuple[Any, ...]:
        return self.id, self.document, self.created, self.last_modified, self.version

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoredResource) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable-looking contents (a dict), as the dataclass had

    def __repr__(self) -> str:
        return (f"StoredResource(id={self.id!r}, document={self.document!r}, created={self.created!r}, "
                f"last_modified={self.last_modified!r}, version={self.version!r})")


@dataclass(frozen=True)
class Membership:
    """A group a user is a member of, as User.groups lists it."""

    group_id: str
    display: str


@dataclass(frozen=True)
class Member:
    """A member of a group, as Group.members lists it."""

    user_id: str
    display: str  # the User's displayName, or its userName when it has none ('' unless asked for)


class Key(NamedTuple):
    """Where a row sits in a search's order: the engine's own row position (an integer that grows with insertion,
    unique per resource type) and, when the search is sorted, the row's sort value.

    A search's order is total: the sort value (absent values last either way, RFC 7644 §3.4.2.3), then the row
    position, so that a Key names one place in it and a page can continue from a Key by seeking (keyset paging)."""

    rowid: int
    value: Any = None
    # NamedTuples, not frozen dataclasses: a page makes a Key and a Found per row it reads, and a frozen
    # dataclass's __init__ (object.__setattr__ per field) cost ten times a tuple's (timeit: 2.6 us the pair).


class Found(NamedTuple):
    """A resource a search found, with its place in the search's order."""

    key: Key
    resource: StoredResource


@dataclass(frozen=True)
class GroupSummary:
    """A group as the console's Groups page lists it: its name and how many members it has."""

    group_id: str
    display: str
    members: int


# -- the roster and the change feed -------------------------------------------------------------------

@dataclass(frozen=True)
class RoleInputs:
    """What a user's role is derived from."""

    user_name: str
    active: bool
    group_names: list[str]


@dataclass(frozen=True)
class RosterEntry:
    user_id: str
    user_name: str
    role: str
    since: str


@dataclass(frozen=True)
class Event:
    type: str
    user_id: str | None = None
    group_id: str | None = None
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class MemberQuery:
    """Which members, in (folded userName, id) order: `role` only, `q` (folded) contained in the userName, the
    displayName or any e-mail, after the keyset position `after`, at most `limit` (None: all)."""

    role: str | None = None
    q: str | None = None
    after: tuple[str, str] | None = None
    limit: int | None = None


@dataclass(frozen=True)
class NamedUser:
    """A user an identity names, by userName or by one of their e-mails, with their roster role if any."""

    user_id: str
    user_name: str
    role: str | None
    by_user_name: bool


# -- holds -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Held:
    """One person a hold keeps on the roster."""

    hold_id: int
    user_id: str
    user_name: str
    role: str  # the role they keep while held
    becomes: str | None  # the role the held change gives them; None: they leave
    reason: str  # the reason their member.left will carry
    cause: str = ""  # the hold's cause, when read back
    outcome: str | None = None


@dataclass(frozen=True)
class Hold:
    id: int
    opened: str
    cause: str
    actor: str
    change: dict[str, Any]
    state: str
    closed: str | None
    closed_by: str | None
    count: int  # people still held (all of them while it is open)


@dataclass(frozen=True)
class Window:
    """The roster's joins and departures since the window's start, from the change feed."""

    joined: int
    left: int
    left_unapproved: int  # departures nobody approved: the ones a hold counts
    roster_now: int

    @property
    def members_at_start(self) -> int:
        return max(0, self.roster_now - self.joined + self.left)


# -- tokens ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TokenRecord:
    name: str
    scopes: str
    created: str
    expires: str | None
    last_used: str | None
    revoked: str | None
    previous_until: str | None  # while a rotated-out value still works


@dataclass(frozen=True)
class LiveHash:
    """What authenticating a hash needs: the token's name and scopes, and until when this value works."""

    name: str
    stored_hash: str
    scopes: str
    until: str | None  # None: until revoked


# -- webhooks ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Endpoint:
    id: int
    url: str
    patterns: list[str]
    description: str
    secret: str
    created: str
    cursor: int  # the seq of the last event handled (delivered, or skipped as not matching)
    state: str
    consecutive_failures: int
    failing_since: float | None
    retry_at: float | None
    revision: int


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt, as the worker reports it."""

    seq: int
    at: str
    status: int | None
    latency_ms: int
    error: str | None


# -- console sessions ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class StoredSession:
    """A console session by the hash of its cookie's value (times are unix seconds)."""

    token_name: str
    created: float
    last_seen: float
    token_live: bool  # the token that opened it is neither revoked nor expired
