"""/api/members: ?at= (the roster replayed from the change feed), ?role=, ?q=, keyset pages. Real HTTP, real
SQLite."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain.clock import utc_now
from app.storage.interface import Storage, Transaction
from app.storage.sqlite import roster as store
from tests.conftest import Scim

ADMINS, MEMBERS = "rollcall-administrators", "rollcall-members"


async def members(scim: Scim, query: str = "") -> list[dict[str, Any]]:
    answer = await scim.get(f"/api/members{query}")
    assert answer.status == 200, answer.body
    return answer.body["members"]


async def test_the_roster_at_past_moments_follows_joins_role_changes_departures_and_deletions(scim: Scim) -> None:
    ann = await scim.create_user("ann", emails=[{"value": "ann@acme.com"}])
    bob = await scim.create_user("bob")
    admins = await scim.create_group(ADMINS, [ann["id"]])
    members_group = await scim.create_group(MEMBERS, [bob["id"]])
    first = utc_now()
    await scim.patch(f"/Groups/{admins['id']}", [{"op": "add", "path": "members", "value": [{"value": bob["id"]}]}])
    second = utc_now()
    assert (await scim.delete(f"/Users/{ann['id']}")).status == 204
    third = utc_now()
    await scim.patch(f"/Groups/{members_group['id']}", [{"op": "remove", "path": "members"}])
    await scim.patch(f"/Groups/{admins['id']}", [{"op": "remove", "path": "members"}])
    fourth = utc_now()

    at_first = await members(scim, f"?at={first}")
    assert [(m["userName"], m["role"], m["groups"]) for m in at_first] == [("ann", "admin", [ADMINS]),
                                                                          ("bob", "member", [MEMBERS])]
    assert at_first[0]["email"] is None  # ann is gone: her name comes from the feed, nothing else is kept
    assert [(m["userName"], m["role"]) for m in await members(scim, f"?at={second}")] == [("ann", "admin"),
                                                                                       ("bob", "admin")]
    at_third = await members(scim, f"?at={third}")
    assert [(m["userName"], m["role"]) for m in at_third] == [("bob", "admin")]
    # A role change keeps `since`: bob has been a member since he first joined.
    assert at_third[0]["since"] == at_first[1]["since"] <= first
    # Bob was the last admin: his departure is held for a person (README: Safety nets), so he never left.
    assert [(m["userName"], m["role"]) for m in await members(scim, f"?at={fourth}")] == [("bob", "admin")]
    assert [(m["userName"], m["role"], m["held"]) for m in await members(scim)] == [("bob", "admin", True)]
    assert await members(scim, "?at=2000-01-01T00:00:00Z") == []
    # An offset is read as such: the same moment written in another zone gives the same answer.
    assert await members(scim, "?at=2999-01-01T01:00:00%2B01:00") == await members(scim)


async def test_role_and_q_narrow_the_roster(scim: Scim) -> None:
    ann = await scim.create_user("ann.smith", displayName="Ann Smith", emails=[{"value": "ann@ACME.com"}])
    bob = await scim.create_user("bob", displayName="Robert Jones", emails=[{"value": "rj@other.org"}])
    cat = await scim.create_user("cat", emails=[{"value": "cat@acme.com"}])
    await scim.create_group(ADMINS, [ann["id"]])
    await scim.create_group(MEMBERS, [bob["id"], cat["id"]])
    assert [m["userName"] for m in await members(scim, "?role=admin")] == ["ann.smith"]
    assert [m["userName"] for m in await members(scim, "?role=member")] == ["bob", "cat"]
    assert [m["userName"] for m in await members(scim, "?q=acme.COM")] == ["ann.smith", "cat"]  # any e-mail
    assert [m["userName"] for m in await members(scim, "?q=jones")] == ["bob"]  # displayName
    assert [m["userName"] for m in await members(scim, "?q=SMITH&role=admin")] == ["ann.smith"]  # userName
    assert await members(scim, "?q=smith&role=member") == []
    moment = utc_now()
    await scim.patch(f"/Users/{cat['id']}", [{"op": "replace", "path": "active", "value": False}])
    assert [m["userName"] for m in await members(scim, f"?at={moment}&role=member&q=acme")] == ["cat"]


async def test_keyset_pages_walk_the_whole_roster_once_live_and_at(scim: Scim) -> None:
    ids = [(await scim.create_user(f"user{i:03d}"))["id"] for i in range(45)]
    await scim.create_group(MEMBERS, ids)
    moment = utc_now()
    for suffix in ("", f"&at={moment}"):
        seen: list[str] = []
        after = ""
        while True:
            answer = await scim.get(f"/api/members?limit=10{after}{suffix}")
            assert answer.status == 200 and len(answer.body["members"]) <= 10
            seen += [m["userName"] for m in answer.body["members"]]
            if answer.body["next"] is None:
                break
            after = f"&after={answer.body['next']}"
        assert seen == [f"user{i:03d}" for i in range(45)], suffix
    whole = await scim.get("/api/members")
    assert len(whole.body["members"]) == 45 and whole.body["next"] is None


async def test_bad_roster_queries_get_a_400_that_says_why(scim: Scim) -> None:
    for query, words in (("?at=yesterday", "at must be a dateTime"), ("?role=owner", "role must be one of"),
                         ("?limit=0", "at least 1"), ("?limit=x", "whole number"), ("?after=%E2%82%AC", "cursor"),
                         ("?after=bm90IGpzb24", "cursor"), ("?after=WzFd", "cursor")):
        answer = await scim.get(f"/api/members{query}")
        assert answer.status == 400 and words in answer.body["detail"], (query, answer.body)


# SQLite only: it reads SQLite's EXPLAIN QUERY PLAN.
@pytest.mark.engines("sqlite", reason="SQLite's query plan (EXPLAIN QUERY PLAN) of a roster page")
async def test_a_live_page_is_read_by_index_not_sorted(database: Storage) -> None:
    """For a roster of 100,000 each page is a seek on users_user_name_key and `limit` rows, not a sort of all."""
    def plan(tx: Transaction) -> list[str]:
        conn = tx.connection  # type: ignore[attr-defined]
        sql = ("SELECT * FROM (" + store._ROSTER_NOW + ") AS listed WHERE (sort_key, user_id) > (?, ?) "
               "ORDER BY sort_key, user_id LIMIT ?")
        # The top level only (parent 0): the one user's e-mails a correlated subquery orders are no concern here.
        return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, ("k", "id", 10)) if row[1] == 0]

    top = await database.read(plan)
    assert any("roster_by_name" in step for step in top), top
    assert not any("TEMP B-TREE" in step for step in top), top
