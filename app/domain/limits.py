"""How large what the directory stores and answers may be (README: Security and durability)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_RESOURCE_BYTES = 64 * 1024
DEFAULT_MAX_PAGE_BYTES = 4 * 1024 * 1024
# A Bulk request (RFC 7644 §3.7.4), as ServiceProviderConfig announces it: at most this many operations, and a
# body of at most this many bytes (its own limit, not --max-body-bytes).
DEFAULT_BULK_MAX_OPERATIONS = 1000
DEFAULT_BULK_MAX_PAYLOAD_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    # A resource's stored document (its JSON as encoded for the database). A SCIM User is a few KB, so this
    # is room for a generous one many times over, and it is what a list page can cost per resource.
    max_resource_bytes: int = DEFAULT_MAX_RESOURCE_BYTES
    # The resources of one list page, as encoded in the answer: a page holds fewer than `count` once the next
    # resource would pass it (RFC 7644 §3.4.2.4). 1,000 ordinary users (2-3 KB each) still fit in one page.
    max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES
