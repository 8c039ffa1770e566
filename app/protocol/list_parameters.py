"""The paging and sorting parameters of a list (RFC 7644 §3.4.2.3, §3.4.2.4): one rule for a query string's and a
SearchRequest's startIndex, count and sortOrder."""

from __future__ import annotations

from app.protocol.errors import invalid_value

# Nothing has an index past 2^62, and larger integers overflow SQLite and JSON.
MAX_START_INDEX = 2**62
SORT_ORDERS = ("ascending", "descending")


def start_index(value: int | None) -> int:
    """RFC 7644 §3.4.2.4: absent or below 1 means 1."""
    return min(max(1, value if value is not None else 1), MAX_START_INDEX)


def page_size(count: int | None, default: int, maximum: int) -> int:
    """RFC 7644 §3.4.2.4: absent means the server's default, negative means 0; more than `maximum` means it."""
    return min(default if count is None else max(0, count), maximum)


def is_descending(sort_order: str | None) -> bool:
    """RFC 7644 §3.4.2.3: "ascending" (the default) or "descending", in any case."""
    order = (sort_order or "ascending").lower()
    if order not in SORT_ORDERS:
        raise invalid_value(f"sortOrder must be 'ascending' or 'descending', not {sort_order!r}.")
    return order == "descending"
