"""SQL for Users, Groups and memberships. Every function takes the connection of the transaction it runs
in (a function passed to Database.read() or Database.write()); nothing here opens a transaction of its own."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from app.protocol.folding import fold_case
from app.protocol.schema_defs import USER_RESOURCE, ResourceType
from app.storage.query_plan import is_point_read

# SQLite accepts at most 32,766 host parameters; batches stay well below.
_BATCH = 500


class UniquenessConflict(Exception):
    """A unique column (userName, Group displayName) already holds the value."""


class DocumentTooLarge(Exception):
    """The document to store is larger than the limit the caller set; nothing was written."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes, limit {limit}")
        self.size = size
        self.limit = limit


@dataclass(frozen=True)
class StoredResource:
    id: str
    document: dict[str, Any]
    created: str
    last_modified: str
    version: int


@dataclass(frozen=True)
class Membership:
    group_id: str
    display: str


@dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[str, ...]  # the indexed columns derived from the document, in insert order


_USERS = _Table("users", ("user_name", "user_name_key", "external_id", "display_name", "active"))
_GROUPS = _Table("groups", ("display_name", "display_name_key", "external_id"))


def _table(resource_type: ResourceType) -> _Table:
    return _USERS if resource_type is USER_RESOURCE else _GROUPS


def _derived_columns(resource_type: ResourceType, document: dict[str, Any]) -> tuple[Any, ...]:
    if resource_type is USER_RESOURCE:
        user_name = document["userName"]
        return (user_name, fold_case(user_name), document.get("externalId"), document.get("displayName"),
                0 if document.get("active") is False else 1)
    display_name = document["displayName"]
    return (display_name, fold_case(display_name), document.get("externalId"))


def _dumps(document: dict[str, Any], max_bytes: int | None) -> str:
    encoded = orjson.dumps(document)
    # Measured here, on the very bytes stored, so that no way of writing (POST, PUT, PATCH) can store more.
    if max_bytes is not None and len(encoded) > max_bytes:
        raise DocumentTooLarge(len(encoded), max_bytes)
    # SQLite's JSON functions want TEXT, so the bytes orjson makes are decoded once here.
    return encoded.decode()


def _row_to_resource(row: sqlite3.Row) -> StoredResource:
    return StoredResource(row["id"], orjson.loads(row["doc"]), row["created"], row["last_modified"], row["version"])


def chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _BATCH):
        yield values[start:start + _BATCH]


def placeholders(count: int) -> str:
    return ",".join("?" * count)


def get(conn: sqlite3.Connection, resource_type: ResourceType, resource_id: str) -> StoredResource | None:
    table = _table(resource_type)
    row = conn.execute(f"SELECT id, doc, created, last_modified, version FROM {table.name} WHERE id = ?",
                       (resource_id,)).fetchone()
    return _row_to_resource(row) if row else None


def insert(conn: sqlite3.Connection, resource_type: ResourceType, resource_id: str, document: dict[str, Any],
           now: str, max_bytes: int | None = None) -> StoredResource:
    """Store a new resource; DocumentTooLarge when its document encodes to more than `max_bytes`."""
    table = _table(resource_type)
    doc = _dumps(document, max_bytes)
    columns = ", ".join(table.columns)
    try:
        conn.execute(
            f"INSERT INTO {table.name} (id, {columns}, doc, created, last_modified, version) "
            f"VALUES (?, {placeholders(len(table.columns))}, ?, ?, ?, 1)",
            (resource_id, *_derived_columns(resource_type, document), doc, now, now),
        )
    except sqlite3.IntegrityError as error:
        raise UniquenessConflict(str(error)) from error
    return StoredResource(resource_id, document, now, now, 1)


