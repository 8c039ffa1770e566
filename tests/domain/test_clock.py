"""Timestamps (app/domain/clock.py): one per-second cache of strftime's text for stored times and log lines."""

from __future__ import annotations

import re
import time

from app.domain.clock import format_time, utc_now


def test_format_time_is_exact_whatever_second_came_before() -> None:
    # The cache holds the last second formatted: moments that alternate between seconds must not borrow its text.
    for _ in range(2):
        assert format_time(0.5) == "1970-01-01T00:00:00.500000Z"
        assert format_time(86_400.25, millis=True) == "1970-01-02T00:00:00.250Z"
        assert format_time(86_400.125) == "1970-01-02T00:00:00.125000Z"


def test_utc_now_is_now_in_the_stored_format() -> None:
    before = format_time(time.time())
    now = utc_now()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", now)
    assert before <= now <= format_time(time.time())
