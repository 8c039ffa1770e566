"""The one reading of a dateTime a client sends (a filter's value, `?at=`), into the one stored format."""

from __future__ import annotations

from datetime import UTC, datetime


def format_datetime(value: datetime) -> str:
    """The one stored timestamp format; fixed width, so text order is time order."""
    value = value.astimezone(UTC)
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:"
            f"{value.second:02d}.{value.microsecond:06d}Z")


def parse_datetime(text: str) -> str | None:
    """`text` (xsd:dateTime / RFC 3339, e.g. 2026-10-01T00:00:00Z) in the stored format, or None if it is none."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        # RFC 7643 §2.3.5 asks for an offset; a bare time is read as UTC rather than rejected.
        parsed = parsed.replace(tzinfo=UTC)
    return format_datetime(parsed)
