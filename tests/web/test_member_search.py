"""The members search (/api/members?q=, the console's search box): what it finds, at once after a change, page by
page, and literally. Real HTTP, on both engines (the search key each keeps with a roster entry,
app/storage/search_key.py)."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest

from app.protocol.folding import fold_case
from app.storage.interface import Storage, Transaction
from app.storage.sqlite import roster as store
from tests.conftest import USER_SCHEMA, Scim

ADMINS, MEMBERS = "rollcall-administrators", "rollcall-members"


async def found(scim: Scim, term: str, extra: str = "") -> list[str]:
    answer = await scim.get(f"/api/members?q={urllib.parse.quote(term)}{extra}")
    assert answer.status == 200, answer.body
    return [m["userName"] for m in answer.body["members"]]


async def test_search_finds_by_user_name_display_name_and_any_email_as_fold_case_folds(scim: Scim) -> None:
    assert fold_case("Straße") == fold_case("STRASSE")  # the rule the search must follow, not lower()
    anna = await scim.create_user("anna", displayName="Anna Straße",
                                  emails=[{"value": "anna@first.org", "primary": True},
                                          {"value": "A.Second@Example.ORG", "type": "home"}])
    gross = await scim.create_user("GROSS.k", emails=[{"value": "k@first.org"}])
    await scim.create_user("nobody-in-a-group")  # not on the roster: never found
    await scim.create_group(MEMBERS, [anna["id"], gross["id"]])
    assert await found(scim, "STRASSE") == ["anna"]  # displayName, ß folded to ss
    assert await found(scim, "groß") == ["GROSS.k"]  # userName
    assert await found(scim, "a.second@EXAMPLE.org") == ["anna"]  # a secondary e-mail
    assert await found(scim, "FIRST.ORG") == ["anna", "GROSS.k"]
    assert await found(scim, "nobody") == []
    assert await found(scim, "first.org", "&role=admin") == []
    assert await found(scim, "first.org", "&role=member") == ["anna", "GROSS.k"]


async def test_a_rename_or_an_email_change_is_found_at_once_by_the_new_value_only(scim: Scim) -> None:
    ann = await scim.create_user("ann", displayName="Ann Old", emails=[{"value": "ann@old.org"}])
    await scim.create_group(MEMBERS, [ann["id"]])
    assert await found(scim, "ann old") == ["ann"]
    patched = await scim.patch(f"/Users/{ann['id']}", [{"op": "replace", "path": "displayName", "value": "Ann New"}])
    assert patched.status == 200, patched.body
    assert await found(scim, "ann new") == ["ann"] and await found(scim, "ann old") == []
    put = await scim.put(f"/Users/{ann['id']}", {"schemas": [USER_SCHEMA], "userName": "annabel",
                                                 "displayName": "Ann New", "emails": [{"value": "ann@new.org"}]})
    assert put.status == 200, put.body
    assert await found(scim, "new.org") == ["annabel"] and await found(scim, "old.org") == []
    assert await found(scim, "annabel") == ["annabel"]
    patched = await scim.patch(f"/Users/{ann['id']}", [{"op": "add", "path": "emails",
                                                        "value": [{"value": "extra@third.org"}]}])
    assert patched.status == 200, patched.body
    assert await found(scim, "third.org") == ["annabel"] and await found(scim, "new.org") == ["annabel"]


async def test_paging_through_search_results_is_complete_and_in_order(scim: Scim) -> None:
    ids = [(await scim.create_user(f"user{i:03d}", displayName="Match Me" if i % 3 == 0 else "Someone Else"))["id"]
           for i in range(40)]
    await scim.create_group(ADMINS, ids[:12])
    await scim.create_group(MEMBERS, ids[12:])
    for role, expected in (("", [i for i in range(40) if i % 3 == 0]),
                           ("&role=admin", [i for i in range(12) if i % 3 == 0]),
                           ("&role=member", [i for i in range(12, 40) if i % 3 == 0])):
        seen: list[str] = []
        after = ""
        while True:
            answer = await scim.get(f"/api/members?q=match&limit=4{role}{after}")
            assert answer.status == 200 and len(answer.body["members"]) <= 4, answer.body
            seen += [m["userName"] for m in answer.body["members"]]
            if answer.body["next"] is None:
                break
            after = f"&after={answer.body['next']}"
        assert seen == [f"user{i:03d}" for i in expected], role


async def test_a_term_with_percent_underscore_or_the_key_separator_is_literal(scim: Scim) -> None:
    users = [await scim.create_user(name, displayName=display) for name, display in
             (("100%sure", "P"), ("under_score", "U"), ("xa", "by"), ("plain", "Plain"))]
    await scim.create_group(MEMBERS, [u["id"] for u in users])
    assert await found(scim, "%") == ["100%sure"]
    assert await found(scim, "_") == ["under_score"]
    assert await found(scim, "0%s") == ["100%sure"]
    # The key joins xa and by with U+001F: a term holding it is looked for in one field, so it spans none.
    assert await found(scim, "a\x1fb") == []
    assert await found(scim, "\x1f") == []
    assert await found(scim, "xa") == ["xa"]


async def test_a_held_member_whose_user_is_deleted_is_found_by_their_name_only(scim: Scim) -> None:
    boss = await scim.create_user("boss", displayName="The Boss", emails=[{"value": "boss@corp.org"}])
    await scim.create_group(ADMINS, [boss["id"]])
    assert await found(scim, "the boss") == ["boss"]
    # The last admin's departure is held for a person (README: Safety nets): the entry stays, its user is gone.
    assert (await scim.delete(f"/Users/{boss['id']}")).status == 204
    assert await found(scim, "boss") == ["boss"]
    assert await found(scim, "the boss") == [] and await found(scim, "corp.org") == []


async def members_at(scim: Scim, moment: str, term: str) -> list[dict[str, Any]]:
    answer = await scim.get(f"/api/members?at={urllib.parse.quote(moment)}&q={urllib.parse.quote(term)}")
    assert answer.status == 200, answer.body
    return answer.body["members"]


async def test_the_roster_at_a_moment_is_searched_by_the_users_current_key(scim: Scim) -> None:
    from app.domain.clock import utc_now

    ann = await scim.create_user("ann", displayName="Ann Was", emails=[{"value": "ann@acme.com"}])
    await scim.create_group(MEMBERS, [ann["id"]])
    moment = utc_now()
    await scim.patch(f"/Users/{ann['id']}", [{"op": "replace", "path": "displayName", "value": "Ann Is"}])
    assert [m["userName"] for m in await members_at(scim, moment, "ann is")] == ["ann"]
    assert [m["userName"] for m in await members_at(scim, moment, "ACME")] == ["ann"]
    assert await members_at(scim, moment, "ann was") == []


# SQLite only: it reads SQLite's EXPLAIN QUERY PLAN.
@pytest.mark.engines("sqlite", reason="SQLite's query plans of a members search page")
async def test_a_search_page_is_chosen_from_one_covering_index_and_read_by_primary_key(database: Storage) -> None:
    """At 100,000 members a term nobody matches walks the whole roster: it must walk roster_search alone (no row
    read, no folding per entry), and read only the page's rows, by primary key."""
    def plans(tx: Transaction) -> list[list[str]]:
        conn = tx.connection  # type: ignore[attr-defined]
        found = []
        for after, params in (("", ("x", "member", 50)), ("AND (user_name_key, user_id) > (?, ?)",
                                                           ("x", "member", "k", "id", 50))):
            page = store._SEARCH_PAGE.format(role="AND role = ?", after=after)
            sql = f"SELECT * FROM ({store._ROSTER_NOW} WHERE r.user_id IN ({page})) AS listed ORDER BY sort_key"
            found.append([row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)])
        return found

    first, next_page = await database.read(plans)
    assert "SCAN roster USING COVERING INDEX roster_search" in first, first
    assert any(step.startswith("SEARCH roster USING COVERING INDEX roster_search (") for step in next_page), next_page
    for steps in (first, next_page):
        assert "SEARCH r USING PRIMARY KEY (user_id=?)" in steps, steps
        assert not any(step.startswith("SCAN r ") for step in steps), steps


# PostgreSQL only: it reads PostgreSQL's EXPLAIN.
def test_a_rare_term_can_be_found_through_the_trigram_index_on_postgresql(postgres_url: str) -> None:
    """A term that matches few people is answered from roster_search_trigrams (pg_trgm), not by reading every
    entry in order: the statement the engine sends must be one that index serves (LIKE on search_key; strpos is
    not)."""
    import psycopg

    from app.storage.postgres import transaction as pg
    from app.storage.records import MemberQuery

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")  # an empty table: the plan the index allows, not the cheapest
        conn.execute("SET enable_indexscan = off")  # nor the walk in order, cheap on an empty table
        sql, params = pg.member_sql(pg._ROSTER_NOW, [], MemberQuery(None, "nobody-at-all", None, 50))
        plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + sql, params))
    assert "Bitmap Index Scan on roster_search_trigrams" in plan, plan
