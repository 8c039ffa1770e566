"""Answers sent as parts around pre-rendered fragments (app/web/spliced.py): the same bytes as one encoding."""

from __future__ import annotations

import orjson
import pytest

from app.web import spliced
from app.web.spliced import encoded_parts
from tests.conftest import Scim

BIG = orjson.dumps([{"value": f"{i:032x}"} for i in range(3000)])


def test_parts_join_to_the_one_encoding() -> None:
    small = b'[{"value":"x"}]'
    body = {"schemas": ["s"], "id": "1", "members": orjson.Fragment(BIG), "other": orjson.Fragment(small),
            "also": orjson.Fragment(BIG), "meta": {"version": 'W/"3"', "nul": "\x00"}}
    parts = encoded_parts(body, {"members": BIG, "other": small, "also": BIG})
    assert b"".join(parts) == orjson.dumps(body)
    assert len(parts) == 5 and parts[1] is BIG and parts[3] is BIG  # the small one is encoded inline


def test_a_body_without_large_fragments_is_one_part() -> None:
    body = {"id": "1", "members": orjson.Fragment(b"[]")}
    assert encoded_parts(body, {"members": b"[]"}) == [orjson.dumps(body)]
    assert encoded_parts({"id": "1"}, {"members": BIG}) == [b'{"id":"1"}']


async def test_a_spliced_group_answer_is_whole_with_every_header(scim: Scim, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spliced, "SPLICED_BYTES", 10)
    monkeypatch.setattr(spliced, "SLICE_BYTES", 7)  # many slices, one cut inside each member
    users = [await scim.create_user(f"u{i}") for i in range(3)]
    group = await scim.create_group("g", [u["id"] for u in users])
    answer = await scim.get(f"/Groups/{group['id']}", headers={"X-Request-Id": "req-7"})
    assert answer.status == 200 and answer.headers["X-Request-Id"] == "req-7"
    assert answer.headers["Content-Type"] == "application/scim+json; charset=utf-8"
    assert int(answer.headers["Content-Length"]) == len(orjson.dumps(answer.body))
    assert [m["value"] for m in answer.body["members"]] == sorted(u["id"] for u in users)
    assert answer.headers["ETag"] == answer.body["meta"]["version"]
    not_modified = await scim.get(f"/Groups/{group['id']}", headers={"If-None-Match": answer.headers["ETag"]})
    assert not_modified.status == 304


async def test_head_of_a_spliced_group_has_its_length_and_no_body(scim: Scim, monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    monkeypatch.setattr(spliced, "SPLICED_BYTES", 10)
    users = [await scim.create_user(f"u{i}") for i in range(3)]
    group = await scim.create_group("g", [u["id"] for u in users])
    full = await scim.get(f"/Groups/{group['id']}")
    head = await scim.request("HEAD", f"/Groups/{group['id']}")
    assert head.status == 200 and head.body is None
    assert head.headers["Content-Length"] == full.headers["Content-Length"]
    assert head.headers["ETag"] == full.headers["ETag"]
