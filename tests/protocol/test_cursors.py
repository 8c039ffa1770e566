"""RFC 9865 cursors: opaque, URL-safe, bound to their query, signed, and valid for cursorTimeout."""

from __future__ import annotations

import re

import pytest

from app.protocol import cursors
from app.protocol.errors import ScimError

KEY = b"k" * 32
AT = cursors.Position("User", 42, "alice@acme.com", backwards=True)


def test_a_cursor_round_trips_in_unreserved_characters() -> None:
    text = cursors.encode(AT, "shape", KEY, issued=1000)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", text)  # RFC 3986 §2.3, as RFC 9865 §2 asks
    assert cursors.decode(text, "shape", KEY, now=1000) == AT


def test_a_cursor_is_valid_for_cursorTimeout_then_expiredCursor() -> None:
    text = cursors.encode(AT, "shape", KEY, issued=1000)
    assert cursors.decode(text, "shape", KEY, now=1000 + cursors.CURSOR_TIMEOUT_SECONDS) == AT
    with pytest.raises(ScimError) as raised:
        cursors.decode(text, "shape", KEY, now=1001 + cursors.CURSOR_TIMEOUT_SECONDS)
    assert (raised.value.status, raised.value.scim_type) == (400, "expiredCursor")
    assert "3600 seconds" in raised.value.detail


@pytest.mark.parametrize("change", ["key", "shape", "body"])
def test_a_cursor_from_elsewhere_is_invalidCursor(change: str) -> None:
    text = cursors.encode(AT, "shape", KEY, issued=1000)
    key, shape = (b"other" * 8 if change == "key" else KEY), ("other" if change == "shape" else "shape")
    if change == "body":
        # The same tag over a body saying rowid 43: a forged position.
        forged = cursors.encode(cursors.Position("User", 43, "alice@acme.com", True), "shape", b"x", 1000)
        text = text[:22] + forged[22:]
    with pytest.raises(ScimError) as raised:
        cursors.decode(text, shape, key, now=1000)
    assert (raised.value.status, raised.value.scim_type) == (400, "invalidCursor")
