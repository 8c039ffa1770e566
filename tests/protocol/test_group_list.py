"""User.groups rendered as text from memberships (app/protocol/group_list.py): the same bytes as orjson makes of
the groups as dicts, whatever the ids, names and base URL hold, however many users of a read share a group."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from app.protocol.group_list import UserGroups, user_group

BASE = "https://scim.example.com/scim/v2"
_TEXT = st.one_of(st.text(max_size=8), st.sampled_from(['"', "\\", "é", "日本", "😀", "\u2028", "\x00", "</script>"]))


@dataclass(frozen=True)
class _Group:
    group_id: str
    display: str


def test_a_group_is_value_ref_display_and_type() -> None:
    assert orjson.loads(UserGroups(BASE).json([_Group("g1", "Ops")])) == [
        {"value": "g1", "$ref": f"{BASE}/Groups/g1", "display": "Ops", "type": "direct"}]


@given(st.lists(st.tuples(_TEXT, _TEXT), max_size=6), st.lists(st.lists(st.integers(0, 5), max_size=4), max_size=5),
       _TEXT)
@settings(max_examples=300, deadline=None)
def test_each_users_array_is_orjsons_bytes_of_the_dicts(groups: list[tuple[str, str]], users: list[list[int]],
                                                        base: str) -> None:
    # One group, one displayName (the read is one transaction): the entries are keyed by id.
    known = {group_id: _Group(group_id, display) for group_id, display in groups}
    rendered = UserGroups(base)
    for picks in users:
        held = [list(known.values())[i % len(known)] for i in picks] if known else []
        assert rendered.json(held) == orjson.dumps([user_group(g.group_id, g.display, base) for g in held])