def update(conn: sqlite3.Connection, resource_type: ResourceType, current: StoredResource,
           document: dict[str, Any], now: str, max_bytes: int | None = None) -> StoredResource:
    """Replace a resource's document; DocumentTooLarge when it encodes to more than `max_bytes`."""
    table = _table(resource_type)
    doc = _dumps(document, max_bytes)
    assignments = ", ".join(f"{column} = ?" for column in table.columns)
    try:
        conn.execute(
            f"UPDATE {table.name} SET {assignments}, doc = ?, last_modified = ?, version = version + 1 WHERE id = ?",
            (*_derived_columns(resource_type, document), doc, now, current.id),
        )
    except sqlite3.IntegrityError as error:
        raise UniquenessConflict(str(error)) from error
    return StoredResource(current.id, document, current.created, now, current.version + 1)


def touch(conn: sqlite3.Connection, resource_type: ResourceType, current: StoredResource, now: str
          ) -> StoredResource:
    """A new version without a document change: a group whose membership changed."""
    table = _table(resource_type)
    conn.execute(f"UPDATE {table.name} SET last_modified = ?, version = version + 1 WHERE id = ?", (now, current.id))
    return StoredResource(current.id, current.document, current.created, now, current.version + 1)


def delete(conn: sqlite3.Connection, resource_type: ResourceType, resource_id: str) -> bool:
    """Delete a resource; its memberships go with it (ON DELETE CASCADE)."""
    table = _table(resource_type)
    return conn.execute(f"DELETE FROM {table.name} WHERE id = ?", (resource_id,)).rowcount > 0


@dataclass(frozen=True)
class Search:
    """A list query over one resource type, compiled: `where` and `order_by` come from filter_sql."""

    resource_type: ResourceType
    where: str
    params: tuple[Any, ...]
    order_by: str | None = None
    descending: bool = False

    @property
    def count_sql(self) -> str:
        return f"SELECT count(*) FROM {_table(self.resource_type).name} AS r WHERE {self.where}"

    @property
    def page_sql(self) -> str:
        direction = "DESC" if self.descending else "ASC"
        # rowid breaks ties so that pages are stable; absent sort values come last either way (RFC 7644 §3.4.2.3).
        order = f"{self.order_by} IS NULL, {self.order_by} {direction}, r.rowid" if self.order_by else "r.rowid"
        return (f"SELECT id, doc, created, last_modified, version FROM {_table(self.resource_type).name} AS r "
                f"WHERE {self.where} ORDER BY {order} LIMIT ? OFFSET ?")


def is_point_search(conn: sqlite3.Connection, query: Search) -> bool:
    """Whether both statements of `query` reach rows only by equality on unique keys (see query_plan),
    so that it may run on the event loop."""
    return (is_point_read(conn, query.count_sql, query.params)
            and is_point_read(conn, query.page_sql, (*query.params, 1, 0)))


def search(conn: sqlite3.Connection, query: Search, limit: int, offset: int, max_bytes: int
           ) -> tuple[int, list[StoredResource]]:
    """One page of the resources matching `query`, and how many match in all.

    The page stops early, before `limit`, once its documents hold more than `max_bytes` characters
    (always at least one resource, so that paging moves on): rows past that point are never read, so a
    page of large resources costs at most the budget plus one resource, not `limit` times the largest."""
    total = conn.execute(query.count_sql, query.params).fetchone()[0]
    if limit <= 0 or offset >= total:
        return total, []
    found: list[StoredResource] = []
    used = 0
    cursor = conn.execute(query.page_sql, (*query.params, limit, offset))
    try:
        for row in cursor:
            used += len(row["doc"])
            if found and used > max_bytes:
                break
            found.append(_row_to_resource(row))
    finally:
        cursor.close()  # a statement left open would keep the read transaction from committing
    return total, found


# -- memberships -------------------------------------------------------------------------------------

def has_more_members_than(conn: sqlite3.Connection, group_id: str, limit: int) -> bool:
    """Whether a group has more than `limit` members, in time that does not grow with the group (count(*)
    would walk every member)."""
    return conn.execute("SELECT 1 FROM group_members WHERE group_id = ? LIMIT 1 OFFSET ?",
                        (group_id, limit)).fetchone() is not None


@dataclass(frozen=True)
class Member:
    user_id: str
    display: str  # the User's displayName, or its userName when it has none


