"""SQL for the roster, the change feed and the database's own settings."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from app.protocol.folding import fold_case
from app.storage.records import Event, MemberQuery, NamedUser, RoleInputs, RosterEntry
from app.storage.search_key import term_spans_fields
from app.storage.sqlite.resources import chunks, placeholders


def role_inputs(conn: sqlite3.Connection, user_ids: Sequence[str]) -> dict[str, RoleInputs]:
    """For each existing user among `user_ids`: name, active flag and the names of all their groups."""
    found: dict[str, RoleInputs] = {}
    for chunk in chunks(user_ids):
        for user_id, user_name, active, group_name in conn.execute(
            "SELECT u.id, u.user_name, u.active, g.display_name FROM users u "
            "LEFT JOIN group_members m ON m.user_id = u.id LEFT JOIN groups g ON g.id = m.group_id "
            f"WHERE u.id IN ({placeholders(len(chunk))})", tuple(chunk),
        ):
            inputs = found.setdefault(user_id, RoleInputs(user_name, bool(active), []))
            if group_name is not None:
                inputs.group_names.append(group_name)
    return found


def all_user_ids(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT id FROM users UNION SELECT user_id FROM roster")]


def entries(conn: sqlite3.Connection, user_ids: Sequence[str]) -> dict[str, RosterEntry]:
    found: dict[str, RosterEntry] = {}
    for chunk in chunks(user_ids):
        for row in conn.execute(
            f"SELECT user_id, user_name, role, since FROM roster WHERE user_id IN ({placeholders(len(chunk))})",
            tuple(chunk),
        ):
            found[row[0]] = RosterEntry(row[0], row[1], row[2], row[3])
    return found


def put_entries(conn: sqlite3.Connection, rows: Sequence[RosterEntry]) -> None:
    if not rows:  # see append_events
        return
    # user_name_key: the roster's own order (roster_by_name), so a page of a 100,000-member roster is an index seek
    # even for a held member whose user is deleted. search_key: the user's (app/storage/search_key.py), or the
    # entry's own name when the user is gone.
    conn.executemany(
        "INSERT INTO roster (user_id, user_name, user_name_key, role, since, search_key) VALUES (?, ?, ?, ?, ?, "
        "coalesce((SELECT u.search_key FROM users u WHERE u.id = ?), ?)) "
        "ON CONFLICT (user_id) DO UPDATE SET user_name = excluded.user_name, "
        "user_name_key = excluded.user_name_key, role = excluded.role, since = excluded.since, "
        "search_key = excluded.search_key",
        [(r.user_id, r.user_name, key, r.role, r.since, r.user_id, key)
         for r in rows for key in (fold_case(r.user_name),)],
    )


def drop_entries(conn: sqlite3.Connection, user_ids: Sequence[str]) -> None:
    if not user_ids:
        return
    conn.executemany("DELETE FROM roster WHERE user_id = ?", [(user_id,) for user_id in user_ids])


def append_events(conn: sqlite3.Connection, events: Sequence[Event], at: str, actor: str) -> None:
    # An empty executemany still costs the writer thread a statement lookup and a reset (~3 µs), and settle hands
    # in nothing for most writes.
    if not events:
        return
    # orjson: every write appends an event on the writer thread, and json.dumps took 10 us of it per event.
    conn.executemany(
        "INSERT INTO events (at, type, actor, user_id, group_id, data) VALUES (?, ?, ?, ?, ?, ?)",
        [(at, e.type, actor, e.user_id, e.group_id, orjson.dumps(e.data or {}).decode()) for e in events],
    )


def _event_row(row: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"seq": row[0], "time": row[1], "type": row[2], "token": row[3]}
    event.update(json.loads(row[4]))
    return event


def events_after(conn: sqlite3.Connection, after: int, limit: int) -> list[dict[str, Any]]:
    return [_event_row(row) for row in conn.execute(
        "SELECT seq, at, type, actor, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))]


def last_member_event(conn: sqlite3.Connection, user_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT seq, at, type, actor, data FROM events WHERE user_id = ? AND type LIKE 'member.%' "
        "ORDER BY seq DESC LIMIT 1", (user_id,)
    ).fetchone()
    return _event_row(row) if row else None


_PRIMARY_EMAIL = ("(SELECT json_extract(e.value, '$.value') FROM json_each(u.doc, '$.emails') e "
                  "ORDER BY coalesce(json_extract(e.value, '$.primary'), 0) DESC, e.key LIMIT 1)")
_MEMBER_TYPES = "('member.joined', 'member.left', 'member.role_changed')"
# The roster at a moment, replayed from the change feed: each user's last member.* event at or before it says
# whether they were a member and with which role; their last member.joined up to it, since when.
_ROSTER_AT = f"""
WITH last AS (
    SELECT user_id, max(seq) AS seq FROM events WHERE type IN {_MEMBER_TYPES} AND at <= ? GROUP BY user_id
), joined AS (
    SELECT user_id, max(seq) AS seq FROM events WHERE type IN {_MEMBER_TYPES} AND type = 'member.joined'
    AND at <= ? GROUP BY user_id
), roster_then AS (
    SELECT e.user_id, e.data,
           CASE e.type WHEN 'member.joined' THEN json_extract(e.data, '$.role') ELSE json_extract(e.data, '$.to') END
               AS role,
           (SELECT j.at FROM events j WHERE j.seq = joined.seq) AS since
    FROM last JOIN events e ON e.seq = last.seq JOIN joined ON joined.user_id = last.user_id
    WHERE e.type != 'member.left'
)
SELECT t.user_id, coalesce(u.user_name, json_extract(t.data, '$.userName')) AS user_name, u.display_name, t.role,
       t.since, {_PRIMARY_EMAIL} AS email,
       coalesce(u.user_name_key, scim_fold(json_extract(t.data, '$.userName'))) AS sort_key,
       json_extract(t.data, '$.groups') AS groups, NULL AS hold,
       coalesce(u.search_key, scim_fold(json_extract(t.data, '$.userName'))) AS search_key
