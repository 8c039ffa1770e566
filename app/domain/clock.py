"""Timestamps as rollcall stores and serves them."""

import time

_second = -1
_prefix = ""


def utc_now() -> str:
    """Now as RFC 3339 UTC with microseconds; one fixed width so stored values sort as text."""
    global _second, _prefix
    now = time.time()
    second = int(now)
    if second != _second:  # strftime is the costly part, and every write asks for the time
        _second, _prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_prefix}.{int((now - second) * 1_000_000):06d}Z"