def members_of(conn: sqlite3.Connection, group_ids: Sequence[str], with_display: bool = False
               ) -> dict[str, list[Member]]:
    """The members of each group (in id order, which the primary key gives without sorting); `with_display`
    adds the name to display for each, at one primary-key lookup of the user per member."""
    display = "coalesce(nullif(u.display_name, ''), u.user_name)" if with_display else "''"
    join = "JOIN users u ON u.id = m.user_id " if with_display else ""
    found: dict[str, list[Member]] = {group_id: [] for group_id in group_ids}
    for chunk in chunks(group_ids):
        for group_id, user_id, shown in conn.execute(
            f"SELECT m.group_id, m.user_id, {display} FROM group_members m {join}"
            f"WHERE m.group_id IN ({placeholders(len(chunk))}) ORDER BY m.group_id, m.user_id", tuple(chunk),
        ):
            found[group_id].append(Member(user_id, shown))
    return found


def groups_of(conn: sqlite3.Connection, user_ids: Sequence[str]) -> dict[str, list[Membership]]:
    found: dict[str, list[Membership]] = {user_id: [] for user_id in user_ids}
    for chunk in chunks(user_ids):
        for user_id, group_id, display_name in conn.execute(
            "SELECT m.user_id, m.group_id, g.display_name FROM group_members m JOIN groups g ON g.id = m.group_id "
            f"WHERE m.user_id IN ({placeholders(len(chunk))}) ORDER BY m.user_id, g.display_name_key", tuple(chunk),
        ):
            found[user_id].append(Membership(group_id, display_name))
    return found


def missing_users(conn: sqlite3.Connection, user_ids: Sequence[str]) -> list[str]:
    """The ids among `user_ids` that name no user."""
    existing: set[str] = set()
    for chunk in chunks(user_ids):
        existing.update(row[0] for row in conn.execute(
            f"SELECT id FROM users WHERE id IN ({placeholders(len(chunk))})", tuple(chunk)))
    return [user_id for user_id in user_ids if user_id not in existing]


def add_members(conn: sqlite3.Connection, group_id: str, user_ids: Sequence[str], now: str) -> list[str]:
    """Add members; ones already there are left alone. Returns the ids that were newly added."""
    insert = "INSERT OR IGNORE INTO group_members (group_id, user_id, added) VALUES (?, ?, ?)"
    return [user_id for user_id in user_ids if conn.execute(insert, (group_id, user_id, now)).rowcount > 0]


def remove_members(conn: sqlite3.Connection, group_id: str, user_ids: Sequence[str]) -> list[str]:
    """Remove the given members. Returns the ids that were members."""
    delete_one = "DELETE FROM group_members WHERE group_id = ? AND user_id = ?"
    return [user_id for user_id in user_ids if conn.execute(delete_one, (group_id, user_id)).rowcount > 0]


def member_ids_where(conn: sqlite3.Connection, group_id: str, where: str, params: Sequence[Any]) -> list[str]:
    """Ids of the members of a group matching a member filter compiled by filter_sql (alias m)."""
    return [row[0] for row in conn.execute(
        f"SELECT m.user_id FROM group_members m WHERE m.group_id = ? AND ({where})", (group_id, *params))]


def all_member_ids(conn: sqlite3.Connection, group_id: str) -> list[str]:
    return [row[0] for row in conn.execute("SELECT user_id FROM group_members WHERE group_id = ?", (group_id,))]


def group_ids_of_user(conn: sqlite3.Connection, user_id: str) -> list[str]:
    return [row[0] for row in conn.execute("SELECT group_id FROM group_members WHERE user_id = ?", (user_id,))]


def touch_groups(conn: sqlite3.Connection, group_ids: Sequence[str], now: str) -> None:
    """New versions for groups whose member list changed because a member was deleted or renamed."""
    for chunk in chunks(group_ids):
        conn.execute(
            f"UPDATE groups SET last_modified = ?, version = version + 1 WHERE id IN ({placeholders(len(chunk))})",
            (now, *chunk),
        )
