"""Cursors for cursor-based pagination (RFC 9865): what one holds, and how it travels.

A cursor is a position in a query's order, not an offset: the sort value and rowid of the row a page
ended (or began) at, and the resource type it belongs to, so that the next page seeks to it through the
index and stays right while resources are added or deleted. It also carries a fingerprint of the query's
shape (resource types, filter, sortBy, sortOrder), so that a cursor sent with a different query is refused
rather than continued somewhere meaningless, and the time it was issued.

On the wire it is base64url without padding (RFC 3986 unreserved characters only, as §2 asks) of a small
JSON array and an HMAC-SHA256 tag over it with the server's key: a cursor that was altered, made up or cut
short is `invalidCursor`, never a 500, and a client cannot forge a position it was not given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import orjson

from app.protocol import errors

# RFC 9865 §4 `cursorTimeout`: the least time a cursor stays valid between page requests. A cursor costs
# the server nothing (it is a position, not a stored result set), so the limit is only there so that a
# cursor copied into a log or a URL history does not work forever.
CURSOR_TIMEOUT_SECONDS = 3600

_FORMAT = 1
_TAG_BYTES = 16


@dataclass(frozen=True)
class Position:
    """A row in a query's order: the page continues after it (`backwards` False) or before it (True).

    `resource_type` is the type's name (a root /.search lists Users, then Groups); `value` is the row's
    sortBy value (None when unsorted or when the row has none). A position with `rowid` None is the start
    of the result: it is what count=0 hands back for the first page."""

    resource_type: str | None
    rowid: int | None
    value: Any = None
    backwards: bool = False


def fingerprint(shape: Any) -> str:
    """A short digest of a query's shape (anything orjson encodes): equal shapes, equal fingerprints."""
    return hashlib.sha256(orjson.dumps(shape, default=str)).hexdigest()[:16]


def encode(position: Position, query_fingerprint: str, key: bytes, issued: int) -> str:
    body = orjson.dumps([_FORMAT, query_fingerprint, issued, position.resource_type, position.rowid,
                         position.value, 1 if position.backwards else 0])
    tag = hmac.new(key, body, hashlib.sha256).digest()[:_TAG_BYTES]
    return base64.urlsafe_b64encode(tag + body).rstrip(b"=").decode("ascii")


def decode(text: str, query_fingerprint: str, key: bytes, now: int) -> Position:
    """The position a cursor holds; 400 invalidCursor when it is not one this server issued for this query,
    400 expiredCursor when it is older than CURSOR_TIMEOUT_SECONDS."""
    # No length check of its own: the request line (64 KiB) or body limit bounds it, and a long sort value
    # (a sortBy attribute holding kilobytes) makes a long cursor that must still work.
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise _invalid("it is not one rollcall issued") from None
    tag, body = raw[:_TAG_BYTES], raw[_TAG_BYTES:]
    if not hmac.compare_digest(tag, hmac.new(key, body, hashlib.sha256).digest()[:_TAG_BYTES]):
        raise _invalid("it is not one rollcall issued (or it was changed)")
    try:
        version, shape, issued, resource_type, rowid, value, backwards = orjson.loads(body)
    except (orjson.JSONDecodeError, ValueError, TypeError):  # pragma: no cover - only a key holder can get here
        raise _invalid("it is not one rollcall issued") from None
    if version != _FORMAT:  # pragma: no cover - there is one format so far
        raise _invalid("it was issued by another version of rollcall")
    if shape != query_fingerprint:
        raise _invalid("it belongs to a different query: the filter, sortBy or sortOrder (or the endpoint) is not "
                       "the one the cursor was issued for. Repeat the first query's parameters exactly, changing "
                       "only cursor (and count)")
    if now - issued > CURSOR_TIMEOUT_SECONDS:
        raise errors.expired_cursor(
            f"The cursor has expired: it was issued {now - issued} seconds ago, and cursors are valid for "
            f"{CURSOR_TIMEOUT_SECONDS} seconds (cursorTimeout in /ServiceProviderConfig). Start again with an "
            "empty cursor.")
    return Position(resource_type, rowid, value, bool(backwards))


def _invalid(why: str) -> errors.ScimError:
    return errors.invalid_cursor(f"The cursor is invalid: {why}. Send an empty cursor for the first page, then the "
                                 "nextCursor or previousCursor of the page before.")
