"""Webhooks (push): endpoints that are sent every change-feed event they subscribe to, signed as Standard Webhooks
1.0 defines (standardwebhooks.com).

Where the outbox is. The issue asks for outbox rows written in the transaction of the change that caused them. The
events table already is exactly that: every event is appended in the transaction of its change (Directory._finish,
roster.settle), in seq order, and never rewritten. So each endpoint keeps a cursor over it (`webhooks.cursor`, the
seq of the last event it has been handed) instead of a copy of each event per endpoint. It is as crash-safe (the
cursor only moves after a 2xx is in, so a crash at any point re-sends at most the event in flight, and loses none:
at least once, in seq order), and simpler: no fan-out on the write path of a SCIM request, nothing to write when
an endpoint is added or removed, and `redeliver --from SEQ` is moving the cursor back. The body of a delivery is
rendered from the event row by the same code that renders /api/events (Transaction.feed.after).

This module says what an endpoint is (URL and pattern checks, the secret), how a delivery is signed, and the retry
schedule, and reads and writes endpoints and their outbox through the storage interface. The worker that sends the
deliveries is app/web/webhook_delivery.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.domain.clock import utc_now
from app.storage.interface import Storage, Transaction
from app.storage.records import Attempt, Endpoint

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # Standard Webhooks: 24 to 64 random bytes
DEFAULT_PATTERNS = ("member.*",)
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 500
MAX_PATTERNS = 20
# The retry policy: exponential backoff from a second up to an hour, for up to three days.
DEFAULT_BACKOFF_BASE = 1.0
DEFAULT_BACKOFF_CAP = 3600.0
DEFAULT_RETRY_FOR = 3 * 24 * 3600.0
DEFAULT_TIMEOUT = 10.0
# `*`, a family such as `member.*`, or one exact type such as `member.joined`.
_PATTERN = re.compile(r"\*|[a-z][a-z0-9_]*\.(\*|[a-z][a-z0-9_]*)")


class WebhookError(Exception):
    """A webhook command that cannot be carried out; the message says why."""


class WebhookNotFound(WebhookError):
    def __init__(self, webhook_id: int) -> None:
        super().__init__(f"No webhook has the id {webhook_id}; see `rollcall webhook list`.")


def check_url(url: str) -> str:
    """The URL as given, if deliveries can be POSTed to it; refuses anything else with a reason."""
    if not isinstance(url, str) or not url:
        raise WebhookError("The webhook URL is missing: give an http:// or https:// URL.")
    if len(url) > MAX_URL_LENGTH:
        raise WebhookError(f"The webhook URL is longer than {MAX_URL_LENGTH} characters.")
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in url):
        raise WebhookError("The webhook URL must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        raise WebhookError(f"The webhook URL {url!r} is not a valid URL.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise WebhookError(f"The webhook URL must start with http:// or https://, not {url!r}.")
    if "@" in parts.netloc:
        # Credentials in a URL end up in logs and `webhook list`; the signature is how a receiver knows the sender.
        raise WebhookError("The webhook URL must not contain a user name or password; the receiver authenticates "
                           "deliveries by their signature (the webhook-signature header).")
    if not parts.hostname or not port_ok:
        raise WebhookError(f"The webhook URL {url!r} has no valid host and port.")
    return url


def check_patterns(patterns: list[str] | tuple[str, ...] | None) -> list[str]:
    """The event-type patterns, `member.*` if none are given: refuses ones that could never match."""
    if patterns is None:
        return list(DEFAULT_PATTERNS)
    if not isinstance(patterns, (list, tuple)) or not 0 < len(patterns) <= MAX_PATTERNS:
        raise WebhookError(f"events must be a list of 1 to {MAX_PATTERNS} patterns, such as [\"member.*\"].")
    for pattern in patterns:
        if not isinstance(pattern, str) or not _PATTERN.fullmatch(pattern):
            raise WebhookError(f"Invalid event pattern {pattern!r}: use *, a family such as member.*, group.* or "
                               "user.*, or one event type such as member.joined.")
    return list(dict.fromkeys(patterns))


def check_description(description: str | None) -> str:
    if description is None:
        return ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH:
        raise WebhookError(f"description must be text of at most {MAX_DESCRIPTION_LENGTH} characters.")
    return description


def matches(patterns: list[str], event_type: str) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def message_id(seq: int) -> str:
    """The webhook-id of an event: the same on every attempt, so that a receiver can drop repeats."""
    return f"evt_{seq}"


def payload(event: dict[str, Any]) -> bytes:
    """The body of a delivery: the event exactly as /api/events lists it, with its type and time beside it."""
    body = {"type": event["type"], "timestamp": event["time"], "data": event}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signed_headers(secret: str, seq: int, body: bytes, timestamp: int) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt: v1 is HMAC-SHA256 of `id.timestamp.body`."""
    msg_id = message_id(seq)
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode("ascii")
    return {"Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": f"v1,{signature}"}


@dataclass(frozen=True)
class RetryPolicy:
    base: float = DEFAULT_BACKOFF_BASE
    cap: float = DEFAULT_BACKOFF_CAP
    retry_for: float = DEFAULT_RETRY_FOR

    def delay(self, failures: int) -> float:
        """Seconds before the next attempt after `failures` consecutive failures: doubling from `base` up to
        `cap`, each drawn from its upper half so that endpoints that failed together do not retry together."""
        ceiling = min(self.cap, self.base * 2 ** min(failures - 1, 62))
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))


# -- administration, for the CLI and /api/webhooks alike ----------------------------------------------------------

