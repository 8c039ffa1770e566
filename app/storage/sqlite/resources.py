"""SQL for Users, Groups and memberships. Every function takes the connection of the transaction it runs
in (app/storage/sqlite/transaction.py); nothing here opens a transaction of its own."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from app.protocol.folding import fold_case
from app.protocol.resolved import Compare, Node, SearchQuery
from app.protocol.schema_defs import USER_RESOURCE, ResourceType
from app.storage.derived_columns import derived_columns
from app.storage.errors import DocumentTooLarge, IntegrityViolation, UniquenessConflict
from app.storage.records import Found, GroupSummary, Key, Member, Membership, StoredResource
from app.storage.search_key import user_search_key
from app.storage.sqlite.compiler import compile_filter, compile_member_filter, compile_sort
from app.storage.sqlite.query_plan import is_index_seek, is_point_read

# SQLite accepts at most 32,766 host parameters; batches stay well below.
_BATCH = 500


@dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[str, ...]  # the indexed columns derived from the document, in insert order


_USERS = _Table("users", ("user_name", "user_name_key", "external_id", "display_name", "active", "search_key"))
_GROUPS = _Table("groups", ("display_name", "display_name_key", "external_id"))


def _table(resource_type: ResourceType) -> _Table:
    return _USERS if resource_type is USER_RESOURCE else _GROUPS


def _put_search_key(conn: sqlite3.Connection, user_id: str, document: dict[str, Any] | None) -> None:
    """Copy the user's search key onto their roster entry, in the write's transaction (None: the user is deleted,
    and the entry a hold keeps is found by its own name only)."""
    if document is None:
        conn.execute("UPDATE roster SET search_key = user_name_key WHERE user_id = ?", (user_id,))
    else:
        conn.execute("UPDATE roster SET search_key = ? WHERE user_id = ?", (user_search_key(document), user_id))


def _email_keys(document: dict[str, Any]) -> set[str]:
    emails = document.get("emails")
    if not isinstance(emails, list):
        return set()
    return {fold_case(e["value"]) for e in emails if isinstance(e, dict) and isinstance(e.get("value"), str)}


def _put_emails(conn: sqlite3.Connection, user_id: str, document: dict[str, Any], replacing: bool) -> None:
    """Keep user_emails (forward auth's lookup by any e-mail) in step with the user's document, in its transaction."""
    if replacing:
        conn.execute("DELETE FROM user_emails WHERE user_id = ?", (user_id,))
    conn.executemany("INSERT OR IGNORE INTO user_emails (email_key, user_id) VALUES (?, ?)",
                     [(key, user_id) for key in _email_keys(document)])


# A unique index or a primary key refused the value; any other constraint failing is a bug, not a conflict.
_UNIQUENESS_CODES = frozenset({sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY})


def integrity_error(error: sqlite3.IntegrityError) -> Exception:
    """What an IntegrityError means, told apart by SQLite's extended result code (never by its message)."""
    if error.sqlite_errorcode in _UNIQUENESS_CODES:
        return UniquenessConflict(str(error))
    return IntegrityViolation(str(error))


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
            (resource_id, *derived_columns(resource_type, document), doc, now, now),
        )
    except sqlite3.IntegrityError as error:
        raise integrity_error(error) from error
    # No roster entry can name a user that did not exist a moment ago, so there is no search key to copy yet:
    # put_entries takes it from the users row when the user joins.
    if resource_type is USER_RESOURCE:
        _put_emails(conn, resource_id, document, replacing=False)
    return StoredResource(resource_id, document, now, now, 1)


