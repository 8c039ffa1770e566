"""startIndex pages by seek (app/domain/paging.py): wherever a page starts, and whatever committed between two
pages, it holds exactly what an OFFSET query gives at that moment, on both engines."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

import orjson
import pytest

from app.config import Settings
from app.domain import paging
from app.protocol.filter_resolution import resolve_search
from app.protocol.filters import parse_filter
from app.protocol.resolved import SearchQuery
from app.protocol.schema_defs import GROUP_RESOURCE, USER_RESOURCE
from app.storage.factory import open_storage
from app.storage.interface import Storage, Transaction
from app.storage.records import StoredResource

BUDGET = 1 << 20
USERS = [SearchQuery(USER_RESOURCE)]
ROOT = [SearchQuery(USER_RESOURCE), SearchQuery(GROUP_RESOURCE)]  # the root /.search: Users, then Groups
NOW = "2026-01-01T00:00:00.000000Z"
SEEDED = 3 * paging.ANCHOR_EVERY + 40
EVERY = paging.ANCHOR_EVERY


def render(tx: Transaction, search: SearchQuery, found: list[StoredResource],
           page: list[orjson.Fragment], used: int) -> tuple[int, int]:
    page.extend(orjson.Fragment(orjson.dumps(r.id)) for r in found)
    return len(found), used


def add_users(first: int, last: int) -> Callable[[Transaction], None]:
    def write(tx: Transaction) -> None:
        for i in range(first, last):
            tx.resources.insert(USER_RESOURCE, f"u{i:05d}", {"userName": f"user{i:05d}"}, NOW)
    return write


def add_groups(count: int) -> Callable[[Transaction], None]:
    def write(tx: Transaction) -> None:
        for i in range(count):
            tx.resources.insert(GROUP_RESOURCE, f"g{i:05d}", {"displayName": f"group{i:05d}"}, NOW)
    return write


def delete_users(ids: Sequence[str]) -> Callable[[Transaction], None]:
    def write(tx: Transaction) -> None:
        for resource_id in ids:
            assert tx.resources.delete(USER_RESOURCE, resource_id)
    return write


async def page_and_truth(database: Storage, hints: paging.PageHints, searches: list[SearchQuery],
                         start_index: int, count: int = 10) -> tuple[list[str], list[str], int]:
    """The page index_page gives, and in the same transaction what plain OFFSET queries give, and the total."""
    def read(tx: Transaction) -> tuple[list[str], list[str], int]:
        page = paging.index_page(tx, hints, hints.generation(), searches, start_index, count, BUDGET, render)
        everything = [f.resource.id for s in searches
                      for f in tx.resources.page(s, 1 << 30, 0, 1 << 40)[0]]
        truth = everything[start_index - 1:start_index - 1 + count]
        assert page.total == len(everything)
        return orjson.loads(orjson.dumps(page.resources)), truth, page.total

    return await database.read(read)


def starts(total: int) -> list[int]:
    """First, next to every anchor, middle, last, the last full page, past the end, and some at random."""
    edges = [1, 2, 10, 11, EVERY - 1, EVERY, EVERY + 1, EVERY + 2, 2 * EVERY, 2 * EVERY + 1, total // 2,
             total - 10, total - 9, total - 1, total, total + 1, total + 50]
    return edges + random.Random(16).sample(range(1, total + 1), 12)


async def assert_exact(database: Storage, hints: paging.PageHints, searches: list[SearchQuery], total: int,
                       deepest_first: bool = False) -> None:
    for start in sorted(starts(total), reverse=True) if deepest_first else starts(total):
        page, truth, counted = await page_and_truth(database, hints, searches, start)
        assert counted == total
        assert page == truth, f"startIndex={start}"


async def test_every_page_is_what_offset_gives(database: Storage) -> None:
    await database.write(add_users(0, SEEDED))
    hints = paging.PageHints(database)
    await assert_exact(database, hints, USERS, SEEDED)
    await assert_exact(database, hints, USERS, SEEDED)  # again, now from the anchors the first pass found
    # From no anchors straight to the deepest: every anchor is found in one go.
    await assert_exact(database, paging.PageHints(database), USERS, SEEDED, deepest_first=True)


async def test_pages_stay_exact_after_deletes_and_inserts_in_between(database: Storage) -> None:
    await database.write(add_users(0, SEEDED))
    hints = paging.PageHints(database)
    await assert_exact(database, hints, USERS, SEEDED)
    # Rows go before the first anchor, right at anchors, and between them; new rows come at the end.
    gone = ["u00000", "u00005", f"u{EVERY - 1:05d}", f"u{EVERY:05d}", f"u{2 * EVERY + 3:05d}"]
    await database.write(delete_users(gone))
    await database.write(add_users(SEEDED, SEEDED + 7))
    await assert_exact(database, hints, USERS, SEEDED - len(gone) + 7, deepest_first=True)


async def test_root_pages_across_users_then_groups(database: Storage) -> None:
    await database.write(add_users(0, 2 * EVERY + 5))
    await database.write(add_groups(EVERY + 30))
    hints = paging.PageHints(database)
    await assert_exact(database, hints, ROOT, 3 * EVERY + 35)
    await database.write(delete_users(["u00003"]))
    await assert_exact(database, hints, ROOT, 3 * EVERY + 34)


async def test_a_filtered_search_seeks_as_well(database: Storage) -> None:
    await database.write(add_users(0, SEEDED))
    search = resolve_search(USER_RESOURCE, parse_filter('not (userName ew "5")'), None, False, False)
    hints = paging.PageHints(database)
    matches = await database.read(lambda tx: tx.resources.count(search))
    assert EVERY < matches < SEEDED
    await assert_exact(database, hints, [search], matches, deepest_first=True)


@pytest.mark.engines("sqlite", reason="it reads the statements SQLite runs, through its trace callback")
async def test_a_deep_page_skips_fewer_rows_than_an_anchor_span_after_many_pages(database: Storage) -> None:
    await database.write(add_users(0, SEEDED))
    hints = paging.PageHints(database)
    await page_and_truth(database, hints, USERS, SEEDED - 5)  # finds the anchors
    hints.MAX = 8
    # Pages before the first anchor, each leaving its end behind (more ends than the hints hold), none starting
    # where another ended: the anchors, read by each, must outlive them.
    for start in range(5 * hints.MAX, 1, -1):
        await database.read(lambda tx, start=start: paging.index_page(  # type: ignore[misc]
            tx, hints, hints.generation(), USERS, start, 1, BUDGET, render))

    def read(tx: Transaction) -> list[str]:
        conn = tx.connection  # type: ignore[attr-defined]
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        try:
            paging.index_page(tx, hints, hints.generation(), USERS, SEEDED - 99, 10, BUDGET, render)
        finally:
            conn.set_trace_callback(None)
        return statements

    statements = await database.read(read)
    offsets = [int(m) for s in statements for m in re.findall(r"OFFSET (\d+)", s)]
    assert len(offsets) == 1 and offsets[0] < EVERY, statements  # one step from the anchor: none rebuilt
    assert not any("count(*)" in s for s in statements), statements


@pytest.mark.engines("postgresql", reason="only PostgreSQL has other instances committing unseen")
async def test_another_instances_commit_makes_the_anchors_stale(database: Storage, settings: Settings) -> None:
    await database.write(add_users(0, SEEDED))
    hints = paging.PageHints(database)
    await assert_exact(database, hints, USERS, SEEDED)
    other = open_storage(settings.db_path)  # another instance on the same database: its commits go unseen here
    await other.open()
    try:
        await other.write(delete_users(["u00001", f"u{EVERY + 1:05d}"]))
    finally:
        await other.close()
    await assert_exact(database, hints, USERS, SEEDED - 2)


@pytest.mark.engines("postgresql", reason="a view is PostgreSQL's snapshot; SQLite's is its generation")
async def test_the_same_snapshot_is_one_view_and_a_commit_makes_another(database: Storage) -> None:
    await database.write(add_users(0, 3))
    hints = paging.PageHints(database)
    first = await database.read(lambda tx: hints.view(tx, hints.generation()))
    again = await database.read(lambda tx: hints.view(tx, hints.generation()))
    assert first is not None and first == again
    await database.write(delete_users(["u00001"]))
    assert await database.read(lambda tx: hints.view(tx, hints.generation())) != first


@pytest.mark.engines("sqlite", reason="Storage.generation tells SQLite's views apart; PostgreSQL's is the "
                                      "snapshot itself")
async def test_a_read_whose_snapshot_is_newer_than_its_generation_trusts_no_hint(database: Storage) -> None:
    await database.write(add_users(0, SEEDED))
    hints = paging.PageHints(database)
    await assert_exact(database, hints, USERS, SEEDED)  # anchors, counts and page ends at this generation
    before = hints.generation()
    await database.write(delete_users(["u00002"]))
    start = 2 * EVERY + 5

    def read(tx: Transaction) -> tuple[list[str], list[str], int]:
        # As a read does that reads the generation just before a commit begins and starts after it ended.
        page = paging.index_page(tx, hints, before, USERS, start, 10, BUDGET, render)
        truth = [f.resource.id for f in tx.resources.page(USERS[0], 10, start - 1, BUDGET)[0]]
        return orjson.loads(orjson.dumps(page.resources)), truth, page.total

    page, truth, total = await database.read(read)
    assert (page, total) == (truth, SEEDED - 1)
    assert hints.get(("generation", before), ("count", USERS[0])) == SEEDED  # what it knew stays its own
