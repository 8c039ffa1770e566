"""Issue 9, finding 7: only point reads (equality on unique keys, by SQLite's own plan) may run on the event loop;
`externalId eq null` and every other filter that may walk the table must go to a reader thread."""

from __future__ import annotations

import pytest

from app.protocol.filter_resolution import resolve_search
from app.protocol.filters import parse_filter
from app.protocol.schema_defs import GROUP_RESOURCE, USER_RESOURCE, ResourceType
from app.storage.interface import Storage
from app.storage.sqlite.resources import is_point_search

# SQLite only: these are SQLite's query plans (PostgreSQL decides nothing from a plan: every read is on a thread).
pytestmark = pytest.mark.engines("sqlite", reason="SQLite's query plans: where a read runs, on the loop or "
                                                         "a reader thread")

USERS, GROUPS = USER_RESOURCE, GROUP_RESOURCE


async def point_read(database: Storage, resource_type: ResourceType, text: str, sort_by: str | None = None) -> bool:
    search = resolve_search(resource_type, parse_filter(text), sort_by, False)
    return await database.lookup(lambda tx: is_point_search(tx.connection, search))


@pytest.mark.parametrize(("resource_type", "text"), [
    (USERS, 'userName eq "alice"'),
    (USERS, 'USERNAME eq "Alice@Acme.com"'),
    (USERS, 'id eq "2819c223"'),
    (USERS, 'userName eq "alice" and title eq "x"'),
    (USERS, 'userName eq "alice" or userName eq "bob"'),
    (GROUPS, 'displayName eq "rollcall-members"'),
    (GROUPS, 'id eq "e9e30dba"'),
])
async def test_equality_on_a_unique_key_is_a_point_read(database: Storage, resource_type: ResourceType,
                                                        text: str) -> None:
    assert await point_read(database, resource_type, text)


@pytest.mark.parametrize(("resource_type", "text"), [
    (USERS, "externalId eq null"),  # the review's case: was taken for an indexed lookup
    (USERS, "userName eq null"),
    (USERS, 'userName ne "x"'),
    (USERS, "externalId pr"),
    (USERS, 'externalId eq "x"'),  # indexed, but not unique: it can match every user
    (USERS, 'title eq "x"'),
    (USERS, 'userName eq "alice" or title eq "x"'),
    (USERS, 'not (userName ne "alice")'),
    (USERS, 'userName gt "a"'),
    (USERS, 'userName sw "a"'),
    (USERS, 'userName eq "alice" and emails[value eq "a@b.c"]'),
    (USERS, 'groups.value eq "g1"'),
    (GROUPS, 'members.value eq "u1"'),
    (GROUPS, "displayName eq null"),
    (GROUPS, 'externalId eq "x"'),
])
async def test_anything_that_may_scan_is_not_a_point_read(database: Storage, resource_type: ResourceType,
                                                          text: str) -> None:
    assert not await point_read(database, resource_type, text)


async def test_the_sorted_page_statement_is_planned_too(database: Storage) -> None:
    # One row needs no sorting, so SQLite drops even a per-row subquery sort; a scan that walks an index in
    # sort order (no temp b-tree) is still a scan.
    assert await point_read(database, USERS, 'userName eq "alice"', sort_by="emails.value")
    assert not await point_read(database, USERS, 'title eq "x"', sort_by="userName")
    assert not await point_read(database, USERS, 'userName eq "a" or userName eq "b"', sort_by="emails.value")


async def test_a_point_read_decides_where_the_list_runs(database: Storage) -> None:
    """The decision is what the directory acts on: a scan over many rows never runs on the loop connection."""
    from app.domain.directory import Directory, ListQuery
    from app.domain.roles import RoleRules

    directory = Directory(database, RoleRules())
    on_loop: list[bool] = []
    search, read, lookup = database.search, database.read, database.lookup

    async def spy_search(work, queries):  # type: ignore[no-untyped-def]
        on_loop.append(True)
        return await search(work, queries)

    async def spy_lookup(work):  # type: ignore[no-untyped-def]
        on_loop.append(True)  # a point search (Directory._point_search) is a lookup
        return await lookup(work)

    async def spy_read(work):  # type: ignore[no-untyped-def]
        on_loop.append(False)
        return await read(work)

    database.search, database.read, database.lookup = spy_search, spy_read, spy_lookup  # type: ignore[method-assign]
    for text, expected in [('userName eq "a"', True), ("externalId eq null", False)]:
        on_loop.clear()
        await directory.search(USERS, ListQuery(filter=parse_filter(text), count=1000), "http://x/scim/v2")
        # A point read runs in the search that asked for the plan; anything else then goes to read().
        assert on_loop[-1] is expected, (text, on_loop)