def update(conn: sqlite3.Connection, resource_type: ResourceType, current: StoredResource,
           document: dict[str, Any], now: str, max_bytes: int | None = None) -> StoredResource:
    """Replace a resource's document; DocumentTooLarge when it encodes to more than `max_bytes`."""
    table = _table(resource_type)
    doc = _dumps(document, max_bytes)
    # Only the derived columns whose value changed are assigned: SQLite rewrites an index entry for every indexed
    # column the statement assigns, changed or not, and a PATCH of `active` should not move the userName keys.
    derived = zip(table.columns, derived_columns(resource_type, document),
                  derived_columns(resource_type, current.document), strict=True)
    changed = [(column, value) for column, value, before in derived if value != before]
    assignments = "".join(f"{column} = ?, " for column, _ in changed)
    try:
        conn.execute(
            f"UPDATE {table.name} SET {assignments}doc = ?, last_modified = ?, version = version + 1 WHERE id = ?",
            (*(value for _, value in changed), doc, now, current.id),
        )
    except sqlite3.IntegrityError as error:
        raise integrity_error(error) from error
    if resource_type is USER_RESOURCE and _email_keys(document) != _email_keys(current.document):
        _put_emails(conn, current.id, document, replacing=True)
    if any(column == "search_key" for column, _ in changed):
        _put_search_key(conn, current.id, document)
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
    deleted = conn.execute(f"DELETE FROM {table.name} WHERE id = ?", (resource_id,)).rowcount > 0
    if deleted and resource_type is USER_RESOURCE:
        _put_search_key(conn, resource_id, None)
    return deleted


@dataclass(frozen=True)
class Search:
    """A SearchQuery compiled for SQLite: `where` and `order_by` come from compiler.py.

    Its order is total: the sort value (absent values last either way, RFC 7644 §3.4.2.3), then rowid, so
    that a Key names one place in it and a page can continue from a Key by seeking (keyset pagination)."""

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
        # Without the sort value: an OFFSET page is not continued from (its key's value would be None), and
        # a per-row subquery in the SELECT would make even a one-row point read look like a scan to query_plan.
        return self._select(self.where, backwards=False, with_value=False) + " LIMIT ? OFFSET ?"

    def seek_sql(self, key: Key | None, backwards: bool) -> tuple[str, tuple[Any, ...]]:
        """The rows after `key` in this order (before it, nearest first, when `backwards`), less a LIMIT."""
        if key is None:
            return self._select(self.where, backwards), self.params
        beyond, values = self._beyond(key, backwards)
        return self._select(f"({self.where}) AND {beyond}", backwards), (*self.params, *values)

    def skip_sql(self, key: Key | None) -> tuple[str, tuple[Any, ...]]:
        """The key of the row OFFSET ? rows past the first after `key` in this order (from the start when None)."""
        where, params = self.where, self.params
        if key is not None:
            beyond, values = self._beyond(key, backwards=False)
            where, params = f"({where}) AND {beyond}", (*params, *values)
        return (f"SELECT r.rowid AS key_rowid, {self.order_by or 'NULL'} AS key_value "
                f"FROM {_table(self.resource_type).name} AS r WHERE {where} ORDER BY {self._order(False)} "
                "LIMIT 1 OFFSET ?"), params

    def _select(self, where: str, backwards: bool, with_value: bool = True) -> str:
        # order_by is an expression of compiler.py's without parameters, so `?`s are those of `where` alone.
        value = self.order_by if self.order_by and with_value else "NULL"
        # The document as bytes (CAST: the very UTF-8 orjson wrote, no str made): a page splices it unparsed.
        return (f"SELECT r.rowid AS key_rowid, {value} AS key_value, id, CAST(doc AS BLOB), created, "
                f"last_modified, version FROM {_table(self.resource_type).name} AS r WHERE {where} "
                f"ORDER BY {self._order(backwards)}")

    def _order(self, backwards: bool) -> str:
        rowid = "r.rowid DESC" if backwards else "r.rowid"
        if not self.order_by:
            return rowid
        direction = "DESC" if self.descending != backwards else "ASC"
        return f"{self.order_by} IS NULL {'DESC' if backwards else 'ASC'}, {self.order_by} {direction}, {rowid}"

    def _beyond(self, key: Key, backwards: bool) -> tuple[str, tuple[Any, ...]]:
        """A condition for the rows strictly after `key` in this order (strictly before it when `backwards`)."""
        rowid = "<" if backwards else ">"
        if not self.order_by:
            return f"r.rowid {rowid} ?", (key.rowid,)
        expr = self.order_by
        if key.value is None:  # the key is among the rows without a value, which come last
            if backwards:
                return f"({expr} IS NOT NULL OR r.rowid < ?)", (key.rowid,)
            return f"({expr} IS NULL AND r.rowid > ?)", (key.rowid,)
        later = "<" if self.descending != backwards else ">"
        same_or_past = f"({expr} {later} ? OR ({expr} = ? AND r.rowid {rowid} ?))"
        if backwards:
            return f"({expr} IS NOT NULL AND {same_or_past})", (key.value, key.value, key.rowid)
        return f"({expr} IS NULL OR {same_or_past})", (key.value, key.value, key.rowid)


