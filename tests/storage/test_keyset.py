"""Keyset pages (store.seek): from any row of a search's order, the rows after it (or before it) are exactly
the rest of that order, sorted or not, with ties and absent sort values; and they are reached by the index."""

from __future__ import annotations

import pytest

from app.protocol.filter_resolution import resolve_sort
from app.protocol.resolved import SearchQuery
from app.protocol.schema_defs import USER_RESOURCE
from app.storage.interface import Storage, Transaction
from app.storage.records import Found, Key
from app.storage.sqlite.resources import compiled

BUDGET = 1 << 20
TITLES = ["b", "a", None, "c", "a", None, "b", "A", "c"]


def seeded(tx: Transaction) -> None:
    for i, title in enumerate(TITLES):
        document = {"userName": f"u{i}"} | ({"title": title} if title else {})
        tx.resources.insert(USER_RESOURCE, f"id{i}", document, "2026-01-01T00:00:00.000000Z")


def everything(tx: Transaction, search: SearchQuery) -> list[Found]:
    found, more = tx.resources.seek(search, None, len(TITLES), BUDGET)
    assert not more
    return found


@pytest.mark.parametrize("sort_by", [None, "title"])
@pytest.mark.parametrize("descending", [False, True])
async def test_seeking_from_every_row_gives_the_rest_of_the_order(database: Storage, sort_by: str | None,
                                                                  descending: bool) -> None:
    await database.write(seeded)
    sort = resolve_sort(USER_RESOURCE, sort_by) if sort_by else None
    search = SearchQuery(USER_RESOURCE, None, sort, descending)

    def check(tx: Transaction) -> list[str]:
        whole = everything(tx, search)
        ids = [f.resource.id for f in whole]
        for place, row in enumerate(whole):
            after, more_after = tx.resources.seek(search, row.key, len(TITLES), BUDGET)
            assert [f.resource.id for f in after] == ids[place + 1:] and not more_after
            before, _ = tx.resources.seek(search, row.key, len(TITLES), BUDGET, backwards=True)
            assert [f.resource.id for f in before] == ids[:place][::-1]  # nearest first
            two, more = tx.resources.seek(search, row.key, 2, BUDGET)
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


# SQLite only: it reads SQLite's EXPLAIN QUERY PLAN.
@pytest.mark.engines("sqlite", reason="SQLite's query plan of a keyset seek")
async def test_an_unsorted_seek_is_a_rowid_search_not_a_scan(database: Storage) -> None:
    """What makes the last page cost what the first does: SQLite seeks to the key, it does not walk to it."""
    sql, params = compiled(SearchQuery(USER_RESOURCE)).seek_sql(Key(99_900), backwards=False)

    def plan(tx: Transaction) -> list[str]:
        return [row[3] for row in tx.connection.execute(f"EXPLAIN QUERY PLAN {sql} LIMIT 101", params)]

    assert await database.read(plan) == ["SEARCH r USING INTEGER PRIMARY KEY (rowid>?)"]


async def test_a_seek_stops_at_the_byte_budget_and_says_more_follow(database: Storage) -> None:
    await database.write(seeded)
    search = SearchQuery(USER_RESOURCE)
    found, more = await database.read(lambda tx: tx.resources.seek(search, None, 5, 1))
    assert len(found) == 1 and more  # the first resource always goes in
