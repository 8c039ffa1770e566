"""SQL for webhook endpoints, their cursors over the events table, and their recent delivery attempts."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from app.storage.records import Attempt, Endpoint

# Attempts kept per endpoint for `rollcall webhook deliveries`; older ones are pruned as new ones are written.
KEPT_DELIVERIES = 200
_COLUMNS = ("id, url, events, description, secret, created, cursor, state, consecutive_failures, failing_since, "
            "retry_at, revision")


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5], row[6], row[7], row[8], row[9],
                    row[10], row[11])


def insert(conn: sqlite3.Connection, url: str, patterns: list[str], description: str, secret: str, now: str) -> int:
    """A new endpoint, whose cursor starts after the newest event: it is sent what happens from now on."""
    cursor = conn.execute(
        "INSERT INTO webhooks (url, events, description, secret, created, cursor) "
        "VALUES (?, ?, ?, ?, ?, (SELECT coalesce(max(seq), 0) FROM events))",
        (url, json.dumps(patterns), description, secret, now))
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def get(conn: sqlite3.Connection, webhook_id: int) -> Endpoint | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM webhooks WHERE id = ?", (webhook_id,)).fetchone()
    return _endpoint(row) if row else None


def all_endpoints(conn: sqlite3.Connection) -> list[Endpoint]:
    return [_endpoint(row) for row in conn.execute(f"SELECT {_COLUMNS} FROM webhooks ORDER BY id")]


def ids(conn: sqlite3.Connection) -> list[int]:
    return [row[0] for row in conn.execute("SELECT id FROM webhooks ORDER BY id")]


def last_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])


def revisions(conn: sqlite3.Connection) -> int:
    """The sum of every endpoint's revision: it grows with each redeliver and rotate-secret."""
    return int(conn.execute("SELECT coalesce(sum(revision), 0) FROM webhooks").fetchone()[0])


def last_attempts(conn: sqlite3.Connection) -> dict[int, Attempt]:
    """Each endpoint's latest delivery attempt."""
    found: dict[int, Attempt] = {}
    for row in conn.execute(
        "SELECT d.webhook_id, d.seq, d.at, d.status, d.latency_ms, d.error FROM webhook_deliveries d "
        "WHERE d.id = (SELECT max(id) FROM webhook_deliveries WHERE webhook_id = d.webhook_id)"
    ):
        found[row[0]] = Attempt(row[1], row[2], row[3], row[4], row[5])
    return found


def delete(conn: sqlite3.Connection, webhook_id: int) -> bool:
    return conn.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,)).rowcount > 0


def set_secret(conn: sqlite3.Connection, webhook_id: int, secret: str) -> bool:
    return conn.execute("UPDATE webhooks SET secret = ?, revision = revision + 1 WHERE id = ?",
                        (secret, webhook_id)).rowcount > 0


def rewind(conn: sqlite3.Connection, webhook_id: int, from_seq: int) -> bool:
    """Send again every matching event from `from_seq` on, starting now: the endpoint is active again."""
    return conn.execute(
        "UPDATE webhooks SET cursor = ?, state = 'active', consecutive_failures = 0, failing_since = NULL, "
        "retry_at = NULL, revision = revision + 1 WHERE id = ?", (from_seq - 1, webhook_id)).rowcount > 0


def skip_to(conn: sqlite3.Connection, webhook_id: int, revision: int, seq: int) -> None:
    """Move the cursor past events the endpoint does not subscribe to, unless an admin changed it meanwhile."""
    conn.execute("UPDATE webhooks SET cursor = ? WHERE id = ? AND revision = ? AND cursor < ?",
                 (seq, webhook_id, revision, seq))


def record(conn: sqlite3.Connection, webhook_id: int, revision: int, attempt: Attempt, *, delivered: bool,
           retry_at: float | None, failing_since: float | None, failing: bool) -> None:
    """Log an attempt and move the endpoint on: past the event when delivered, to its next retry when not.
    An admin change since the worker read the endpoint (`revision`) wins over the worker's own bookkeeping."""
    conn.execute(
        "INSERT INTO webhook_deliveries (webhook_id, seq, at, status, latency_ms, error) "
        "SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?)",
        (webhook_id, attempt.seq, attempt.at, attempt.status, attempt.latency_ms, attempt.error, webhook_id))
    if delivered:
        conn.execute(
            "UPDATE webhooks SET cursor = max(cursor, ?), consecutive_failures = 0, failing_since = NULL, "
            "retry_at = NULL WHERE id = ? AND revision = ?", (attempt.seq, webhook_id, revision))
    else:
        conn.execute(
            "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1, failing_since = ?, retry_at = ?, "
            "state = ? WHERE id = ? AND revision = ?",
            (failing_since, retry_at, "failing" if failing else "active", webhook_id, revision))
    conn.execute(
        "DELETE FROM webhook_deliveries WHERE webhook_id = ? AND id <= (SELECT id FROM webhook_deliveries "
        "WHERE webhook_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)", (webhook_id, webhook_id, KEPT_DELIVERIES))


def deliveries(conn: sqlite3.Connection, webhook_id: int, limit: int) -> list[Attempt]:
    """The most recent attempts, newest first."""
    return [Attempt(*row) for row in conn.execute(
        "SELECT seq, at, status, latency_ms, error FROM webhook_deliveries WHERE webhook_id = ? "
        "ORDER BY id DESC LIMIT ?", (webhook_id, limit))]