@functools.lru_cache(maxsize=1024)
def compiled(query: SearchQuery) -> Search:
    """The SQL of a query; remembered, as a client asks the same few queries again and again."""
    where, params = compile_filter(query.resource_type, query.filter) if query.filter is not None else ("1", [])
    order_by = compile_sort(query.resource_type, query.sort) if query.sort is not None else None
    return Search(query.resource_type, where, tuple(params), order_by, query.descending)


def is_point_search(conn: sqlite3.Connection, query: SearchQuery) -> bool:
    """Whether both statements of `query` reach rows only by equality on unique keys (see query_plan),
    so that it may run on the event loop."""
    search = compiled(query)
    return (is_point_read(conn, search.count_sql, search.params)
            and is_point_read(conn, search.page_sql, (*search.params, 1, 0)))


def find(conn: sqlite3.Connection, query: SearchQuery, limit: int) -> list[StoredResource] | None:
    """Up to `limit` matches of a point search (SearchQuery.equality) that one index seek answers, else None
    without reading a row: the plan, not the attribute's name, decides (query_plan.is_index_seek)."""
    equality = query.equality()
    if equality is None or limit <= 0:
        return None
    sql, params = _find_statement(query, equality)
    params = (*params, limit)
    if not is_index_seek(conn, sql, params):
        return None
    return [_row_to_resource(row) for row in conn.execute(sql, params)]


# The statement of each point search's shape (type, attribute, operand type): its text never holds the operand
# (values travel as parameters), and a search with a new value every time would only churn `compiled`'s cache.
_find_statements: dict[tuple[Any, ...], str] = {}


def _find_statement(query: SearchQuery, equality: Compare) -> tuple[str, tuple[Any, ...]]:
    shape = (query.resource_type.name, equality.value, type(equality.operand))
    sql = _find_statements.get(shape)
    if sql is not None:
        return sql, (equality.operand,)
    where, params = compile_filter(query.resource_type, equality)
    sql = f"SELECT id, doc, created, last_modified, version FROM {_table(query.resource_type).name} AS r " \
          f"WHERE {where} LIMIT ?"
    # Remembered only when the one parameter is the operand as given (a boolean becomes 1 or 0).
    if len(params) == 1 and type(params[0]) is type(equality.operand) and params[0] == equality.operand \
            and len(_find_statements) < _MAX_FIND_SHAPES:
        _find_statements[shape] = sql
    return sql, tuple(params)


_MAX_FIND_SHAPES = 64


def count(conn: sqlite3.Connection, query: SearchQuery) -> int:
    search = compiled(query)
    return int(conn.execute(search.count_sql, search.params).fetchone()[0])


def page(conn: sqlite3.Connection, query: SearchQuery, limit: int, offset: int, max_bytes: int
         ) -> tuple[list[Found], bool]:
    """The resources at `offset` onwards in the query's order: see `_take` for `limit`, `max_bytes` and the
    flag. The OFFSET walks the rows before it; `seek` is the way to a page that does not."""
    if limit <= 0:
        return [], False
    search = compiled(query)
    return _take(_tuples(conn).execute(search.page_sql, (*search.params, limit, offset)), limit, max_bytes)


def seek(conn: sqlite3.Connection, query: SearchQuery, key: Key | None, limit: int, max_bytes: int,
         backwards: bool = False) -> tuple[list[Found], bool]:
    """The resources right after `key` in the query's order (from its start when None), or right before it,
    nearest first, when `backwards`: through the index that orders them, so that a page costs the same at
    the end of 100,000 rows as at the start. See `_take` for `limit`, `max_bytes` and the flag."""
    sql, params = compiled(query).seek_sql(key, backwards)
    # One row more than asked for says whether any follow.
    return _take(_tuples(conn).execute(f"{sql} LIMIT ?", (*params, max(0, limit) + 1)), limit, max_bytes)


