"""The storage interface: what the domain asks of a database, whatever the engine behind it.

The domain never sees a connection or SQL. It hands the engine a *body*, a plain synchronous function of a
`Transaction`, and the engine runs it whole as one transaction: `Storage.write` for a change, `Storage.read` for a
consistent snapshot, `lookup` / `search` for reads an engine may answer on a faster path it knows (SQLite: on the
event loop's own connection, when an index answers at once). A body must be re-runnable: an engine may run it
again after a serialization conflict (PostgreSQL), so it keeps no state of its own between runs beyond what it
returns, and it must not await anything (it is not a coroutine: it runs on the engine's thread, one hop per
transaction, never one per statement).

A Transaction groups its calls by concern (`tx.resources`, `tx.members`, `tx.roster`, `tx.feed`, `tx.holds`,
`tx.tokens`, `tx.webhooks`, `tx.settings`, `tx.sessions`); each is the storage functions of before, less their
connection.
Records are in app/storage/records.py, exceptions in app/storage/errors.py, queries (a filter resolved against
the schema, a sort key) in app/protocol/resolved.py. `open_storage` (app/storage/factory.py) picks the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from app.protocol.resolved import Node, SearchQuery
from app.protocol.schema_defs import ResourceType
from app.storage.records import (
    Attempt,
    Endpoint,
    Event,
    Found,
    GroupSummary,
    Held,
    Hold,
    Key,
    LiveHash,
    Member,
    MemberQuery,
    Membership,
    NamedUser,
    RoleInputs,
    RosterEntry,
    StoredResource,
    StoredSession,
    TokenRecord,
    Window,
)

T = TypeVar("T")
Body = Callable[["Transaction"], T]


class Resources(Protocol):
    """Users and Groups: their documents, versions and searches."""

    def get(self, resource_type: ResourceType, resource_id: str) -> StoredResource | None: ...

    def insert(self, resource_type: ResourceType, resource_id: str, document: dict[str, Any], now: str,
               max_bytes: int | None = None) -> StoredResource:
        """UniquenessConflict on a taken userName / displayName; DocumentTooLarge past `max_bytes` (of the JSON
        the engine stores)."""
        ...

    def update(self, resource_type: ResourceType, current: StoredResource, document: dict[str, Any], now: str,
               max_bytes: int | None = None) -> StoredResource:
        """Replace `current`'s document (its version + 1); the same errors as insert."""
        ...

    def touch(self, resource_type: ResourceType, current: StoredResource, now: str) -> StoredResource:
        """A new version without a document change (a group whose membership changed)."""
        ...

    def touch_groups(self, group_ids: Sequence[str], now: str) -> None:
        """New versions for groups whose member list changed because a member was deleted or renamed."""
        ...

    def delete(self, resource_type: ResourceType, resource_id: str) -> bool:
        """Delete a resource and its memberships; False when there was none."""
        ...

    def count(self, query: SearchQuery) -> int: ...

    def find(self, query: SearchQuery, limit: int) -> list[StoredResource] | None:
        """Up to `limit` of the query's matches, in no particular order, when the query is a point search
        (SearchQuery.equality) that the engine answers by an index seek on that one column, at a cost that does
        not grow with the table (a lookup may run it); None, having read no rows, for any other query."""
        ...

    def page(self, query: SearchQuery, limit: int, offset: int, max_bytes: int) -> tuple[list[Found], bool]:
        """Up to `limit` resources from `offset` on in the query's order, and whether more follow. The page
        stops early once its documents hold more than `max_bytes` characters (always at least one resource).
        A Found's key carries no sort value here (it is not continued from)."""
        ...

    def seek(self, query: SearchQuery, key: Key | None, limit: int, max_bytes: int, backwards: bool = False
             ) -> tuple[list[Found], bool]:
        """The resources right after `key` in the query's order (from its start when None), or right before it,
        nearest first, when `backwards`; at the cost of an index seek, however deep `key` is. As `page` for
        `limit`, `max_bytes` and the flag."""
        ...

    def skip(self, query: SearchQuery, key: Key | None, rows: int) -> Key | None:
        """The key of the `rows`-th row after `key` in the query's order (of the `rows`-th row when None), None when
        fewer follow: keys only, no document is read, so that paging can step far into a collection cheaply."""
        ...

    def anchors(self, query: SearchQuery, key: Key | None, every: int, count: int) -> list[Key]:
        """The keys of the `every`-th, 2·`every`-th, … rows after `key` in the query's order (from its start when
        None), at most `count` of them, fewer where the rows end: `skip` over and over, in one go."""
        ...

    def snapshot(self) -> str | None:
        """A name for the data this transaction sees, the same in two transactions only when they see the same
        data (the paging cache's key where Storage.generation cannot promise it); None when the engine has none."""
        ...

    def group_summaries(self, limit: int) -> list[GroupSummary]:
        """The first `limit` groups by folded displayName, each with its member count (the console's Groups)."""
        ...

    def names_of(self, user_ids: Sequence[str], group_ids: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
        """The userName of each existing user and the displayName of each existing group among the ids."""
        ...


class Members(Protocol):
    """Group memberships (Group.members, User.groups)."""

    def of_groups(self, group_ids: Sequence[str], with_display: bool = False) -> dict[str, list[Member]]:
        """The members of each group, in user id order; `with_display` adds each one's name to display."""
        ...

    def member_ids(self, group_id: str) -> list[str]:
        """The group's member ids in user id order, as of_groups lists them, as plain strings: at the cost of one
        query and no object per member (GET of a 10,000-member group)."""
        ...

    def groups_of(self, user_ids: Sequence[str]) -> dict[str, list[Membership]]:
        """Each user's groups, by folded displayName."""
        ...

    def has_more_than(self, group_id: str, limit: int) -> bool:
        """Whether the group has more than `limit` members, in time that does not grow with the group."""
        ...

    def missing_users(self, user_ids: Sequence[str]) -> list[str]:
        """The ids among `user_ids` that name no user."""
        ...

    def add_users(self, group_id: str, user_ids: Sequence[str], now: str) -> list[str]:
        """Add as members the ids that name users (ones already there are left alone); the ids newly added. An id
        that names no user is left out (not an integrity error): missing_users tells which those were."""
        ...

    def remove(self, group_id: str, user_ids: Sequence[str]) -> list[str]:
        """Remove members; the ids that were members."""
        ...

    def matching(self, group_id: str, condition: Node) -> list[str]:
        """The ids of the group's members that satisfy `condition` (a PATCH `members[...]` filter, resolved:
        its values are MEMBER_ID or CONSTANT)."""
        ...

    def all_of(self, group_id: str) -> list[str]: ...

    def groups_of_user(self, user_id: str) -> list[str]: ...

    def joined(self, user_id: str) -> dict[str, str]:
        """Group id -> when the user was added to it (stored time), for each group the user is in."""
        ...


class Roster(Protocol):
    """The roster: who is a member of the organization, with which role."""

    def role_inputs(self, user_ids: Sequence[str]) -> dict[str, RoleInputs]:
        """For each existing user among `user_ids`: name, active flag and the names of all their groups."""
        ...

    def all_user_ids(self) -> list[str]:
        """Every user id, of a user or of a roster entry (a held member's user may be gone)."""
        ...

    def entries(self, user_ids: Sequence[str]) -> dict[str, RosterEntry]: ...

    def put(self, entries: Sequence[RosterEntry]) -> None: ...

    def drop(self, user_ids: Sequence[str]) -> None: ...

    def members(self, query: MemberQuery | None = None) -> list[dict[str, Any]]:
        """The roster with each member's current name, displayName and primary e-mail, in (folded userName, id)
        order, each with the open hold keeping them on it (keys: id, userName, displayName, role, since, email,
        sortKey, recordedGroups, held, hold)."""
        ...

    def members_at(self, at: str, query: MemberQuery | None = None) -> list[dict[str, Any]]:
        """The roster as it was at `at`, replayed from the change feed (recordedGroups: what the event recorded)."""
        ...

    def users_named(self, key: str) -> list[NamedUser]:
        """The users whose folded userName, or any folded e-mail, is `key`, at the cost of index lookups."""
        ...

    def role_counts(self) -> dict[str, int]:
        """How many members have each role right now (a role nobody has is absent)."""
        ...


class Feed(Protocol):
    """The change feed: every change's events, in commit order, numbered by `seq`."""

    def append(self, events: Sequence[Event], at: str, actor: str) -> None: ...

    def after(self, seq: int, limit: int) -> list[dict[str, Any]]:
        """Events after `seq`, oldest first, rendered (seq, time, type, token, and their data)."""
        ...

    def last_member_event(self, user_id: str) -> dict[str, Any] | None: ...

    def last_seq(self) -> int: ...

    def of_user(self, user_id: str, limit: int) -> list[dict[str, Any]]:
        """One user's events, newest first, rendered as `after` renders them."""
        ...

    def newest(self, before: int | None, kind: str | None, limit: int) -> list[dict[str, Any]]:
        """The feed newest first, below seq `before` (None: from the newest); `kind` a type (`member.joined`) or a
        family of types (`member`: every `member.*`), None for all."""
        ...


class Holds(Protocol):
    """Holds (changes whose departures wait for a person) and the sliding window that opens them."""

    def held_now(self, user_ids: Sequence[str]) -> dict[str, Held]: ...

    def held_in(self, hold_id: int, *, still_held: bool = True) -> list[Held]: ...

    def open(self, now: str, cause: str, actor: str, change: dict[str, Any], people: Sequence[Held]) -> int: ...

    def settle(self, hold_id: int, user_ids: Sequence[str], outcome: str) -> None:
        """Record that these people are held no longer: 'applied' (their change happened) or 'released'."""
        ...

    def still_held(self, hold_id: int) -> int: ...

    def close(self, hold_id: int, state: str, now: str, actor: str) -> None: ...

    def get(self, hold_id: int) -> Hold | None: ...

    def all_open(self) -> list[Hold]: ...

    def admins_not_held(self) -> int:
        """Admins on the roster that no open hold is about to remove or demote."""
        ...

    def window_since(self, start: str) -> Window: ...


class Tokens(Protocol):
    """Bearer tokens, by the SHA-256 hash of their value (storage never sees a token)."""

    def insert(self, name: str, token_hash: str, now: str, scopes: str, expires: str | None) -> None:
        """TokenNameTaken when a token (live or revoked) has the name."""
        ...

    def find_live_hash(self, token_hash: str, now: str) -> LiveHash | None: ...

    def get(self, name: str) -> TokenRecord | None: ...

    def list_all(self) -> list[TokenRecord]: ...

    def count_live(self, now: str) -> int: ...

    def revoke(self, name: str, now: str) -> bool: ...

    def rotate(self, name: str, new_hash: str, now: str, previous_until: str) -> bool: ...

    def record_use(self, used: dict[str, str]) -> None:
        """Remember when tokens were last used (name -> time); never moves a time backwards."""
        ...


class Webhooks(Protocol):
    """Webhook endpoints, their cursors over the feed, and their recent delivery attempts."""

    def insert(self, url: str, patterns: list[str], description: str, secret: str, now: str) -> int:
        """A new endpoint whose cursor starts after the newest event."""
        ...

    def get(self, webhook_id: int) -> Endpoint | None: ...

    def all(self) -> list[Endpoint]: ...

    def ids(self) -> list[int]: ...

    def revisions(self) -> int:
        """The sum of every endpoint's revision: it grows with each admin change the worker must notice."""
        ...

    def last_attempts(self) -> dict[int, Attempt]: ...

    def delete(self, webhook_id: int) -> bool: ...

    def set_secret(self, webhook_id: int, secret: str) -> bool: ...

    def rewind(self, webhook_id: int, from_seq: int) -> bool: ...

    def skip_to(self, webhook_id: int, revision: int, seq: int) -> None: ...

    def record(self, webhook_id: int, revision: int, attempt: Attempt, *, delivered: bool, retry_at: float | None,
               failing_since: float | None, failing: bool) -> None: ...

    def deliveries(self, webhook_id: int, limit: int) -> list[Attempt]: ...


class Settings(Protocol):
    """The database's own key-value settings (the cursor key, the role rules' fingerprint)."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str) -> None: ...


class Sessions(Protocol):
    """The console's sign-in sessions and one-time sign-in links, by the SHA-256 of their values (storage never
    sees a cookie or a code); times are unix seconds. Kept in the database, so that every instance sees them."""

    def insert(self, id_hash: str, token_name: str, now: float) -> None: ...

    def find(self, id_hash: str, now_text: str) -> StoredSession | None:
        """The session with this hash, and whether its token is live at `now_text` (stored time format)."""
        ...

    def touch(self, id_hash: str, now: float) -> None:
        """Move the session's last use to `now` (never backwards)."""
        ...

    def delete(self, id_hash: str) -> None: ...

    def delete_expired(self, created_before: float, seen_before: float) -> int:
        """Drop the sessions past either limit; how many there were."""
        ...

    def insert_link(self, code_hash: str, token_name: str, expires: float) -> None: ...

    def take_link(self, code_hash: str, now: float) -> str | None:
        """Use up the link: its token's name if it had not expired, else None; either way it is gone (and so are
        the expired ones)."""
        ...


