"""Timestamps as rollcall stores and serves them."""

from datetime import UTC, datetime


def utc_now() -> str:
    """Now as RFC 3339 UTC with microseconds; one fixed width so stored values sort as text."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
