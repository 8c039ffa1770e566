"""Timestamps as rollcall stores and serves them."""

import re
import time
from collections.abc import Callable

# Unix time now, as time.time gives it: what a component that keeps time takes (app/domain/sessions.py), so that a
# test can hand it a clock it moves by hand instead of waiting hours.
Clock = Callable[[], float]

# The second last formatted and its text: strftime is the costly part of a timestamp, and every write and every
# log line asks for one, nearly always within the same second as the one before. One tuple, replaced whole, so
# that threads (logging, the writer) never read a second with another second's text.
_last: tuple[int, str] = (-1, "")


def utc_now() -> str:
    """Now as RFC 3339 UTC with microseconds; one fixed width so stored values sort as text."""
    return format_time(time.time())


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"([0-9]{1,6})([smhdw])")


def parse_duration(text: str) -> int:
    """Seconds in a duration such as `90d`, `24h`, `30m`, `45s` or `2w`; ValueError saying what is accepted."""
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"Invalid duration {text!r}: use a positive whole number and a unit, e.g. 90d, 24h, 30m.")
    return int(match.group(1)) * _UNITS[match.group(2)]


def format_time(moment: float, *, millis: bool = False) -> str:
    """A Unix time in utc_now's format, so it compares with stored timestamps as text; with `millis`, to the
    millisecond (as log lines show it)."""
    global _last
    second = int(moment)
    last = _last
    if last[0] != second:
        last = _last = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    if millis:
        return f"{last[1]}.{int((moment - second) * 1000):03d}Z"
    return f"{last[1]}.{int((moment - second) * 1_000_000):06d}Z"


def utc_in(seconds: float) -> str:
    """The time `seconds` from now, in utc_now's format."""
    return format_time(time.time() + seconds)