def skip(conn: sqlite3.Connection, query: SearchQuery, key: Key | None, rows: int) -> Key | None:
    """The key of the `rows`-th row after `key` in the query's order (of the `rows`-th row when None); None when
    fewer rows follow. Only keys are read, never a document, so stepping through 100,000 rows costs
    a walk of the table, not the decoding of every row a page skips."""
    sql, params = compiled(query).skip_sql(key)
    row = conn.execute(sql, (*params, max(0, rows - 1))).fetchone()
    return None if row is None else Key(row["key_rowid"], row["key_value"])


def anchors(conn: sqlite3.Connection, query: SearchQuery, key: Key | None, every: int, count: int) -> list[Key]:
    """`skip` by `every` rows, up to `count` times (a statement is a function call here, not a round trip)."""
    found: list[Key] = []
    while len(found) < count:
        next_key = skip(conn, query, found[-1] if found else key, every)
        if next_key is None:
            break
        found.append(next_key)
    return found


def _tuples(conn: sqlite3.Connection) -> sqlite3.Cursor:
    """A cursor whose rows are plain tuples: a page reads 100 rows, and sqlite3.Row's lookups by name cost
    more than a third of reading them."""
    cursor = conn.cursor()
    cursor.row_factory = None
    return cursor


def _take(cursor: sqlite3.Cursor, limit: int, max_bytes: int) -> tuple[list[Found], bool]:
    """Up to `limit` rows of `cursor`, and whether it held a row past those taken.

    The page stops early, before `limit`, once its documents hold more than `max_bytes` bytes
    (always at least one resource, so that paging moves on): rows past that point are never read, so a
    page of large resources costs at most the budget plus one resource, not `limit` times the largest.
    Documents are left as their JSON text, parsed only if asked for (StoredResource.document)."""
    found: list[Found] = []
    used = 0
    stored = StoredResource
    # tuple.__new__ straight, not the NamedTuples' own __new__ (a Python function each, that only calls it):
    # half the cost of a row's Key and Found (timeit: 0.80 -> 0.43 us).
    new, found_type, key_type = tuple.__new__, Found, Key
    append = found.append
    try:
        for key_rowid, key_value, resource_id, doc, created, last_modified, version in cursor:
            used += len(doc)
            if len(found) >= limit or (found and used > max_bytes):
                return found, True
            append(new(found_type, (new(key_type, (key_rowid, key_value)),
                                    stored(resource_id, None, created, last_modified, version, doc))))
    finally:
        cursor.close()  # a statement left open would keep the read transaction from committing
    return found, False


# -- memberships -------------------------------------------------------------------------------------

def has_more_members_than(conn: sqlite3.Connection, group_id: str, limit: int) -> bool:
    """Whether a group has more than `limit` members, in time that does not grow with the group (count(*)
    would walk every member)."""
    return conn.execute("SELECT 1 FROM group_members WHERE group_id = ? LIMIT 1 OFFSET ?",
                        (group_id, limit)).fetchone() is not None


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


def member_ids(conn: sqlite3.Connection, group_id: str) -> list[str]:
    """The group's member ids in user id order. As one JSON array that SQLite builds and orjson parses: a third of
    the time of fetching a row per member (10,000 members: 7 ms against 20). The aggregate takes the rows in the
    subquery's order (SQLite before 3.44 has no ORDER BY inside an aggregate; the primary key gives that order)."""
    found = conn.execute(
        "SELECT json_group_array(user_id) FROM "
        "(SELECT user_id FROM group_members WHERE group_id = ? ORDER BY user_id)", (group_id,)).fetchone()[0]
    ids: list[str] = orjson.loads(found)
    return ids


