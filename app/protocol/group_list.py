"""User.groups as JSON text (RFC 7643 §4.1.2), rendered straight from the user's memberships.

A list page of 100 users, each in two groups, built a dict per membership and encoded it anew for every user,
though the users of a page share a few groups: that cost more than the rest of the page's rendering. Here each
group's entry is encoded once per page and each user's array is joined from those bytes, which are what
orjson makes of the dicts (tests/protocol/test_group_list.py), to be spliced into the answer as an
orjson.Fragment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import orjson


class GroupRef(Protocol):
    """A group a user is a member of (storage's Membership)."""

    @property
    def group_id(self) -> str: ...

    @property
    def display(self) -> str: ...


def user_group(group_id: str, display: str, base_url: str) -> dict[str, str]:
    """One of User.groups as the representation shows it: the user is a direct member (no nested groups)."""
    return {"value": group_id, "$ref": f"{base_url}/Groups/{group_id}", "display": display, "type": "direct"}


class UserGroups:
    """The JSON arrays of User.groups for the users of one read, each group's entry encoded once: a group has one
    displayName within a transaction, so an instance must not outlive the transaction it renders for."""

    __slots__ = ("_base_url", "_entries")

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url
        self._entries: dict[str, bytes] = {}

    def json(self, groups: Sequence[GroupRef]) -> bytes:
        """What orjson.dumps([user_group(...) for each of `groups`]) gives."""
        entries = self._entries
        parts = []
        for group in groups:
            entry = entries.get(group.group_id)
            if entry is None:
                entry = entries[group.group_id] = orjson.dumps(
                    user_group(group.group_id, group.display, self._base_url))
            parts.append(entry)
        return b"[" + b",".join(parts) + b"]"
