"""The bounded cache of rendered Group.members (app/domain/member_cache.py)."""

from __future__ import annotations

from app.domain.member_cache import MemberCache, MembersKey


def key(group: str, version: int, base: str = "b", created: str = "t0") -> MembersKey:
    return MembersKey(group, base, created, version)


def test_an_entry_is_found_only_under_its_exact_key() -> None:
    cache = MemberCache(100)
    cache.put(key("g", 1), b"[1]")
    assert cache.get(key("g", 1)) == b"[1]"
    assert cache.get(key("g", 2)) is None
    assert cache.get(key("g", 1, base="other")) is None
    assert cache.get(key("g", 1, created="t1")) is None  # the same id made again


def test_a_new_version_replaces_the_old_and_an_older_one_does_not_come_back() -> None:
    cache = MemberCache(100)
    cache.put(key("g", 1), b"[1]")
    cache.put(key("g", 2), b"[22]")
    assert cache.get(key("g", 1)) is None and cache.size == 4
    cache.put(key("g", 1), b"[1]")  # a slow read of the older snapshot
    assert cache.get(key("g", 2)) == b"[22]" and cache.get(key("g", 1)) is None


def test_it_holds_at_most_its_bytes_least_recently_used_going_first() -> None:
    cache = MemberCache(10)
    cache.put(key("a", 1), b"aaaa")
    cache.put(key("b", 1), b"bbbb")
    assert cache.get(key("a", 1)) == b"aaaa"  # a is now the most recent
    cache.put(key("c", 1), b"cccc")
    assert cache.get(key("b", 1)) is None
    assert cache.get(key("a", 1)) == b"aaaa" and cache.get(key("c", 1)) == b"cccc"
    assert cache.size == 8
    cache.put(key("d", 1), b"d" * 11)  # larger than the whole cache: not kept, nothing evicted for it
    assert cache.get(key("d", 1)) is None and cache.size == 8