class Transaction(Protocol):
    """One transaction, as a body sees it."""

    @property
    def resources(self) -> Resources: ...

    @property
    def members(self) -> Members: ...

    @property
    def roster(self) -> Roster: ...

    @property
    def feed(self) -> Feed: ...

    @property
    def holds(self) -> Holds: ...

    @property
    def tokens(self) -> Tokens: ...

    @property
    def webhooks(self) -> Webhooks: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def sessions(self) -> Sessions: ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A block whose changes alone are undone if it raises, while the transaction goes on (each operation of
        a Bulk request)."""
        ...


class Storage(Protocol):
    """A database rollcall keeps its data in, behind one engine."""

    @property
    def location(self) -> str:
        """What it was opened from: a file path, or a URL without its password."""
        ...

    @property
    def generation(self) -> int:
        """Odd while a commit of this process is under way, and one more after it: two reads that see the same
        even value before their snapshot saw the same data, as far as this process's writes go
        (app/domain/paging.py caches on it). An engine shared by several processes keeps it odd."""
        ...

    async def open(self) -> None:
        """Connect, creating the database if allowed, and bring its schema up to date."""
        ...

    async def close(self) -> None: ...

    async def write(self, body: Body[T]) -> T:
        """Run `body` as one write transaction: it commits whole, or (if it raises) not at all; this returns after
        the commit. An engine may commit several bodies together (group commit, each in a savepoint of its own so
        that one that raises is undone alone) and may run a body again after a serialization conflict."""
        ...

    async def read(self, body: Body[T]) -> T:
        """Run `body` as one read transaction: every query in it sees the same snapshot."""
        ...

    async def lookup(self, body: Body[T]) -> T:
        """`read`, for a body an index answers at once (a resource by id, a token by hash, a user by name): the
        engine may run it on its fastest path (SQLite: on the event loop, unless the database is busy)."""
        ...

    def change_stamp(self) -> Hashable:
        """A value equal at two moments only if nothing was committed between them (by any process), for caches of
        what a read found (the token cache); cheap, and no transaction of its own. An engine that cannot tell
        returns a new object each time: equal stamps must be a promise, unequal ones may be a false alarm."""
        ...

    async def search(self, body: Body[T], queries: Sequence[SearchQuery]) -> T:
        """`read`, for a body whose cost is that of reading pages of `queries`: the engine decides from the queries
        (SQLite: their query plans) whether it may run on its fastest path, or must run where a scan cannot
        hold up the event loop."""
        ...

    async def schema_version(self) -> int: ...

    async def claim_endpoint(self, webhook_id: int) -> bool:
        """Whether this process may deliver the webhook endpoint's events now, so that one process at a time does,
        in order: claimed until released, or until the process (or its hold on the database) ends. SQLite: always
        (one server per file); PostgreSQL: while this instance holds the endpoint's advisory lock."""
        ...

    async def release_endpoint(self, webhook_id: int) -> None:
        """Let another process deliver the endpoint's events (its task here has ended)."""
        ...
