"""Group.members rendered as text from member ids (app/protocol/member_list.py): the same bytes as orjson makes of
the members as dicts, whatever the ids and base URL hold."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.protocol.member_list import member, members_json

BASE = "https://scim.example.com/scim/v2"


def reference(ids: list[str], base_url: str) -> bytes:
    return orjson.dumps([member(i, base_url) for i in ids])


def test_a_member_is_value_ref_and_type() -> None:
    assert orjson.loads(members_json(["a1"], BASE)) == [
        {"value": "a1", "$ref": f"{BASE}/Users/a1", "type": "User"}]


@pytest.mark.parametrize("ids", [[], ["0" * 32], [f"{i:032x}" for i in range(1000)], ["a-b_c.d~e"]])
def test_server_made_ids_give_orjsons_bytes(ids: list[str]) -> None:
    assert members_json(ids, BASE) == reference(ids, BASE)


@pytest.mark.parametrize("odd", ['a"b', "a\\b", "a\nb", "a\u2028b", "é", "a/b", "\x00", "a b", "</script>"])
def test_ids_that_need_escaping_are_escaped(odd: str) -> None:
    ids = ["0" * 32, odd]
    assert members_json(ids, BASE) == reference(ids, BASE)
    assert orjson.loads(members_json(ids, BASE))[1]["value"] == odd


@pytest.mark.parametrize("base_url", ['http://h"x/scim/v2', "http://ĥost:80/scim/v2", "http://h\\x", "http://h\tx"])
def test_the_base_url_is_escaped(base_url: str) -> None:
    assert members_json(["ab"], base_url) == reference(["ab"], base_url)


@given(st.lists(st.text(max_size=8), max_size=5), st.text(max_size=12))
def test_any_ids_and_base_url_give_orjsons_bytes(ids: list[str], base_url: str) -> None:
    try:
        expected = reference(ids, base_url)
    except orjson.JSONEncodeError:  # lone surrogates: not text JSON can hold, either way
        with pytest.raises((orjson.JSONEncodeError, UnicodeEncodeError)):
            members_json(ids, base_url)
        return
    assert members_json(ids, base_url) == expected