def groups_of(conn: sqlite3.Connection, user_ids: Sequence[str]) -> dict[str, list[Membership]]:
    """Each user's groups by folded displayName: the memberships from the covering index by user, then each group
    they name once, ordered here. A list page's users share a few groups, and joining groups to every membership
    and sorting them in SQL cost more than the lookup itself (callgrind: 100 users in 2 groups, 2.5M -> 1.4M
    instructions of SQL). Each group is one Membership, shared by the lists of all its members."""
    found: dict[str, list[Membership]] = {user_id: [] for user_id in user_ids}
    pairs: list[tuple[str, str]] = []
    for chunk in chunks(user_ids):
        pairs += _tuples(conn).execute(
            f"SELECT user_id, group_id FROM group_members WHERE user_id IN ({placeholders(len(chunk))})", chunk)
    if not pairs:
        return found
    groups: dict[str, tuple[str, Membership]] = {}
    for chunk in chunks(list(dict.fromkeys(group_id for _, group_id in pairs))):
        for group_id, display_name, key in _tuples(conn).execute(
            f"SELECT id, display_name, display_name_key FROM groups WHERE id IN ({placeholders(len(chunk))})", chunk,
        ):
            groups[group_id] = (key, Membership(group_id, display_name))
    keyed: dict[str, list[tuple[str, Membership]]] = {}
    for user_id, group_id in pairs:
        keyed.setdefault(user_id, []).append(groups[group_id])  # group_members references groups
    for user_id, held in keyed.items():
        # display_name_key is unique, so the sort never compares two Memberships; str order is SQLite's BINARY
        # order of the UTF-8 text, as ORDER BY gave it.
        held.sort()
        found[user_id] = [membership for _, membership in held]
    return found


def missing_users(conn: sqlite3.Connection, user_ids: Sequence[str]) -> list[str]:
    """The ids among `user_ids` that name no user."""
    existing: set[str] = set()
    for chunk in chunks(user_ids):
        existing.update(row[0] for row in conn.execute(
            f"SELECT id FROM users WHERE id IN ({placeholders(len(chunk))})", tuple(chunk)))
    return [user_id for user_id in user_ids if user_id not in existing]


def add_users(conn: sqlite3.Connection, group_id: str, user_ids: Sequence[str], now: str) -> list[str]:
    """Add the ids that name users as members, ones already there left alone; the ids newly added. One statement
    per id: the user's existence is checked by the insert itself, not by a query of its own."""
    insert = "INSERT OR IGNORE INTO group_members (group_id, user_id, added) SELECT ?, id, ? FROM users WHERE id = ?"
    return [user_id for user_id in user_ids if conn.execute(insert, (group_id, now, user_id)).rowcount > 0]


def remove_members(conn: sqlite3.Connection, group_id: str, user_ids: Sequence[str]) -> list[str]:
    """Remove the given members. Returns the ids that were members."""
    delete_one = "DELETE FROM group_members WHERE group_id = ? AND user_id = ?"
    return [user_id for user_id in user_ids if conn.execute(delete_one, (group_id, user_id)).rowcount > 0]


def member_ids_matching(conn: sqlite3.Connection, group_id: str, condition: Node) -> list[str]:
    """Ids of the members of a group that satisfy a resolved member filter (PATCH `members[...]`)."""
    where, params = compile_member_filter(condition, "m")
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


def group_summaries(conn: sqlite3.Connection, limit: int) -> list[GroupSummary]:
    """The first `limit` groups by name, each with its member count (a count over group_members' key)."""
    return [GroupSummary(*row) for row in conn.execute(
        "SELECT g.id, g.display_name, (SELECT count(*) FROM group_members m WHERE m.group_id = g.id) "
        "FROM groups g ORDER BY g.display_name_key LIMIT ?", (limit,))]


def names_of(conn: sqlite3.Connection, user_ids: Sequence[str], group_ids: Sequence[str]
             ) -> tuple[dict[str, str], dict[str, str]]:
    """The userName of each existing user and the displayName of each existing group among the ids."""
    users: dict[str, str] = {}
    groups: dict[str, str] = {}
    for chunk in chunks(user_ids):
        users.update(conn.execute(f"SELECT id, user_name FROM users WHERE id IN ({placeholders(len(chunk))})",
                                  tuple(chunk)).fetchall())
    for chunk in chunks(group_ids):
        groups.update(conn.execute(f"SELECT id, display_name FROM groups WHERE id IN ({placeholders(len(chunk))})",
                                   tuple(chunk)).fetchall())
    return users, groups


def membership_times(conn: sqlite3.Connection, user_id: str) -> dict[str, str]:
    """Group id -> when the user was added to it, for each group the user is in (group_members_by_user)."""
    return dict(conn.execute("SELECT group_id, added FROM group_members WHERE user_id = ?", (user_id,)).fetchall())
