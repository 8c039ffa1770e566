"""SQL for holds (the changes whose departures wait for a person) and the sliding window that decides them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from app.storage.records import Held, Hold, Window
from app.storage.sqlite.resources import chunks, placeholders

_HELD_COLUMNS = "h.hold_id, h.user_id, h.user_name, h.role, h.becomes, h.reason, d.cause, h.outcome"


def _held(row: Any) -> Held:
    return Held(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7])


def held_now(conn: sqlite3.Connection, user_ids: Sequence[str]) -> dict[str, Held]:
    """Those of `user_ids` an open hold keeps on the roster."""
    found: dict[str, Held] = {}
    for chunk in chunks(user_ids):
        for row in conn.execute(
            f"SELECT {_HELD_COLUMNS} FROM held h JOIN holds d ON d.id = h.hold_id "
            f"WHERE h.outcome IS NULL AND h.user_id IN ({placeholders(len(chunk))})", tuple(chunk),
        ):
            found[row[1]] = _held(row)
    return found


def held_in(conn: sqlite3.Connection, hold_id: int, *, still_held: bool = True) -> list[Held]:
    where = "AND h.outcome IS NULL" if still_held else ""
    return [_held(row) for row in conn.execute(
        f"SELECT {_HELD_COLUMNS} FROM held h JOIN holds d ON d.id = h.hold_id WHERE h.hold_id = ? {where} "
        "ORDER BY h.user_name", (hold_id,))]


def open_hold(conn: sqlite3.Connection, now: str, cause: str, actor: str, change: dict[str, Any],
              people: Sequence[Held]) -> int:
    hold_id = conn.execute("INSERT INTO holds (opened, cause, actor, change) VALUES (?, ?, ?, ?)",
                           (now, cause, actor, json.dumps(change, ensure_ascii=False))).lastrowid
    assert hold_id is not None
    conn.executemany(
        "INSERT INTO held (hold_id, user_id, user_name, role, becomes, reason) VALUES (?, ?, ?, ?, ?, ?)",
        [(hold_id, p.user_id, p.user_name, p.role, p.becomes, p.reason) for p in people])
    return hold_id


def settle_held(conn: sqlite3.Connection, hold_id: int, user_ids: Sequence[str], outcome: str) -> None:
    """Record that these people are held no longer: 'applied' (their change happened) or 'released'."""
    conn.executemany("UPDATE held SET outcome = ? WHERE hold_id = ? AND user_id = ? AND outcome IS NULL",
                     [(outcome, hold_id, user_id) for user_id in user_ids])


def still_held(conn: sqlite3.Connection, hold_id: int) -> int:
    row = conn.execute("SELECT count(*) FROM held WHERE hold_id = ? AND outcome IS NULL", (hold_id,)).fetchone()
    return int(row[0])


def close_hold(conn: sqlite3.Connection, hold_id: int, state: str, now: str, actor: str) -> None:
    conn.execute("UPDATE holds SET state = ?, closed = ?, closed_by = ? WHERE id = ?", (state, now, actor, hold_id))


def _hold(row: Any) -> Hold:
    return Hold(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6], row[7], row[8])


_HOLD_COLUMNS = ("d.id, d.opened, d.cause, d.actor, d.change, d.state, d.closed, d.closed_by, "
                 "(SELECT count(*) FROM held h WHERE h.hold_id = d.id AND (h.outcome IS NULL OR d.state != 'open'))")


def get_hold(conn: sqlite3.Connection, hold_id: int) -> Hold | None:
    row = conn.execute(f"SELECT {_HOLD_COLUMNS} FROM holds d WHERE d.id = ?", (hold_id,)).fetchone()
    return _hold(row) if row else None


def open_holds(conn: sqlite3.Connection) -> list[Hold]:
    return [_hold(row) for row in conn.execute(
        f"SELECT {_HOLD_COLUMNS} FROM holds d WHERE d.state = 'open' ORDER BY d.id")]


def admins_not_held(conn: sqlite3.Connection) -> int:
    """Admins on the roster that no open hold is about to remove or demote."""
    return int(conn.execute(
        "SELECT count(*) FROM roster r WHERE r.role = 'admin' AND NOT EXISTS "
        "(SELECT 1 FROM held h WHERE h.user_id = r.user_id AND h.outcome IS NULL)").fetchone()[0])


# Each query repeats the partial index's own condition, so that SQLite can tell the index covers it.
_MEMBER_EVENTS = "type IN ('member.joined', 'member.left')"


def window_since(conn: sqlite3.Connection, start: str) -> Window:
    joined = conn.execute(f"SELECT count(*) FROM events WHERE {_MEMBER_EVENTS} AND type = 'member.joined' "
                          "AND at >= ?", (start,)).fetchone()[0]
    left, unapproved = conn.execute(
        "SELECT count(*), coalesce(sum(json_extract(data, '$.hold') IS NULL), 0) FROM events "
        f"WHERE {_MEMBER_EVENTS} AND type = 'member.left' AND at >= ?", (start,)).fetchone()
    roster_now = conn.execute("SELECT count(*) FROM roster").fetchone()[0]
    return Window(joined, left, unapproved, roster_now)
