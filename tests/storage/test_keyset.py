"""Keyset pages (store.seek): from any row of a search's order, the rows after it (or before it) are exactly
the rest of that order, sorted or not, with ties and absent sort values; and they are reached by the index."""

from __future__ import annotations

import sqlite3

import pytest

from app.protocol.schema_defs import USER_RESOURCE
from app.storage import resources as store
from app.storage.database import Database
from app.storage.filter_sql import compile_sort

BUDGET = 1 << 20
TITLES = ["b", "a", None, "c", "a", None, "b", "A", "c"]


def seeded(conn: sqlite3.Connection) -> None:
    for i, title in enumerate(TITLES):
        document = {"userName": f"u{i}"} | ({"title": title} if title else {})
        store.insert(conn, USER_RESOURCE, f"id{i}", document, "2026-01-01T00:00:00.000000Z")


def everything(conn: sqlite3.Connection, search: store.Search) -> list[store.Found]:
    found, more = store.seek(conn, search, None, len(TITLES), BUDGET)
    assert not more
    return found


@pytest.mark.parametrize("sort_by", [None, "title"])
@pytest.mark.parametrize("descending", [False, True])
async def test_seeking_from_every_row_gives_the_rest_of_the_order(database: Database, sort_by: str | None,
                                                                  descending: bool) -> None:
    await database.write(seeded)
    order_by = compile_sort(USER_RESOURCE, sort_by) if sort_by else None
    search = store.Search(USER_RESOURCE, "1", (), order_by, descending)

    def check(conn: sqlite3.Connection) -> list[str]:
        whole = everything(conn, search)
        ids = [f.resource.id for f in whole]
        for place, row in enumerate(whole):
            after, more_after = store.seek(conn, search, row.key, len(TITLES), BUDGET)
            assert [f.resource.id for f in after] == ids[place + 1:] and not more_after
            before, _ = store.seek(conn, search, row.key, len(TITLES), BUDGET, backwards=True)
            assert [f.resource.id for f in before] == ids[:place][::-1]  # nearest first
            two, more = store.seek(conn, search, row.key, 2, BUDGET)
            assert [f.resource.id for f in two] == ids[place + 1:place + 3]
            assert more is (place + 3 < len(ids))
        return ids

    ids = await database.read(check)
    titles = [TITLES[int(i[2:])] for i in ids]
    if sort_by:
        present = sorted((t.casefold() for t in titles if t), reverse=descending)
        assert [t.casefold() for t in titles if t] == present
        assert titles[-2:] == [None, None]  # absent values last, either direction
    else:
        assert ids == [f"id{i}" for i in range(len(TITLES))]  # creation order


async def test_an_unsorted_seek_is_a_rowid_search_not_a_scan(database: Database) -> None:
    """What makes the last page cost what the first does: SQLite seeks to the key, it does not walk to it."""
    search = store.Search(USER_RESOURCE, "1", ())
    sql, params = search.seek_sql(store.Key(99_900), backwards=False)

    def plan(conn: sqlite3.Connection) -> list[str]:
        return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql} LIMIT 101", params)]

    assert await database.read(plan) == ["SEARCH r USING INTEGER PRIMARY KEY (rowid>?)"]


async def test_a_seek_stops_at_the_byte_budget_and_says_more_follow(database: Database) -> None:
    await database.write(seeded)
    search = store.Search(USER_RESOURCE, "1", ())
    found, more = await database.read(lambda conn: store.seek(conn, search, None, 5, 1))
    assert len(found) == 1 and more  # the first resource always goes in
