"""SQL for the roster, the change feed and the database's own settings."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.storage.resources import chunks, placeholders


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
    conn.executemany(
        "INSERT INTO roster (user_id, user_name, role, since) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (user_id) DO UPDATE SET user_name = excluded.user_name, role = excluded.role, "
        "since = excluded.since",
        [(r.user_id, r.user_name, r.role, r.since) for r in rows],
    )


def drop_entries(conn: sqlite3.Connection, user_ids: Sequence[str]) -> None:
    conn.executemany("DELETE FROM roster WHERE user_id = ?", [(user_id,) for user_id in user_ids])


def append_events(conn: sqlite3.Connection, events: Sequence[Event], at: str, actor: str) -> None:
    conn.executemany(
        "INSERT INTO events (at, type, actor, user_id, group_id, data) VALUES (?, ?, ?, ?, ?, ?)",
        [(at, e.type, actor, e.user_id, e.group_id, json.dumps(e.data or {}, ensure_ascii=False)) for e in events],
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


def members(conn: sqlite3.Connection, user_id: str | None = None) -> list[dict[str, Any]]:
    """The roster joined with the users' current names and primary e-mail, ordered by userName, each with the open
    hold that keeps them on it, if any (a held user may have been deleted: then the roster's name is all there is)."""
    where = "WHERE r.user_id = ?" if user_id is not None else ""
    return [
        {"id": row[0], "userName": row[1], "displayName": row[2], "role": row[3], "since": row[4], "email": row[5],
         "held": row[6] is not None, **({"hold": row[6]} if row[6] is not None else {})}
        for row in conn.execute(
            "SELECT r.user_id, coalesce(u.user_name, r.user_name), u.display_name, r.role, r.since, "
            "  (SELECT json_extract(e.value, '$.value') FROM json_each(u.doc, '$.emails') e "
            "   ORDER BY coalesce(json_extract(e.value, '$.primary'), 0) DESC, e.key LIMIT 1) AS email, "
            "  (SELECT h.hold_id FROM held h WHERE h.user_id = r.user_id AND h.outcome IS NULL) "
            f"FROM roster r LEFT JOIN users u ON u.id = r.user_id {where} "
            "ORDER BY coalesce(u.user_name_key, lower(r.user_name))",
            (user_id,) if user_id is not None else (),
        )
    ]


def get_setting(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def put_setting(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT INTO settings (key, value) VALUES (?, ?) "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))
