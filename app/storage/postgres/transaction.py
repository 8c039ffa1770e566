"""The storage interface's Transaction on one PostgreSQL connection: each concern's SQL, as SQLite's engine has it.

Every statement goes through `Tx.sql`, which notes a serialization failure or a deadlock even if the body then
swallows the error (a Bulk operation's savepoint does): the engine then runs the body again from the start,
whatever it returned, so a conflict never becomes an answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
from psycopg import errors as pg_errors

from app.protocol.folding import fold_case
from app.protocol.resolved import Node, SearchQuery
from app.protocol.schema_defs import USER_RESOURCE, ResourceType
from app.storage.derived_columns import derived_columns
from app.storage.errors import (
    DocumentTooLarge,
    IntegrityViolation,
    TokenNameTaken,
    TransactionConflict,
    UniquenessConflict,
)
from app.storage.postgres.compiler import compile_filter, compile_member_filter, compile_sort
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
from app.storage.search_key import term_spans_fields, user_search_key

# The errors after which PostgreSQL asks for the whole transaction to be tried again.
RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)
# pg_advisory_xact_lock key taken before appending to the feed, held to the commit: events commit in seq order,
# so a reader (a webhook cursor, the feed's `after`) that has seen seq N never later finds a smaller seq appear.
FEED_LOCK = 0x726F6C6C66656564  # "rollfeed"
KEPT_DELIVERIES = 200


class Conflict(TransactionConflict):
    """The transaction met a serialization failure or a deadlock: run it again."""

    def __init__(self, error: psycopg.Error, statement: str) -> None:
        super().__init__(str(error))
        self.sqlstate = error.sqlstate or "?"
        self.statement = _statement_name(statement)


class NotYourTurn(Conflict):
    """A write's first attempt began while another ran alone (engine.WRITE_TURNS): its snapshot may be older than
    that write's commit, so the engine runs it again once its turn comes, not counting it as a conflict."""

    SQLSTATE = "-"
    STATEMENT = "(not its turn)"

    def __init__(self, reason: str) -> None:
        TransactionConflict.__init__(self, reason)
        self.sqlstate = self.SQLSTATE
        self.statement = self.STATEMENT


def _statement_name(statement: str) -> str:
    """The start of a statement's fixed text (values travel as parameters, so none is in it): for diagnostics."""
    return " ".join(statement.split())[:80]


def fold_document(value: Any) -> Any:
    """The document with every string value case-folded (keys kept): what case-insensitive filters compare."""
    if isinstance(value, str):
        return fold_case(value)
    if isinstance(value, list):
        return [fold_document(item) for item in value]
    if isinstance(value, dict):
        return {key: fold_document(item) for key, item in value.items()}
    return value


