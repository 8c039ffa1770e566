"""The Transaction of app/storage/interface.py over one sqlite3 connection, by concern.

Each concern is a thin front for the module that holds its SQL (resources.py, roster.py, holds.py, tokens.py,
webhooks.py), so that SQL stays in one place per table and the interface in another. A body runs on the thread
of the connection it was given: nothing here hops between threads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

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
from app.storage.sqlite import holds, resources, roster, sessions, tokens, webhooks


class _Concern:
    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn


class _Resources(_Concern):
    __slots__ = ()

    def get(self, resource_type: ResourceType, resource_id: str) -> StoredResource | None:
        return resources.get(self._conn, resource_type, resource_id)

    def insert(self, resource_type: ResourceType, resource_id: str, document: dict[str, Any], now: str,
               max_bytes: int | None = None) -> StoredResource:
        return resources.insert(self._conn, resource_type, resource_id, document, now, max_bytes)

    def update(self, resource_type: ResourceType, current: StoredResource, document: dict[str, Any], now: str,
               max_bytes: int | None = None) -> StoredResource:
        return resources.update(self._conn, resource_type, current, document, now, max_bytes)

    def touch(self, resource_type: ResourceType, current: StoredResource, now: str) -> StoredResource:
        return resources.touch(self._conn, resource_type, current, now)

    def touch_groups(self, group_ids: Sequence[str], now: str) -> None:
        resources.touch_groups(self._conn, group_ids, now)

    def delete(self, resource_type: ResourceType, resource_id: str) -> bool:
        return resources.delete(self._conn, resource_type, resource_id)

    def count(self, query: SearchQuery) -> int:
        return resources.count(self._conn, query)

    def find(self, query: SearchQuery, limit: int) -> list[StoredResource] | None:
        return resources.find(self._conn, query, limit)

    def page(self, query: SearchQuery, limit: int, offset: int, max_bytes: int) -> tuple[list[Found], bool]:
        return resources.page(self._conn, query, limit, offset, max_bytes)

    def seek(self, query: SearchQuery, key: Key | None, limit: int, max_bytes: int, backwards: bool = False
             ) -> tuple[list[Found], bool]:
        return resources.seek(self._conn, query, key, limit, max_bytes, backwards)

    def skip(self, query: SearchQuery, key: Key | None, rows: int) -> Key | None:
        return resources.skip(self._conn, query, key, rows)

    def anchors(self, query: SearchQuery, key: Key | None, every: int, count: int) -> list[Key]:
        return resources.anchors(self._conn, query, key, every, count)

    def snapshot(self) -> str | None:
        return None  # one process writes the file: Storage.generation says when its data changed

    def group_summaries(self, limit: int) -> list[GroupSummary]:
        return resources.group_summaries(self._conn, limit)

    def names_of(self, user_ids: Sequence[str], group_ids: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
        return resources.names_of(self._conn, user_ids, group_ids)


class _Members(_Concern):
    __slots__ = ()

    def of_groups(self, group_ids: Sequence[str], with_display: bool = False) -> dict[str, list[Member]]:
        return resources.members_of(self._conn, group_ids, with_display)

    def member_ids(self, group_id: str) -> list[str]:
        return resources.member_ids(self._conn, group_id)

    def groups_of(self, user_ids: Sequence[str]) -> dict[str, list[Membership]]:
        return resources.groups_of(self._conn, user_ids)

    def has_more_than(self, group_id: str, limit: int) -> bool:
        return resources.has_more_members_than(self._conn, group_id, limit)

    def missing_users(self, user_ids: Sequence[str]) -> list[str]:
        return resources.missing_users(self._conn, user_ids)

    def add_users(self, group_id: str, user_ids: Sequence[str], now: str) -> list[str]:
        return resources.add_users(self._conn, group_id, user_ids, now)

    def remove(self, group_id: str, user_ids: Sequence[str]) -> list[str]:
        return resources.remove_members(self._conn, group_id, user_ids)

    def matching(self, group_id: str, condition: Node) -> list[str]:
        return resources.member_ids_matching(self._conn, group_id, condition)

    def all_of(self, group_id: str) -> list[str]:
        return resources.all_member_ids(self._conn, group_id)

    def groups_of_user(self, user_id: str) -> list[str]:
        return resources.group_ids_of_user(self._conn, user_id)

    def joined(self, user_id: str) -> dict[str, str]:
        return resources.membership_times(self._conn, user_id)


class _Roster(_Concern):
    __slots__ = ()

    def role_inputs(self, user_ids: Sequence[str]) -> dict[str, RoleInputs]:
        return roster.role_inputs(self._conn, user_ids)

    def all_user_ids(self) -> list[str]:
        return roster.all_user_ids(self._conn)

    def entries(self, user_ids: Sequence[str]) -> dict[str, RosterEntry]:
        return roster.entries(self._conn, user_ids)

    def put(self, entries: Sequence[RosterEntry]) -> None:
        roster.put_entries(self._conn, entries)

    def drop(self, user_ids: Sequence[str]) -> None:
        roster.drop_entries(self._conn, user_ids)

    def members(self, query: MemberQuery | None = None) -> list[dict[str, Any]]:
        return roster.members(self._conn, query)

    def members_at(self, at: str, query: MemberQuery | None = None) -> list[dict[str, Any]]:
        return roster.members_at(self._conn, at, query)

    def users_named(self, key: str) -> list[NamedUser]:
        return roster.users_named(self._conn, key)

    def role_counts(self) -> dict[str, int]:
        return roster.role_counts(self._conn)


class _Feed(_Concern):
    __slots__ = ()

    def append(self, events: Sequence[Event], at: str, actor: str) -> None:
        roster.append_events(self._conn, events, at, actor)

    def after(self, seq: int, limit: int) -> list[dict[str, Any]]:
        return roster.events_after(self._conn, seq, limit)

    def last_member_event(self, user_id: str) -> dict[str, Any] | None:
        return roster.last_member_event(self._conn, user_id)

    def last_seq(self) -> int:
        return webhooks.last_seq(self._conn)

    def of_user(self, user_id: str, limit: int) -> list[dict[str, Any]]:
        return roster.events_of_user(self._conn, user_id, limit)

    def newest(self, before: int | None, kind: str | None, limit: int) -> list[dict[str, Any]]:
        return roster.events_newest(self._conn, before, kind, limit)


class _Holds(_Concern):
    __slots__ = ()

    def held_now(self, user_ids: Sequence[str]) -> dict[str, Held]:
        return holds.held_now(self._conn, user_ids)

    def held_in(self, hold_id: int, *, still_held: bool = True) -> list[Held]:
        return holds.held_in(self._conn, hold_id, still_held=still_held)

    def open(self, now: str, cause: str, actor: str, change: dict[str, Any], people: Sequence[Held]) -> int:
        return holds.open_hold(self._conn, now, cause, actor, change, people)

    def settle(self, hold_id: int, user_ids: Sequence[str], outcome: str) -> None:
        holds.settle_held(self._conn, hold_id, user_ids, outcome)

    def still_held(self, hold_id: int) -> int:
        return holds.still_held(self._conn, hold_id)

    def close(self, hold_id: int, state: str, now: str, actor: str) -> None:
        holds.close_hold(self._conn, hold_id, state, now, actor)

    def get(self, hold_id: int) -> Hold | None:
        return holds.get_hold(self._conn, hold_id)

    def all_open(self) -> list[Hold]:
        return holds.open_holds(self._conn)

    def admins_not_held(self) -> int:
        return holds.admins_not_held(self._conn)

    def window_since(self, start: str) -> Window:
        return holds.window_since(self._conn, start)


class _Tokens(_Concern):
    __slots__ = ()

    def insert(self, name: str, token_hash: str, now: str, scopes: str, expires: str | None) -> None:
        tokens.insert(self._conn, name, token_hash, now, scopes, expires)

    def find_live_hash(self, token_hash: str, now: str) -> LiveHash | None:
        return tokens.find_live_hash(self._conn, token_hash, now)

    def get(self, name: str) -> TokenRecord | None:
        return tokens.get(self._conn, name)

    def list_all(self) -> list[TokenRecord]:
        return tokens.list_all(self._conn)

    def count_live(self, now: str) -> int:
        return tokens.count_live(self._conn, now)

    def revoke(self, name: str, now: str) -> bool:
        return tokens.revoke(self._conn, name, now)

    def rotate(self, name: str, new_hash: str, now: str, previous_until: str) -> bool:
        return tokens.rotate(self._conn, name, new_hash, now, previous_until)

    def record_use(self, used: dict[str, str]) -> None:
        tokens.record_use(self._conn, used)


class _Webhooks(_Concern):
    __slots__ = ()

    def insert(self, url: str, patterns: list[str], description: str, secret: str, now: str) -> int:
        return webhooks.insert(self._conn, url, patterns, description, secret, now)

    def get(self, webhook_id: int) -> Endpoint | None:
        return webhooks.get(self._conn, webhook_id)

    def all(self) -> list[Endpoint]:
        return webhooks.all_endpoints(self._conn)

    def ids(self) -> list[int]:
        return webhooks.ids(self._conn)

    def revisions(self) -> int:
        return webhooks.revisions(self._conn)

    def last_attempts(self) -> dict[int, Attempt]:
        return webhooks.last_attempts(self._conn)

    def delete(self, webhook_id: int) -> bool:
        return webhooks.delete(self._conn, webhook_id)

    def set_secret(self, webhook_id: int, secret: str) -> bool:
        return webhooks.set_secret(self._conn, webhook_id, secret)

    def rewind(self, webhook_id: int, from_seq: int) -> bool:
        return webhooks.rewind(self._conn, webhook_id, from_seq)

    def skip_to(self, webhook_id: int, revision: int, seq: int) -> None:
        webhooks.skip_to(self._conn, webhook_id, revision, seq)

    def record(self, webhook_id: int, revision: int, attempt: Attempt, *, delivered: bool, retry_at: float | None,
               failing_since: float | None, failing: bool) -> None:
        webhooks.record(self._conn, webhook_id, revision, attempt, delivered=delivered, retry_at=retry_at,
                        failing_since=failing_since, failing=failing)

    def deliveries(self, webhook_id: int, limit: int) -> list[Attempt]:
        return webhooks.deliveries(self._conn, webhook_id, limit)


class _Settings(_Concern):
    __slots__ = ()

    def get(self, key: str) -> str | None:
        return roster.get_setting(self._conn, key)

    def put(self, key: str, value: str) -> None:
        roster.put_setting(self._conn, key, value)


class _Sessions(_Concern):
    __slots__ = ()

    def insert(self, id_hash: str, token_name: str, now: float) -> None:
        sessions.insert(self._conn, id_hash, token_name, now)

    def find(self, id_hash: str, now_text: str) -> StoredSession | None:
        return sessions.find(self._conn, id_hash, now_text)

    def touch(self, id_hash: str, now: float) -> None:
        sessions.touch(self._conn, id_hash, now)

    def delete(self, id_hash: str) -> None:
        sessions.delete(self._conn, id_hash)

    def delete_expired(self, created_before: float, seen_before: float) -> int:
        return sessions.delete_expired(self._conn, created_before, seen_before)

    def insert_link(self, code_hash: str, token_name: str, expires: float) -> None:
        sessions.insert_link(self._conn, code_hash, token_name, expires)

    def take_link(self, code_hash: str, now: float) -> str | None:
        return sessions.take_link(self._conn, code_hash, now)


class SqliteTransaction:
    """One transaction on `conn`."""

    __slots__ = ("connection", "feed", "holds", "members", "resources", "roster", "sessions", "settings", "tokens",
                 "webhooks")

    def __init__(self, conn: sqlite3.Connection) -> None:
        # The connection itself, for SQLite-only code (tests, diagnostics); the domain never touches it.
        self.connection = conn
        self.resources = _Resources(conn)
        self.members = _Members(conn)
        self.roster = _Roster(conn)
        self.feed = _Feed(conn)
        self.holds = _Holds(conn)
        self.tokens = _Tokens(conn)
        self.webhooks = _Webhooks(conn)
        self.settings = _Settings(conn)
        self.sessions = _Sessions(conn)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Run the block in a savepoint of the transaction under way: if it raises, its changes alone are undone
        and the transaction goes on (each operation of a Bulk request, within the transaction of its batch)."""
        conn = self.connection
        conn.execute("SAVEPOINT operation")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK TO operation")
            conn.execute("RELEASE operation")
            raise
        conn.execute("RELEASE operation")