def describe(endpoint: Endpoint, last: Attempt | None) -> dict[str, Any]:
    """An endpoint as `webhook list` and GET /api/webhooks show it: never its secret."""
    return {
        "id": endpoint.id, "url": endpoint.url, "events": endpoint.patterns, "description": endpoint.description,
        "created": endpoint.created, "state": endpoint.state, "cursor": endpoint.cursor,
        "consecutiveFailures": endpoint.consecutive_failures,
        "lastDelivery": None if last is None else {"seq": last.seq, "at": last.at, "status": last.status,
                                                   "error": last.error},
    }


def describe_attempt(attempt: Attempt) -> dict[str, Any]:
    return {"seq": attempt.seq, "webhookId": message_id(attempt.seq), "at": attempt.at, "status": attempt.status,
            "latencyMs": attempt.latency_ms, "error": attempt.error}


async def add(db: Storage, url: str, patterns: list[str] | None = None, description: str | None = None
              ) -> tuple[dict[str, Any], str]:
    """Register an endpoint; returns it and its secret, which is shown this once."""
    url, patterns, description = check_url(url), check_patterns(patterns), check_description(description)
    secret = new_secret()

    def write(tx: Transaction) -> dict[str, Any]:
        webhook_id = tx.webhooks.insert(url, patterns, description, secret, utc_now())
        endpoint = tx.webhooks.get(webhook_id)
        assert endpoint is not None
        return describe(endpoint, None)

    return await db.write(write), secret


async def listing(db: Storage) -> list[dict[str, Any]]:
    def read(tx: Transaction) -> list[dict[str, Any]]:
        last = tx.webhooks.last_attempts()
        return [describe(endpoint, last.get(endpoint.id)) for endpoint in tx.webhooks.all()]
    return await db.read(read)


async def one(db: Storage, webhook_id: int) -> dict[str, Any]:
    def read(tx: Transaction) -> dict[str, Any]:
        endpoint = tx.webhooks.get(webhook_id)
        if endpoint is None:
            raise WebhookNotFound(webhook_id)
        return describe(endpoint, tx.webhooks.last_attempts().get(webhook_id))
    return await db.read(read)


async def remove(db: Storage, webhook_id: int) -> None:
    if not await db.write(lambda tx: tx.webhooks.delete(webhook_id)):
        raise WebhookNotFound(webhook_id)


async def deliveries(db: Storage, webhook_id: int, limit: int = 50) -> list[dict[str, Any]]:
    def read(tx: Transaction) -> list[dict[str, Any]]:
        if tx.webhooks.get(webhook_id) is None:
            raise WebhookNotFound(webhook_id)
        return [describe_attempt(a) for a in tx.webhooks.deliveries(webhook_id, limit)]
    return await db.read(read)


async def redeliver(db: Storage, webhook_id: int, from_seq: int) -> dict[str, Any]:
    """Send every matching event from `from_seq` on again, in order, and make a `failing` endpoint active."""
    if not isinstance(from_seq, int) or isinstance(from_seq, bool) or not 1 <= from_seq < 2**63:
        raise WebhookError("from must be an event seq, a whole number of at least 1 (see `rollcall events`).")
    if not await db.write(lambda tx: tx.webhooks.rewind(webhook_id, from_seq)):
        raise WebhookNotFound(webhook_id)
    return await one(db, webhook_id)


async def rotate_secret(db: Storage, webhook_id: int) -> tuple[dict[str, Any], str]:
    """A new secret for the endpoint, used from the next attempt on; the old one stops signing at once."""
    secret = new_secret()
    if not await db.write(lambda tx: tx.webhooks.set_secret(webhook_id, secret)):
        raise WebhookNotFound(webhook_id)
    return await one(db, webhook_id), secret


# -- the outbox, for the delivery worker (app/web/webhook_delivery.py) ---------------------------------

async def survey(db: Storage) -> tuple[set[int], tuple[int, int]]:
    """The endpoints' ids, and what changes when there is something new for one of them: the newest event's seq
    and the sum of the endpoints' revisions (bumped by redeliver and rotate-secret)."""
    def read(tx: Transaction) -> tuple[set[int], tuple[int, int]]:
        return set(tx.webhooks.ids()), (tx.feed.last_seq(), tx.webhooks.revisions())

    return await db.read(read)


async def endpoint(db: Storage, webhook_id: int) -> Endpoint | None:
    return await db.read(lambda tx: tx.webhooks.get(webhook_id))


async def pending_events(db: Storage, endpoint: Endpoint, limit: int) -> list[dict[str, Any]]:
    """The next `limit` events past the endpoint's cursor, whether it subscribes to them or not."""
    return await db.read(lambda tx: tx.feed.after(endpoint.cursor, limit))


async def skip_to(db: Storage, endpoint: Endpoint, seq: int) -> None:
    """Move the cursor past events the endpoint does not subscribe to, unless an admin changed it meanwhile."""
    await db.write(lambda tx: tx.webhooks.skip_to(endpoint.id, endpoint.revision, seq))


async def record_attempt(db: Storage, endpoint: Endpoint, attempt: Attempt, *, delivered: bool,
                         retry_at: float | None, failing_since: float | None, failing: bool) -> None:
    """Log an attempt and move the endpoint on: past the event when delivered, to its next retry when not."""
    await db.write(lambda tx: tx.webhooks.record(endpoint.id, endpoint.revision, attempt, delivered=delivered,
                                                 retry_at=retry_at, failing_since=failing_since, failing=failing))
