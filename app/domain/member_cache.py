"""Rendered Group.members of large groups, kept between reads while the group's version stays the same.

Every change to a group's member list moves its version in the same transaction (a member added or removed, a
member deleted, a member renamed: Directory's writes, tests/web/test_member_cache.py), and a read takes the
version and the members from one snapshot, so an entry found under the version a read sees is exactly what that
read would render. The version is read from the database by every request, so this holds across instances on
PostgreSQL too. `created` is part of the key so that a group deleted and made again under the same id (a Bulk
POST may name one) never meets the entries of the old one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple


class MembersKey(NamedTuple):
    group_id: str
    base_url: str
    created: str
    version: int


class MemberCache:
    """A bounded LRU of rendered members arrays (bytes), `max_bytes` in all; one entry per group and base URL.
    Used from the event loop and from reader threads, so behind a lock."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str], tuple[MembersKey, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: MembersKey) -> bytes | None:
        with self._lock:
            entry = self._entries.get((key.group_id, key.base_url))
            if entry is None or entry[0] != key:
                return None
            self._entries.move_to_end((key.group_id, key.base_url))
            return entry[1]

    def put(self, key: MembersKey, rendered: bytes) -> None:
        if len(rendered) > self.max_bytes:
            return
        slot = (key.group_id, key.base_url)
        with self._lock:
            old = self._entries.get(slot)
            if old is not None and old[0].created == key.created and old[0].version > key.version:
                return  # a read of an older snapshot finished last: keep the newer entry
            if old is not None:
                self._bytes -= len(old[1])
            self._entries[slot] = (key, rendered)
            self._entries.move_to_end(slot)
            self._bytes += len(rendered)
            while self._bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= len(evicted)

    @property
    def size(self) -> int:
        """The bytes held."""
        return self._bytes
