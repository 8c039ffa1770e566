"""Index pages by keyset (app/domain/paging.py): the page after a page seeks to where that one ended, and what
was learnt about the data is never used once a write has committed."""

from __future__ import annotations

import re

import orjson
import pytest

from app.domain import paging
from app.protocol.resolved import SearchQuery
from app.protocol.schema_defs import USER_RESOURCE
from app.storage.interface import Storage, Transaction
from app.storage.records import StoredResource

BUDGET = 1 << 20
SEARCHES = [SearchQuery(USER_RESOURCE)]


def render(tx: Transaction, search: SearchQuery, found: list[StoredResource],
           page: list[orjson.Fragment], used: int) -> tuple[int, int]:
    page.extend(orjson.Fragment(orjson.dumps(r.id)) for r in found)
    return len(found), used


def seeded(tx: Transaction) -> None:
    for i in range(30):
        tx.resources.insert(USER_RESOURCE, f"id{i:02d}", {"userName": f"u{i:02d}"}, "2026-01-01T00:00:00.000000Z")


async def page_and_statements(database: Storage, hints: paging.PageHints, start_index: int
                              ) -> tuple[list[str], list[str]]:
    def read(tx: Transaction) -> tuple[list[str], list[str]]:
        conn = tx.connection  # type: ignore[attr-defined]
        statements: list[str] = []
        generation = hints.generation()
        conn.set_trace_callback(statements.append)
        try:
            page = paging.index_page(tx, hints, generation, SEARCHES, start_index, 10, BUDGET, render)
        finally:
            conn.set_trace_callback(None)
        return orjson.loads(orjson.dumps(page.resources)), statements

    return await database.read(read)


# SQLite only: it counts the statements SQLite runs (its trace callback).
@pytest.mark.engines("sqlite", reason="counts SQLite's statements (its trace callback)")
async def test_the_page_after_a_page_seeks_and_counts_nothing(database: Storage) -> None:
    await database.write(seeded)
    hints = paging.PageHints(database)
    first, counted = await page_and_statements(database, hints, 1)
    assert first == [f"id{i:02d}" for i in range(10)]
    assert any("count(*)" in s for s in counted)
    second, statements = await page_and_statements(database, hints, 11)
    assert second == [f"id{i:02d}" for i in range(10, 20)]
    assert not any("OFFSET" in s or "count(*)" in s for s in statements), statements
    assert any(re.search(r"r\.rowid > 10\b", s) for s in statements), statements  # after the 10th row


# SQLite only: PostgreSQL keeps `generation` odd (other instances commit unseen), so no hint is ever trusted.
@pytest.mark.engines("sqlite", reason="counts SQLite's statements (its trace callback)")
async def test_a_write_makes_every_hint_stale(database: Storage) -> None:
    await database.write(seeded)
    hints = paging.PageHints(database)
    await page_and_statements(database, hints, 1)
    await database.write(lambda tx: tx.resources.delete(USER_RESOURCE, "id00"))
    assert database.generation % 2 == 0
    second, statements = await page_and_statements(database, hints, 11)
    assert second == [f"id{i:02d}" for i in range(11, 21)]  # id00 is gone: everyone moved up one
    assert any("OFFSET" in s for s in statements) and any("count(*)" in s for s in statements)


# SQLite only: PostgreSQL keeps `generation` odd (other instances commit unseen), so no hint is ever trusted.
@pytest.mark.engines("sqlite", reason="SQLite's commit generation of one process")
async def test_nothing_is_trusted_while_a_commit_is_under_way(database: Storage) -> None:
    hints = paging.PageHints(database)
    hints.put(hints.generation(), "key", "value")
    assert hints.get(hints.generation(), "key") == "value"
    database._generation += 1  # type: ignore[attr-defined]  # what SqliteStorage does before it commits
    try:
        assert hints.generation() is None
        assert hints.get(hints.generation(), "key") is None
    finally:
        database._generation -= 1  # type: ignore[attr-defined]


@pytest.mark.engines("postgresql", reason="instances that share a PostgreSQL database commit unseen")
async def test_no_hint_is_trusted_where_other_instances_commit_unseen(database: Storage) -> None:
    hints = paging.PageHints(database)
    hints.put(hints.generation(), "key", "value")
    assert hints.generation() is None
    assert hints.get(hints.generation(), "key") is None