class Tx:
    """One transaction on `conn`, begun with its first statement (`begin`), which the engine commits or rolls back."""

    def __init__(self, conn: psycopg.Connection, begin: str | None = None, turn: int | None = None) -> None:
        self.conn = conn
        self.doomed = False
        self.conflicted: tuple[str, str] | None = None  # (SQLSTATE, statement) of the conflict that doomed it
        self._savepoints = 0
        # BEGIN, sent in one pipeline with the body's first statement (one round trip to the server, not two), and
        # with it, for a write's first attempt, the try for its turn (`turn`, the key of engine.WRITE_TURNS).
        self._begin = begin
        self._turn = turn
        self.resources = _Resources(self)
        self.members = _Members(self)
        self.roster = _Roster(self)
        self.feed = _Feed(self)
        self.holds = _Holds(self)
        self.tokens = _Tokens(self)
        self.webhooks = _Webhooks(self)
        self.settings = _Settings(self)
        self.sessions = _Sessions(self)

    def sql(self, statement: str, params: Sequence[Any] | None = None,
            before: Sequence[tuple[str, Sequence[Any]]] = ()) -> psycopg.Cursor[Any]:
        """Run `statement` (composed here from fixed text; values travel as params), after the statements `before`
        whose results nobody reads, all in one round trip to the server."""
        try:
            if self._begin is None and not before:
                return self.conn.execute(statement, params)
            with self.conn.pipeline():
                turn = self._send_begin() if self._begin is not None else None
                for earlier, earlier_params in before:
                    self.conn.execute(earlier, earlier_params)
                cursor = self.conn.execute(statement, params)  # its results arrive as the pipeline ends
            self._check_turn(turn)
            return cursor
        except RETRYABLE as error:
            raise self._doom(error, statement) from error
        except psycopg.IntegrityError as error:
            # A constraint the caller should have kept (a member who is no user): a bug, never a client's conflict.
            raise IntegrityViolation(str(error)) from error

    def many(self, statement: str, rows: Iterable[Sequence[Any]]) -> int:
        rows = list(rows)
        if not rows:
            return 0
        try:
            if self._begin is not None:
                with self.conn.pipeline():
                    turn = self._send_begin()
                self._check_turn(turn)
            with self.conn.cursor() as cursor:
                cursor.executemany(statement, rows)
                return cursor.rowcount
        except RETRYABLE as error:
            raise self._doom(error, statement) from error
        except psycopg.IntegrityError as error:
            raise IntegrityViolation(str(error)) from error

    def _send_begin(self) -> psycopg.Cursor[Any] | None:
        assert self._begin is not None
        self.conn.execute(self._begin)
        self._begin = None
        if self._turn is None:
            return None
        return self.conn.execute("SELECT pg_try_advisory_xact_lock_shared(%s)", (self._turn,))

    def _check_turn(self, turn: psycopg.Cursor[Any] | None) -> None:
        if turn is None:
            return
        row = turn.fetchone()
        if not (row and row[0]):
            self.doomed = True
            self.conflicted = (NotYourTurn.SQLSTATE, NotYourTurn.STATEMENT)
            raise NotYourTurn("a write running alone holds the turn")

    def commit(self) -> None:
        """COMMIT, unless the body sent no statement (then no transaction was begun)."""
        if self._begin is None:
            self.conn.execute("COMMIT")
        self._begin = None

    def _doom(self, error: psycopg.Error, statement: str) -> Conflict:
        conflict = Conflict(error, statement)
        self.doomed = True
        self.conflicted = self.conflicted or (conflict.sqlstate, conflict.statement)
        return conflict

    def scalar(self, statement: str, params: Sequence[Any] | None = None) -> Any:
        """The first column of the one row a statement answers (an aggregate, a RETURNING)."""
        row = self.sql(statement, params).fetchone()
        assert row is not None, "the statement answered no row"
        return row[0]

    def count(self, statement: str, params: Sequence[Any] | None = None) -> int:
        """A count(*) the statement answers."""
        return int(self.scalar(statement, params))

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._savepoints += 1
        name = f"s{self._savepoints}"
        self.sql(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            if not self.doomed:
                self.sql(f"ROLLBACK TO SAVEPOINT {name}")
                self.sql(f"RELEASE SAVEPOINT {name}")
            raise
        self.sql(f"RELEASE SAVEPOINT {name}")

    def guarded(self, statement: str, params: Sequence[Any], conflict: type[Exception], *args: Any) -> Any:
        """Run a statement that may break a unique index, in a savepoint so that the transaction goes on."""
        self.sql("SAVEPOINT unique_check")
        try:
            cursor = self.sql(statement, params)
        except IntegrityViolation as error:
            self.sql("ROLLBACK TO SAVEPOINT unique_check")
            if isinstance(error.__cause__, pg_errors.UniqueViolation):
                raise conflict(*(args or (str(error),))) from error.__cause__
            raise
        self.sql("RELEASE SAVEPOINT unique_check")
        return cursor



# -- resources ---------------------------------------------------------------------------------------

_USER_COLUMNS = ("user_name", "user_name_key", "external_id", "display_name", "active", "search_key")
_GROUP_COLUMNS = ("display_name", "display_name_key", "external_id")


def _table(resource_type: ResourceType) -> tuple[str, tuple[str, ...]]:
    return ("users", _USER_COLUMNS) if resource_type is USER_RESOURCE else ("groups", _GROUP_COLUMNS)


def _encode(document: dict[str, Any], max_bytes: int | None) -> tuple[str, str]:
    encoded = orjson.dumps(document)
    if max_bytes is not None and len(encoded) > max_bytes:
        raise DocumentTooLarge(len(encoded), max_bytes)
    return encoded.decode(), orjson.dumps(fold_document(document)).decode()


def _email_keys(document: dict[str, Any]) -> set[str]:
    emails = document.get("emails")
    if not isinstance(emails, list):
        return set()
    return {fold_case(e["value"]) for e in emails if isinstance(e, dict) and isinstance(e.get("value"), str)}


def _resource(row: Sequence[Any], offset: int = 0) -> StoredResource:
    return StoredResource(row[offset], row[offset + 1], row[offset + 2], row[offset + 3], row[offset + 4])


class _Part:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx


# The FIELDs schema.postgres.sql indexes on their own (a primary key, a unique or a plain index): an equality on
# one of them is an index seek (Resources.find); `active eq true` is not, and would scan.
_SEEKABLE = frozenset({("User", "id"), ("User", "userName"), ("User", "externalId"),
                       ("Group", "id"), ("Group", "displayName"), ("Group", "externalId")})


class _Resources(_Part):
    def get(self, resource_type: ResourceType, resource_id: str) -> StoredResource | None:
        table, _ = _table(resource_type)
        row = self.tx.sql(f"SELECT id, doc, created, last_modified, version FROM {table} WHERE id = %s",
                          (resource_id,)).fetchone()
        return _resource(row) if row else None

    def insert(self, resource_type: ResourceType, resource_id: str, document: dict[str, Any], now: str,
               max_bytes: int | None = None) -> StoredResource:
        table, columns = _table(resource_type)
        doc, folded = _encode(document, max_bytes)
        marks = ", ".join(["%s"] * len(columns))
        self.tx.guarded(
            f"INSERT INTO {table} (id, {', '.join(columns)}, doc, doc_folded, created, last_modified, version) "
            f"VALUES (%s, {marks}, %s::jsonb, %s::jsonb, %s, %s, 1)",
            (resource_id, *derived_columns(resource_type, document), doc, folded, now, now), UniquenessConflict)
        # A user that did not exist a moment ago has no roster entry to copy a search key onto (see sqlite's).
        if resource_type is USER_RESOURCE:
            self._put_emails(resource_id, document, replacing=False)
        return StoredResource(resource_id, document, now, now, 1)

    def update(self, resource_type: ResourceType, current: StoredResource, document: dict[str, Any], now: str,
               max_bytes: int | None = None) -> StoredResource:
        table, columns = _table(resource_type)
        doc, folded = _encode(document, max_bytes)
        assignments = ", ".join(f"{column} = %s" for column in columns)
        derived = derived_columns(resource_type, document)
        statement = (f"UPDATE {table} SET {assignments}, doc = %s::jsonb, doc_folded = %s::jsonb, "
                     "last_modified = %s, version = version + 1 WHERE id = %s")
        params = (*derived, doc, folded, now, current.id)
        # The unique key is the folded name (column 1): unchanged, the update cannot break the unique index, and the
        # savepoint that would catch it (two round trips to the server) is left out.
        if derived[1] == derived_columns(resource_type, current.document)[1]:
            self.tx.sql(statement, params)
        else:
            self.tx.guarded(statement, params, UniquenessConflict)
        if resource_type is USER_RESOURCE and _email_keys(document) != _email_keys(current.document):
            self._put_emails(current.id, document, replacing=True)
        if resource_type is USER_RESOURCE and user_search_key(document) != user_search_key(current.document):
            self._put_search_key(current.id, document)
        return StoredResource(current.id, document, current.created, now, current.version + 1)

    def group_summaries(self, limit: int) -> list[GroupSummary]:
        return [GroupSummary(*row) for row in self.tx.sql(
            "SELECT g.id, g.display_name, (SELECT count(*) FROM group_members m WHERE m.group_id = g.id) "
            "FROM groups g ORDER BY g.display_name_key LIMIT %s", (limit,))]

    def names_of(self, user_ids: Sequence[str], group_ids: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
        users: dict[str, str] = {}
        groups: dict[str, str] = {}
        if user_ids:
            users.update(self.tx.sql("SELECT id, user_name FROM users WHERE id = ANY(%s)", (list(user_ids),)))
        if group_ids:
            groups.update(self.tx.sql("SELECT id, display_name FROM groups WHERE id = ANY(%s)", (list(group_ids),)))
        return users, groups

    def _put_emails(self, user_id: str, document: dict[str, Any], replacing: bool) -> None:
        if replacing:
            self.tx.sql("DELETE FROM user_emails WHERE user_id = %s", (user_id,))
        self.tx.many("INSERT INTO user_emails (email_key, user_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                     [(key, user_id) for key in sorted(_email_keys(document))])

    def _put_search_key(self, user_id: str, document: dict[str, Any] | None) -> None:
        """Copy the user's search key onto their roster entry (None: the user is deleted, and the entry a hold
        keeps is found by its own name only)."""
        if document is None:
            self.tx.sql("UPDATE roster SET search_key = user_name_key WHERE user_id = %s", (user_id,))
        else:
            self.tx.sql("UPDATE roster SET search_key = %s WHERE user_id = %s", (user_search_key(document), user_id))

    def touch(self, resource_type: ResourceType, current: StoredResource, now: str) -> StoredResource:
        table, _ = _table(resource_type)
        self.tx.sql(f"UPDATE {table} SET last_modified = %s, version = version + 1 WHERE id = %s", (now, current.id))
        return StoredResource(current.id, current.document, current.created, now, current.version + 1)

    def touch_groups(self, group_ids: Sequence[str], now: str) -> None:
        if group_ids:
            self.tx.sql("UPDATE groups SET last_modified = %s, version = version + 1 WHERE id = ANY(%s)",
                        (now, sorted(set(group_ids))))

    def delete(self, resource_type: ResourceType, resource_id: str) -> bool:
        table, _ = _table(resource_type)
        deleted = bool(self.tx.sql(f"DELETE FROM {table} WHERE id = %s", (resource_id,)).rowcount > 0)
        if deleted and resource_type is USER_RESOURCE:
            self._put_search_key(resource_id, None)
        return deleted

    # -- searches ----------------------------------------------------------------------------------
    def _where(self, query: SearchQuery) -> tuple[str, list[Any]]:
        if query.filter is None:
            return "TRUE", []
        return compile_filter(query.resource_type, query.filter)

    def find(self, query: SearchQuery, limit: int) -> list[StoredResource] | None:
        equality = query.equality()
        if equality is None or limit <= 0 or (query.resource_type.name, equality.value.keys[0]) not in _SEEKABLE:
            return None
        table, _ = _table(query.resource_type)
        where, params = self._where(query)
        return [_resource(row) for row in self.tx.sql(
            f"SELECT id, doc, created, last_modified, version FROM {table} AS r WHERE {where} LIMIT %s",
            [*params, limit])]

    def count(self, query: SearchQuery) -> int:
        table, _ = _table(query.resource_type)
        where, params = self._where(query)
        return self.tx.count(f"SELECT count(*) FROM {table} AS r WHERE {where}", params)

    def page(self, query: SearchQuery, limit: int, offset: int, max_bytes: int) -> tuple[list[Found], bool]:
        if limit <= 0:
            return [], False
        table, _ = _table(query.resource_type)
        where, params = self._where(query)
        order, order_params = self._order(query, backwards=False)
        sql = (f"SELECT r.rowid, NULL, id, doc, created, last_modified, version FROM {table} AS r WHERE {where} "
               f"ORDER BY {order} LIMIT %s OFFSET %s")
        return self._take(sql, [*params, *order_params, limit + 1, offset], limit, max_bytes)

    def _where_beyond(self, query: SearchQuery, key: Key | None, backwards: bool) -> tuple[str, list[Any]]:
        """The query's condition, narrowed to the rows after `key` in its order (before it, backwards)."""
        where, params = self._where(query)
        if key is None:
            return where, params
        beyond, beyond_params = self._beyond(query, key, backwards)
        return f"({where}) AND {beyond}", [*params, *beyond_params]

    def seek(self, query: SearchQuery, key: Key | None, limit: int, max_bytes: int, backwards: bool = False
             ) -> tuple[list[Found], bool]:
        table, _ = _table(query.resource_type)
        where, params = self._where_beyond(query, key, backwards)
        value_sql, value_params = self._sort(query)
        order, order_params = self._order(query, backwards)
        sql = (f"SELECT r.rowid, {value_sql}, id, doc, created, last_modified, version FROM {table} AS r "
               f"WHERE {where} ORDER BY {order} LIMIT %s")
        return self._take(sql, [*value_params, *params, *order_params, max(0, limit) + 1], limit, max_bytes)

    def skip(self, query: SearchQuery, key: Key | None, rows: int) -> Key | None:
        table, _ = _table(query.resource_type)
        where, params = self._where_beyond(query, key, False)
        value_sql, value_params = self._sort(query)
        order, order_params = self._order(query, False)
        row = self.tx.sql(f"SELECT r.rowid, {value_sql} FROM {table} AS r WHERE {where} ORDER BY {order} "
                          "LIMIT 1 OFFSET %s", [*value_params, *params, *order_params, max(0, rows - 1)]).fetchone()
        return None if row is None else Key(row[0], row[1])

    def anchors(self, query: SearchQuery, key: Key | None, every: int, count: int) -> list[Key]:
        if query.sort is not None and query.sort.value is not None:
            found: list[Key] = []
            while len(found) < count and (next_key := self.skip(query, found[-1] if found else key, every)):
                found.append(next_key)
            return found
        # In rowid order, every step in one statement: one round trip, not one per anchor (390 at 100,000 rows).
        table, _ = _table(query.resource_type)
        where, params = self._where(query)

        def step(beyond: str) -> str:
            return f"(SELECT r.rowid FROM {table} AS r WHERE ({where}) AND {beyond} ORDER BY r.rowid LIMIT 1 OFFSET %s)"

        first, first_params = (step("r.rowid > %s"), [*params, key.rowid]) if key is not None \
            else (step("TRUE"), list(params))
        rows = self.tx.sql(
            f"WITH RECURSIVE a(k, i) AS (SELECT {first}, 1 UNION ALL "
            f"SELECT {step('r.rowid > a.k')}, a.i + 1 FROM a WHERE a.k IS NOT NULL AND a.i < %s) "
            "SELECT k FROM a WHERE k IS NOT NULL ORDER BY i",
            [*first_params, every - 1, *params, every - 1, count]).fetchall()
        return [Key(row[0]) for row in rows]

    def snapshot(self) -> str | None:
        # Two snapshots alike (xmin:xmax:in-progress xids) see the same committed transactions, on every instance.
        return str(self.tx.scalar("SELECT pg_current_snapshot()::text"))

    @staticmethod
    def _sort(query: SearchQuery) -> tuple[str, list[Any]]:
        if query.sort is None:
            return "NULL", []
        return compile_sort(query.resource_type, query.sort)

    def _order(self, query: SearchQuery, backwards: bool) -> tuple[str, list[Any]]:
        rowid = "r.rowid DESC" if backwards else "r.rowid"
        if query.sort is None or query.sort.value is None:
            return rowid, []
        expr, params = self._sort(query)
        direction = "DESC" if query.descending != backwards else "ASC"
        nulls = "DESC" if backwards else "ASC"
        return f"({expr}) IS NULL {nulls}, ({expr}) {direction}, {rowid}", [*params, *params]

    def _beyond(self, query: SearchQuery, key: Key, backwards: bool) -> tuple[str, list[Any]]:
        rowid = "<" if backwards else ">"
        if query.sort is None or query.sort.value is None:
            return f"r.rowid {rowid} %s", [key.rowid]
        expr, params = self._sort(query)
        if key.value is None:
            if backwards:
                return f"(({expr}) IS NOT NULL OR r.rowid < %s)", [*params, key.rowid]
            return f"(({expr}) IS NULL AND r.rowid > %s)", [*params, key.rowid]
        later = "<" if query.descending != backwards else ">"
        same_or_past = f"(({expr}) {later} %s OR (({expr}) = %s AND r.rowid {rowid} %s))"
        past = [*params, key.value, *params, key.value, key.rowid]
        if backwards:
            return f"(({expr}) IS NOT NULL AND {same_or_past})", [*params, *past]
        return f"(({expr}) IS NULL OR {same_or_past})", [*params, *past]

    def _take(self, sql: str, params: list[Any], limit: int, max_bytes: int) -> tuple[list[Found], bool]:
        found: list[Found] = []
        used = 0
        cursor = self.tx.sql(sql, params)
        for row in cursor:
            # Encoded once, for the budget and for the page, which splices it (representation.PageFramer).
            document_json = orjson.dumps(row[3])
            used += len(document_json)
            if len(found) >= limit or (found and used > max_bytes):
                return found, True
            resource = StoredResource(row[2], row[3], row[4], row[5], row[6], document_json)
            found.append(Found(Key(row[0], row[1]), resource))
        return found, False


class _Members(_Part):
    def of_groups(self, group_ids: Sequence[str], with_display: bool = False) -> dict[str, list[Member]]:
        display = "coalesce(nullif(u.display_name, ''), u.user_name)" if with_display else "''"
        join = "JOIN users u ON u.id = m.user_id " if with_display else ""
        found: dict[str, list[Member]] = {group_id: [] for group_id in group_ids}
        if not group_ids:
            return found
        for group_id, user_id, shown in self.tx.sql(
                f"SELECT m.group_id, m.user_id, {display} FROM group_members m {join}"
                "WHERE m.group_id = ANY(%s) ORDER BY m.group_id, m.user_id", (list(group_ids),)):
            found[group_id].append(Member(user_id, shown))
        return found

    def member_ids(self, group_id: str) -> list[str]:
        # One text[] value, which psycopg parses in C, rather than a row per member.
        found: list[str] | None = self.tx.scalar(
            "SELECT array_agg(user_id ORDER BY user_id) FROM group_members WHERE group_id = %s", (group_id,))
        return found or []

    def groups_of(self, user_ids: Sequence[str]) -> dict[str, list[Membership]]:
        found: dict[str, list[Membership]] = {user_id: [] for user_id in user_ids}
        if not user_ids:
            return found
        for user_id, group_id, name in self.tx.sql(
                "SELECT m.user_id, m.group_id, g.display_name FROM group_members m JOIN groups g ON g.id = m.group_id "
                "WHERE m.user_id = ANY(%s) ORDER BY m.user_id, g.display_name_key", (list(user_ids),)):
            found[user_id].append(Membership(group_id, name))
        return found

    def has_more_than(self, group_id: str, limit: int) -> bool:
        return self.tx.sql("SELECT 1 FROM group_members WHERE group_id = %s LIMIT 1 OFFSET %s",
                           (group_id, limit)).fetchone() is not None

    def missing_users(self, user_ids: Sequence[str]) -> list[str]:
        if not user_ids:
            return []
        existing = {row[0] for row in self.tx.sql("SELECT id FROM users WHERE id = ANY(%s)", (list(user_ids),))}
        return [user_id for user_id in user_ids if user_id not in existing]

    def add_users(self, group_id: str, user_ids: Sequence[str], now: str) -> list[str]:
        if not user_ids:
            return []
        added = {row[0] for row in self.tx.sql(
            "INSERT INTO group_members (group_id, user_id, added) SELECT %s, u.id, %s FROM users u "
            "WHERE u.id = ANY(%s) ON CONFLICT DO NOTHING RETURNING user_id", (group_id, now, list(user_ids)))}
        return [user_id for user_id in dict.fromkeys(user_ids) if user_id in added]

    def remove(self, group_id: str, user_ids: Sequence[str]) -> list[str]:
        if not user_ids:
            return []
        removed = {row[0] for row in self.tx.sql(
            "DELETE FROM group_members WHERE group_id = %s AND user_id = ANY(%s) RETURNING user_id",
            (group_id, list(user_ids)))}
        return [user_id for user_id in dict.fromkeys(user_ids) if user_id in removed]

    def matching(self, group_id: str, condition: Node) -> list[str]:
        where, params = compile_member_filter(condition)
        return [row[0] for row in self.tx.sql(
            f"SELECT m.user_id FROM group_members m WHERE m.group_id = %s AND ({where}) ORDER BY m.user_id",
            (group_id, *params))]

    def all_of(self, group_id: str) -> list[str]:
        return [row[0] for row in self.tx.sql(
            "SELECT user_id FROM group_members WHERE group_id = %s ORDER BY user_id", (group_id,))]

    def groups_of_user(self, user_id: str) -> list[str]:
        return [row[0] for row in self.tx.sql(
            "SELECT group_id FROM group_members WHERE user_id = %s ORDER BY group_id", (user_id,))]

    def joined(self, user_id: str) -> dict[str, str]:
        return dict(self.tx.sql("SELECT group_id, added FROM group_members WHERE user_id = %s", (user_id,)))


# -- the roster, the feed and settings ---------------------------------------------------------------------------

_PRIMARY_EMAIL = ("(SELECT e.value ->> 'value' FROM jsonb_array_elements(CASE WHEN jsonb_typeof(u.doc -> 'emails') "
                  "= 'array' THEN u.doc -> 'emails' END) WITH ORDINALITY AS e (value, n) "
                  "ORDER BY coalesce(e.value -> 'primary' = 'true'::jsonb, FALSE) DESC, e.n LIMIT 1)")
_MEMBER_TYPES = "('member.joined', 'member.left', 'member.role_changed')"
_ROSTER_AT = f"""
WITH last AS (
    SELECT user_id, max(seq) AS seq FROM events WHERE type IN {_MEMBER_TYPES} AND at <= %s GROUP BY user_id
), joined AS (
    SELECT user_id, max(seq) AS seq FROM events WHERE type = 'member.joined' AND at <= %s GROUP BY user_id
), roster_then AS (
    SELECT e.user_id, e.data, e.user_name_key,
           CASE e.type WHEN 'member.joined' THEN e.data ->> 'role' ELSE e.data ->> 'to' END AS role,
           (SELECT j.at FROM events j WHERE j.seq = joined.seq) AS since
    FROM last JOIN events e ON e.seq = last.seq JOIN joined ON joined.user_id = last.user_id
    WHERE e.type <> 'member.left'
)
SELECT t.user_id, coalesce(u.user_name, t.data ->> 'userName') AS user_name, u.display_name, t.role,
       t.since, {_PRIMARY_EMAIL} AS email, coalesce(u.user_name_key, t.user_name_key) AS sort_key,
       u.doc_folded ->> 'displayName' AS display_key, t.data -> 'groups' AS groups, NULL::bigint AS hold,
       coalesce(u.search_key, t.user_name_key) AS search_key
FROM roster_then t LEFT JOIN users u ON u.id = t.user_id
"""
# A held user may have been deleted: then the roster's own name is all there is, so users is joined LEFT.
_ROSTER_NOW = f"""
SELECT r.user_id, coalesce(u.user_name, r.user_name) AS user_name, u.display_name, r.role, r.since,
       {_PRIMARY_EMAIL} AS email, r.user_name_key AS sort_key, u.doc_folded ->> 'displayName' AS display_key,
       NULL::jsonb AS groups,
       (SELECT h.hold_id FROM held h WHERE h.user_id = r.user_id AND h.outcome IS NULL) AS hold, r.search_key
FROM roster r LEFT JOIN users u ON u.id = r.user_id
"""


def _like_literal(text: str) -> str:
    """`text` as a LIKE pattern that matches itself only (backslash is LIKE's default escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def member_sql(base: str, params: list[Any], query: MemberQuery) -> tuple[str, list[Any]]:
    """A members page over `base` (_ROSTER_NOW, or _ROSTER_AT with its moment in `params`): statement, parameters."""
    where: list[str] = []
    if query.role is not None:
        where.append("role = %s")
        params.append(query.role)
    if query.q:
        # One column per entry (app/storage/search_key.py). LIKE, not strpos: roster_search_trigrams (pg_trgm)
        # answers it for a rare term, where walking the roster's order would read every row (0.5 s at 100,000);
        # the planner walks the order instead when the term is common. The term is literal (% _ \ escaped).
        # A term holding the key's separator is looked for in each field alone as well (rare).
        where.append("search_key LIKE %s")
        params.append(f"%{_like_literal(query.q)}%")
        if term_spans_fields(query.q):
            # display_key: the displayName from doc_folded, folded by rollcall as everything compared without case.
            where.append("(strpos(sort_key, %s) > 0 OR strpos(coalesce(display_key, ''), %s) > 0 OR EXISTS "
                         "(SELECT 1 FROM user_emails m WHERE m.user_id = listed.user_id "
                         "AND strpos(m.email_key, %s) > 0))")
            params.extend([query.q] * 3)
    if query.after is not None:
        where.append("(sort_key, user_id) > (%s, %s)")
        params.extend(query.after)
    sql = (f"SELECT * FROM ({base}) AS listed {'WHERE ' + ' AND '.join(where) if where else ''} "
           "ORDER BY sort_key, user_id LIMIT %s")
    params.append(query.limit)
    return sql, params


class _Roster(_Part):
    def role_inputs(self, user_ids: Sequence[str]) -> dict[str, RoleInputs]:
        found: dict[str, RoleInputs] = {}
        if not user_ids:
            return found
        for user_id, user_name, active, group_name in self.tx.sql(
                "SELECT u.id, u.user_name, u.active, g.display_name FROM users u "
                "LEFT JOIN group_members m ON m.user_id = u.id LEFT JOIN groups g ON g.id = m.group_id "
                "WHERE u.id = ANY(%s)", (list(user_ids),)):
            inputs = found.setdefault(user_id, RoleInputs(user_name, bool(active), []))
            if group_name is not None:
                inputs.group_names.append(group_name)
        return found

    def all_user_ids(self) -> list[str]:
        return [row[0] for row in self.tx.sql("SELECT id FROM users UNION SELECT user_id FROM roster")]

    def entries(self, user_ids: Sequence[str]) -> dict[str, RosterEntry]:
        if not user_ids:
            return {}
        return {row[0]: RosterEntry(*row) for row in self.tx.sql(
            "SELECT user_id, user_name, role, since FROM roster WHERE user_id = ANY(%s)", (list(user_ids),))}

    def put(self, entries: Sequence[RosterEntry]) -> None:
        # search_key: the user's (app/storage/search_key.py), or the entry's own name when the user is gone.
        self.tx.many(
            "INSERT INTO roster (user_id, user_name, user_name_key, role, since, search_key) "
            "VALUES (%s, %s, %s, %s, %s, coalesce((SELECT u.search_key FROM users u WHERE u.id = %s), %s)) "
            "ON CONFLICT (user_id) DO UPDATE SET user_name = excluded.user_name, "
            "user_name_key = excluded.user_name_key, role = excluded.role, since = excluded.since, "
            "search_key = excluded.search_key",
            [(e.user_id, e.user_name, key, e.role, e.since, e.user_id, key)
             for e in sorted(entries, key=lambda e: e.user_id) for key in (fold_case(e.user_name),)])

    def drop(self, user_ids: Sequence[str]) -> None:
        if user_ids:
            self.tx.sql("DELETE FROM roster WHERE user_id = ANY(%s)", (list(user_ids),))

    def _rows(self, base: str, params: list[Any], query: MemberQuery) -> list[dict[str, Any]]:
        return [
            {"id": row[0], "userName": row[1], "displayName": row[2], "role": row[3], "since": row[4],
             "email": row[5], "sortKey": row[6], "recordedGroups": row[8] if row[8] else None,
             "held": row[9] is not None, **({"hold": row[9]} if row[9] is not None else {})}
            for row in self.tx.sql(*member_sql(base, params, query))
        ]

    def members(self, query: MemberQuery | None = None) -> list[dict[str, Any]]:
        return self._rows(_ROSTER_NOW, [], query or MemberQuery())

    def members_at(self, at: str, query: MemberQuery | None = None) -> list[dict[str, Any]]:
        return self._rows(_ROSTER_AT, [at, at], query or MemberQuery())

    def users_named(self, key: str) -> list[NamedUser]:
        found = [NamedUser(row[0], row[1], row[2], True) for row in self.tx.sql(
            "SELECT u.id, u.user_name, r.role FROM users u LEFT JOIN roster r ON r.user_id = u.id "
            "WHERE u.user_name_key = %s", (key,))]
        seen = {user.user_id for user in found}
        found.extend(NamedUser(row[0], row[1], row[2], False) for row in self.tx.sql(
            "SELECT u.id, u.user_name, r.role FROM user_emails e JOIN users u ON u.id = e.user_id "
            "LEFT JOIN roster r ON r.user_id = u.id WHERE e.email_key = %s ORDER BY u.id", (key,))
            if row[0] not in seen)
        return found

    def role_counts(self) -> dict[str, int]:
        return dict(self.tx.sql("SELECT role, count(*) FROM roster GROUP BY role"))


def _event(row: Sequence[Any]) -> dict[str, Any]:
    event: dict[str, Any] = {"seq": row[0], "time": row[1], "type": row[2], "token": row[3]}
    event.update(row[4])
    return event


def _user_name_key(event: Event) -> str | None:
    """The folded userName a member event names: the roster at a moment orders a since-deleted user by it."""
    name = (event.data or {}).get("userName")
    return fold_case(name) if isinstance(name, str) else None


class _Feed(_Part):
    def append(self, events: Sequence[Event], at: str, actor: str) -> None:
        if not events:
            return
        # The lock and the rows in one round trip; the rows in the order given (seq follows it).
        self.tx.sql(
            "INSERT INTO events (at, type, actor, user_id, group_id, data, user_name_key) "
            "SELECT %s, e.type, %s, e.user_id, e.group_id, e.data::jsonb, e.user_name_key "
            "FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) WITH ORDINALITY "
            "AS e (type, user_id, group_id, data, user_name_key, n) ORDER BY e.n",
            (at, actor, [e.type for e in events], [e.user_id for e in events], [e.group_id for e in events],
             [orjson.dumps(e.data or {}).decode() for e in events], [_user_name_key(e) for e in events]),
            before=[("SELECT pg_advisory_xact_lock(%s)", (FEED_LOCK,))])

    def after(self, seq: int, limit: int) -> list[dict[str, Any]]:
        return [_event(row) for row in self.tx.sql(
            "SELECT seq, at, type, actor, data FROM events WHERE seq > %s ORDER BY seq LIMIT %s", (seq, limit))]

    def last_member_event(self, user_id: str) -> dict[str, Any] | None:
        row = self.tx.sql(
            "SELECT seq, at, type, actor, data FROM events WHERE user_id = %s AND starts_with(type, 'member.') "
            "ORDER BY seq DESC LIMIT 1", (user_id,)).fetchone()
        return _event(row) if row else None

    def last_seq(self) -> int:
        return self.tx.count("SELECT coalesce(max(seq), 0) FROM events")

    def of_user(self, user_id: str, limit: int) -> list[dict[str, Any]]:
        return [_event(row) for row in self.tx.sql(
            "SELECT seq, at, type, actor, data FROM events WHERE user_id = %s ORDER BY seq DESC LIMIT %s",
            (user_id, limit))]

    def newest(self, before: int | None, kind: str | None, limit: int) -> list[dict[str, Any]]:
        where: list[str] = ["TRUE"]
        params: list[Any] = []
        if before is not None:
            where.append("seq < %s")
            params.append(before)
        if kind is not None:
            where.append("(type = %s OR starts_with(type, %s))")
            params.extend([kind, f"{kind}."])
        return [_event(row) for row in self.tx.sql(
            f"SELECT seq, at, type, actor, data FROM events WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT %s",
            [*params, limit])]


class _Settings(_Part):
    def get(self, key: str) -> str | None:
        row = self.tx.sql("SELECT value FROM settings WHERE key = %s", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, value: str) -> None:
        self.tx.sql("INSERT INTO settings (key, value) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))


# -- console sessions ------------------------------------------------------------------------------

class _Sessions(_Part):
    def insert(self, id_hash: str, token_name: str, now: float) -> None:
        self.tx.sql("INSERT INTO console_sessions (id_hash, token_name, created, last_seen) VALUES (%s, %s, %s, %s)",
                    (id_hash, token_name, now, now))

    def find(self, id_hash: str, now_text: str) -> StoredSession | None:
        row = self.tx.sql(
            "SELECT s.token_name, s.created, s.last_seen, "
            "t.name IS NOT NULL AND t.revoked IS NULL AND (t.expires IS NULL OR t.expires > %s) "
            "FROM console_sessions s LEFT JOIN tokens t ON t.name = s.token_name WHERE s.id_hash = %s",
            (now_text, id_hash)).fetchone()
        return StoredSession(row[0], row[1], row[2], bool(row[3])) if row else None

    def touch(self, id_hash: str, now: float) -> None:
        self.tx.sql("UPDATE console_sessions SET last_seen = %s WHERE id_hash = %s AND last_seen < %s",
                    (now, id_hash, now))

    def delete(self, id_hash: str) -> None:
        self.tx.sql("DELETE FROM console_sessions WHERE id_hash = %s", (id_hash,))

    def delete_expired(self, created_before: float, seen_before: float) -> int:
        return self.tx.sql("DELETE FROM console_sessions WHERE created < %s OR last_seen < %s",
                           (created_before, seen_before)).rowcount

    def insert_link(self, code_hash: str, token_name: str, expires: float) -> None:
        self.tx.sql("INSERT INTO console_links (code_hash, token_name, expires) VALUES (%s, %s, %s)",
                    (code_hash, token_name, expires))

    def take_link(self, code_hash: str, now: float) -> str | None:
        row = self.tx.sql("DELETE FROM console_links WHERE code_hash = %s RETURNING token_name, expires",
                          (code_hash,)).fetchone()
        self.tx.sql("DELETE FROM console_links WHERE expires <= %s", (now,))
        return row[0] if row and row[1] > now else None


# -- holds ---------------------------------------------------------------------------------------------

_HELD_COLUMNS = "h.hold_id, h.user_id, h.user_name, h.role, h.becomes, h.reason, d.cause, h.outcome"
_HOLD_COLUMNS = ("d.id, d.opened, d.cause, d.actor, d.change, d.state, d.closed, d.closed_by, "
                 "(SELECT count(*) FROM held h WHERE h.hold_id = d.id AND (h.outcome IS NULL OR d.state <> 'open'))")


class _Holds(_Part):
    def held_now(self, user_ids: Sequence[str]) -> dict[str, Held]:
        if not user_ids:
            return {}
        return {row[1]: Held(*row) for row in self.tx.sql(
            f"SELECT {_HELD_COLUMNS} FROM held h JOIN holds d ON d.id = h.hold_id "
            "WHERE h.outcome IS NULL AND h.user_id = ANY(%s)", (list(user_ids),))}

    def held_in(self, hold_id: int, *, still_held: bool = True) -> list[Held]:
        where = "AND h.outcome IS NULL" if still_held else ""
        return [Held(*row) for row in self.tx.sql(
            f"SELECT {_HELD_COLUMNS} FROM held h JOIN holds d ON d.id = h.hold_id WHERE h.hold_id = %s {where} "
            "ORDER BY h.user_name", (hold_id,))]

    def open(self, now: str, cause: str, actor: str, change: dict[str, Any], people: Sequence[Held]) -> int:
        hold_id = self.tx.scalar(
            "INSERT INTO holds (opened, cause, actor, change) VALUES (%s, %s, %s, %s::jsonb) RETURNING id",
            (now, cause, actor, json.dumps(change, ensure_ascii=False)))
        self.tx.many(
            "INSERT INTO held (hold_id, user_id, user_name, role, becomes, reason) VALUES (%s, %s, %s, %s, %s, %s)",
            [(hold_id, p.user_id, p.user_name, p.role, p.becomes, p.reason) for p in people])
        return int(hold_id)

    def settle(self, hold_id: int, user_ids: Sequence[str], outcome: str) -> None:
        if user_ids:
            self.tx.sql("UPDATE held SET outcome = %s WHERE hold_id = %s AND user_id = ANY(%s) AND outcome IS NULL",
                        (outcome, hold_id, list(user_ids)))

    def still_held(self, hold_id: int) -> int:
        return self.tx.count("SELECT count(*) FROM held WHERE hold_id = %s AND outcome IS NULL",
                           (hold_id,))

    def close(self, hold_id: int, state: str, now: str, actor: str) -> None:
        self.tx.sql("UPDATE holds SET state = %s, closed = %s, closed_by = %s WHERE id = %s",
                    (state, now, actor, hold_id))

    def get(self, hold_id: int) -> Hold | None:
        row = self.tx.sql(f"SELECT {_HOLD_COLUMNS} FROM holds d WHERE d.id = %s", (hold_id,)).fetchone()
        return Hold(*row) if row else None

    def all_open(self) -> list[Hold]:
        return [Hold(*row) for row in self.tx.sql(
            f"SELECT {_HOLD_COLUMNS} FROM holds d WHERE d.state = 'open' ORDER BY d.id")]

    def admins_not_held(self) -> int:
        return self.tx.count(
            "SELECT count(*) FROM roster r WHERE r.role = 'admin' AND NOT EXISTS "
            "(SELECT 1 FROM held h WHERE h.user_id = r.user_id AND h.outcome IS NULL)")

    def window_since(self, start: str) -> Window:
        counts = self.tx.sql(
            "SELECT count(*) FILTER (WHERE type = 'member.joined'), count(*) FILTER (WHERE type = 'member.left'), "
            "count(*) FILTER (WHERE type = 'member.left' AND data ->> 'hold' IS NULL) FROM events "
            "WHERE type IN ('member.joined', 'member.left') AND at >= %s", (start,)).fetchone()
        assert counts is not None
        joined, left, unapproved = counts
        roster_now = self.tx.scalar("SELECT count(*) FROM roster")
        return Window(joined, left, unapproved, roster_now)


# -- tokens --------------------------------------------------------------------------------------------

_TOKEN_COLUMNS = "name, scopes, created, expires, last_used, revoked, previous_until"


class _Tokens(_Part):
    def insert(self, name: str, token_hash: str, now: str, scopes: str, expires: str | None) -> None:
        self.tx.guarded("INSERT INTO tokens (name, hash, created, scopes, expires) VALUES (%s, %s, %s, %s, %s)",
                        (name, token_hash, now, scopes, expires), TokenNameTaken, name)

    def find_live_hash(self, token_hash: str, now: str) -> LiveHash | None:
        row = self.tx.sql(
            "SELECT name, hash, scopes, expires FROM tokens WHERE hash = %s AND revoked IS NULL "
            "AND (expires IS NULL OR expires > %s)", (token_hash, now)).fetchone()
        if row:
            return LiveHash(row[0], row[1], row[2], row[3])
        row = self.tx.sql(
            "SELECT name, previous_hash, scopes, expires, previous_until FROM tokens WHERE previous_hash = %s "
            "AND revoked IS NULL AND previous_until > %s AND (expires IS NULL OR expires > %s)",
            (token_hash, now, now)).fetchone()
        if row:
            return LiveHash(row[0], row[1], row[2], min(row[4], row[3]) if row[3] else row[4])
        return None

    def get(self, name: str) -> TokenRecord | None:
        row = self.tx.sql(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE name = %s", (name,)).fetchone()
        return TokenRecord(*row) if row else None

    def list_all(self) -> list[TokenRecord]:
        return [TokenRecord(*row) for row in self.tx.sql(f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY created, name")]

    def count_live(self, now: str) -> int:
        return self.tx.count("SELECT count(*) FROM tokens WHERE revoked IS NULL AND (expires IS NULL OR expires > %s)",
                           (now,))

    def revoke(self, name: str, now: str) -> bool:
        return self.tx.sql("UPDATE tokens SET revoked = %s WHERE name = %s AND revoked IS NULL",
                           (now, name)).rowcount > 0

    def rotate(self, name: str, new_hash: str, now: str, previous_until: str) -> bool:
        return self.tx.sql(
            "UPDATE tokens SET previous_hash = hash, previous_until = %s, hash = %s "
            "WHERE name = %s AND revoked IS NULL AND (expires IS NULL OR expires > %s)",
            (previous_until, new_hash, name, now)).rowcount > 0

    def record_use(self, used: dict[str, str]) -> None:
        self.tx.many("UPDATE tokens SET last_used = %s WHERE name = %s AND (last_used IS NULL OR last_used < %s)",
                     [(at, name, at) for name, at in sorted(used.items())])


# -- webhooks ------------------------------------------------------------------------------------------

_ENDPOINT_COLUMNS = ("id, url, events, description, secret, created, cursor, state, consecutive_failures, "
                     "failing_since, retry_at, revision")


def _endpoint(row: Sequence[Any]) -> Endpoint:
    return Endpoint(*row)


class _Webhooks(_Part):
    def insert(self, url: str, patterns: list[str], description: str, secret: str, now: str) -> int:
        return int(self.tx.scalar(
            "INSERT INTO webhooks (url, events, description, secret, created, cursor) "
            "VALUES (%s, %s::jsonb, %s, %s, %s, (SELECT coalesce(max(seq), 0) FROM events)) RETURNING id",
            (url, json.dumps(patterns), description, secret, now)))

    def get(self, webhook_id: int) -> Endpoint | None:
        row = self.tx.sql(f"SELECT {_ENDPOINT_COLUMNS} FROM webhooks WHERE id = %s", (webhook_id,)).fetchone()
        return _endpoint(row) if row else None

    def all(self) -> list[Endpoint]:
        return [_endpoint(row) for row in self.tx.sql(f"SELECT {_ENDPOINT_COLUMNS} FROM webhooks ORDER BY id")]

    def ids(self) -> list[int]:
        return [row[0] for row in self.tx.sql("SELECT id FROM webhooks ORDER BY id")]

    def revisions(self) -> int:
        return int(self.tx.scalar("SELECT coalesce(sum(revision), 0) FROM webhooks"))

    def last_attempts(self) -> dict[int, Attempt]:
        return {row[0]: Attempt(*row[1:]) for row in self.tx.sql(
            "SELECT DISTINCT ON (webhook_id) webhook_id, seq, at, status, latency_ms, error FROM webhook_deliveries "
            "ORDER BY webhook_id, id DESC")}

    def delete(self, webhook_id: int) -> bool:
        return self.tx.sql("DELETE FROM webhooks WHERE id = %s", (webhook_id,)).rowcount > 0

    def set_secret(self, webhook_id: int, secret: str) -> bool:
        return self.tx.sql("UPDATE webhooks SET secret = %s, revision = revision + 1 WHERE id = %s",
                           (secret, webhook_id)).rowcount > 0

    def rewind(self, webhook_id: int, from_seq: int) -> bool:
        return self.tx.sql(
            "UPDATE webhooks SET cursor = %s, state = 'active', consecutive_failures = 0, failing_since = NULL, "
            "retry_at = NULL, revision = revision + 1 WHERE id = %s", (from_seq - 1, webhook_id)).rowcount > 0

    def skip_to(self, webhook_id: int, revision: int, seq: int) -> None:
        self.tx.sql("UPDATE webhooks SET cursor = %s WHERE id = %s AND revision = %s AND cursor < %s",
                    (seq, webhook_id, revision, seq))

    def record(self, webhook_id: int, revision: int, attempt: Attempt, *, delivered: bool, retry_at: float | None,
               failing_since: float | None, failing: bool) -> None:
        self.tx.sql(
            "INSERT INTO webhook_deliveries (webhook_id, seq, at, status, latency_ms, error) "
            "SELECT %s, %s, %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = %s)",
            (webhook_id, attempt.seq, attempt.at, attempt.status, attempt.latency_ms, attempt.error, webhook_id))
        if delivered:
            self.tx.sql(
                "UPDATE webhooks SET cursor = greatest(cursor, %s), consecutive_failures = 0, failing_since = NULL, "
                "retry_at = NULL WHERE id = %s AND revision = %s", (attempt.seq, webhook_id, revision))
        else:
            self.tx.sql(
                "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1, failing_since = %s, "
                "retry_at = %s, state = %s WHERE id = %s AND revision = %s",
                (failing_since, retry_at, "failing" if failing else "active", webhook_id, revision))
        self.tx.sql(
            "DELETE FROM webhook_deliveries WHERE webhook_id = %s AND id <= (SELECT id FROM webhook_deliveries "
            "WHERE webhook_id = %s ORDER BY id DESC LIMIT 1 OFFSET %s)", (webhook_id, webhook_id, KEPT_DELIVERIES))

    def deliveries(self, webhook_id: int, limit: int) -> list[Attempt]:
        return [Attempt(*row) for row in self.tx.sql(
            "SELECT seq, at, status, latency_ms, error FROM webhook_deliveries WHERE webhook_id = %s "
            "ORDER BY id DESC LIMIT %s", (webhook_id, limit))]
