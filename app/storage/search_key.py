"""The members search key: what the console's (and /api/members') `q` is looked for in, kept with each row.

A user's key is their folded userName, displayName and e-mails joined by SEPARATOR, written with the user's row
(both engines, in the write's transaction) and copied onto their roster entry, so that a search walks the roster's
(user_name_key, user_id) order and tests one column per entry with instr/strpos, stopping at a page's end: no
per-row folding, no per-row subquery. A roster entry whose user is deleted (kept by a hold) has only its own name.
"""

from __future__ import annotations

from typing import Any

from app.protocol.folding import fold_case

# A control character no name or address carries: a term is looked for in one field, never across two. A term that
# contains it anyway is checked field by field instead (term_spans_fields), so it stays literal.
SEPARATOR = "\x1f"


def user_search_key(document: dict[str, Any]) -> str:
    """The folded userName, displayName and every e-mail value of a User document, joined by SEPARATOR."""
    display_name = document.get("displayName")
    emails = document.get("emails")
    values = [e["value"] for e in emails if isinstance(e, dict) and isinstance(e.get("value"), str)] \
        if isinstance(emails, list) else []
    fields = [document["userName"], display_name if isinstance(display_name, str) else "", *values]
    return SEPARATOR.join(fold_case(field) for field in fields)


def term_spans_fields(term: str) -> bool:
    """Whether `term` holds the separator: the key alone could then match it across two fields."""
    return SEPARATOR in term