FROM roster_then t LEFT JOIN users u ON u.id = t.user_id
"""
# A held user may have been deleted (the hold keeps their departure waiting): then the roster's own name is all there
# is, so users is joined LEFT, and the roster's own key orders it (roster_by_name: a seek, and `limit` rows).
_ROSTER_NOW = f"""
SELECT r.user_id, coalesce(u.user_name, r.user_name) AS user_name, u.display_name, r.role, r.since,
       {_PRIMARY_EMAIL} AS email, r.user_name_key AS sort_key, NULL AS groups,
       (SELECT h.hold_id FROM held h WHERE h.user_id = r.user_id AND h.outcome IS NULL) AS hold, r.search_key
FROM roster r LEFT JOIN users u ON u.id = r.user_id
"""


# A term holding the key's separator, looked for in each field alone (rare, and slow: scim_fold per row).
_IN_ONE_FIELD = ("(instr(sort_key, ?) OR instr(scim_fold(coalesce(display_name, '')), ?) OR EXISTS "
                 "(SELECT 1 FROM user_emails m WHERE m.user_id = listed.user_id AND instr(m.email_key, ?)))")


def _member_rows(conn: sqlite3.Connection, base: str, params: list[Any], query: MemberQuery) -> list[dict[str, Any]]:
    where: list[str] = []
    if query.role is not None:
        where.append("role = ?")
        params.append(query.role)
    if query.q:
        # One column per entry (app/storage/search_key.py), no folding per row.
        where.append("instr(search_key, ?)")
        params.append(query.q)
        if term_spans_fields(query.q):
            where.append(_IN_ONE_FIELD)
            params.extend([query.q] * 3)
    if query.after is not None:
        where.append("(sort_key, user_id) > (?, ?)")
        params.extend(query.after)
    order = "sort_key, user_id"
    sql = (f"SELECT * FROM ({base}) AS listed {'WHERE ' + ' AND '.join(where) if where else ''} "
           f"ORDER BY {order} LIMIT ?")
    params.append(-1 if query.limit is None else query.limit)
    return [
        {"id": row[0], "userName": row[1], "displayName": row[2], "role": row[3], "since": row[4], "email": row[5],
         "sortKey": row[6], "recordedGroups": json.loads(row[7]) if row[7] else None,
         "held": row[8] is not None, **({"hold": row[8]} if row[8] is not None else {})}
        for row in conn.execute(sql, params)
    ]


# A search's page of the live roster, chosen from roster_search alone (it holds the order, the role and the key):
# reading each entry's row as the walk goes costs ten times the walk (300 ms for a term nobody matches at 100,000
# members, 35 ms this way). INDEXED BY: roster_by_role would seek a row per entry of the role instead.
_SEARCH_PAGE = ("SELECT user_id FROM roster INDEXED BY roster_search WHERE instr(search_key, ?) {role} {after} "
                "ORDER BY user_name_key, user_id LIMIT ?")


def members(conn: sqlite3.Connection, query: MemberQuery | None = None) -> list[dict[str, Any]]:
    """The roster joined with the users' current names and primary e-mail, ordered by userName, each with the open
    hold that keeps them on it, if any."""
    query = query or MemberQuery()
    if query.q and not term_spans_fields(query.q):
        # The page's ids first, then its rows: by primary key, in order, nothing else asked of them (an outer role
        # condition would have the planner walk roster_by_role checking ids against the page).
        page = _SEARCH_PAGE.format(role="AND role = ?" if query.role is not None else "",
                                   after="AND (user_name_key, user_id) > (?, ?)" if query.after is not None else "")
        params: list[Any] = [query.q, *([query.role] if query.role is not None else []), *(query.after or ()),
                             -1 if query.limit is None else query.limit]
        return _member_rows(conn, f"{_ROSTER_NOW} WHERE r.user_id IN ({page})", params, MemberQuery())
    return _member_rows(conn, _ROSTER_NOW, [], query)


def members_at(conn: sqlite3.Connection, at: str, query: MemberQuery | None = None) -> list[dict[str, Any]]:
    """The roster as it was at `at`, replayed from the member.* events: the names and e-mail are the user's current
    ones (the name in the event for a user since deleted); recordedGroups the role groups the event recorded."""
    return _member_rows(conn, _ROSTER_AT, [at, at], query or MemberQuery())


def users_named(conn: sqlite3.Connection, key: str) -> list[NamedUser]:
    """The users whose folded userName, or any folded e-mail, is `key`: two index lookups (users_user_name_key,
    user_emails), no scan."""
    found = [NamedUser(row[0], row[1], row[2], True) for row in conn.execute(
        "SELECT u.id, u.user_name, r.role FROM users u LEFT JOIN roster r ON r.user_id = u.id "
        "WHERE u.user_name_key = ?", (key,))]
    seen = {user.user_id for user in found}
    found.extend(NamedUser(row[0], row[1], row[2], False) for row in conn.execute(
        "SELECT u.id, u.user_name, r.role FROM user_emails e JOIN users u ON u.id = e.user_id "
        "LEFT JOIN roster r ON r.user_id = u.id WHERE e.email_key = ?", (key,)) if row[0] not in seen)
    return found


def get_setting(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def put_setting(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT INTO settings (key, value) VALUES (?, ?) "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))


# -- for the console (app/web/console) ---------------------------------------------------------------------------

def role_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """How many members have each role right now."""
    return dict(conn.execute("SELECT role, count(*) FROM roster GROUP BY role").fetchall())


def events_of_user(conn: sqlite3.Connection, user_id: str, limit: int) -> list[dict[str, Any]]:
    """One user's events, newest first (events_by_user: an index seek)."""
    return [_event_row(row) for row in conn.execute(
        "SELECT seq, at, type, actor, data FROM events WHERE user_id = ? ORDER BY seq DESC LIMIT ?",
        (user_id, limit))]


def events_newest(conn: sqlite3.Connection, before: int | None, kind: str | None, limit: int) -> list[dict[str, Any]]:
    """The feed newest first, below the seq `before` (None: from the newest); `kind` a type (`member.joined`) or a
    family (`member`: every member.* type)."""
    return [_event_row(row) for row in conn.execute(
        "SELECT seq, at, type, actor, data FROM events WHERE seq < ? "
        "AND (? IS NULL OR type = ? OR substr(type, 1, length(?) + 1) = ? || '.') ORDER BY seq DESC LIMIT ?",
        (2**63 - 1 if before is None else before, kind, kind, kind, kind, limit))]
