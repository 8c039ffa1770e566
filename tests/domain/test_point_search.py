"""Point searches (Directory._point_search, Resources.find): `filter=userName eq "..."`, `externalId eq`, `id eq`
answered from one index seek must give exactly what the general path (count, then a page) gives, on both engines,
and must not be taken for anything that path would answer differently."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.domain.directory import Context, Directory, ListQuery
from app.domain.roles import RoleRules
from app.protocol.filter_resolution import resolve_search
from app.protocol.filters import parse_filter
from app.protocol.schema_defs import GROUP_RESOURCE, GROUP_SCHEMA, USER_RESOURCE, USER_SCHEMA
from app.storage.interface import Storage

BASE = "http://rollcall.test/scim/v2"
CTX = Context(BASE)


async def seeded(database: Storage) -> dict[str, str]:
    """Three users (two sharing an externalId, one in a group) and the group; their ids by name."""
    directory = Directory(database, RoleRules())
    ids: dict[str, str] = {}
    for name, external in (("Ada.Lovelace", "EXT-1"), ("grace", "shared"), ("linus", "shared")):
        created = await directory.create(USER_RESOURCE, {"schemas": [USER_SCHEMA], "userName": name,
                                                         "externalId": external, "title": "engineer"}, CTX)
        ids[name] = created.body["id"]
    group = await directory.create(GROUP_RESOURCE, {"schemas": [GROUP_SCHEMA], "displayName": "Analysts",
                                                    "externalId": "g-1", "members": [{"value": ids["Ada.Lovelace"]}]},
                                   CTX)
    ids["Analysts"] = group.body["id"]
    return ids


async def answered(directory: Directory, resource_type: Any, query: ListQuery) -> bytes:
    """The ListResponse as the client gets it (the general path embeds each resource as encoded JSON)."""
    return orjson.dumps(await directory.search(resource_type, query, BASE))


def both(database: Storage) -> tuple[Directory, Directory]:
    return Directory(database, RoleRules()), Directory(database, RoleRules(), point_searches=False)


CASES = [
    (USER_RESOURCE, 'userName eq "Ada.Lovelace"', {}),
    (USER_RESOURCE, 'userName eq "ADA.LOVELACE"', {}),  # userName is compared case-folded
    (USER_RESOURCE, 'userName eq "nobody"', {}),
    (USER_RESOURCE, 'externalId eq "EXT-1"', {}),
    (USER_RESOURCE, 'externalId eq "ext-1"', {}),  # externalId is case-exact: no match
    (USER_RESOURCE, 'externalId eq "shared"', {}),  # two matches: the point path must give way
    (USER_RESOURCE, 'externalId eq "none"', {}),
    (USER_RESOURCE, 'userName eq "Ada.Lovelace"', {"attributes": ["userName"]}),
    (USER_RESOURCE, 'userName eq "Ada.Lovelace"', {"excluded": ["groups", "title"]}),
    (USER_RESOURCE, 'userName eq "Ada.Lovelace"', {"count": 1}),
    (USER_RESOURCE, 'userName eq "Ada.Lovelace"', {"count": 0}),
    (USER_RESOURCE, 'userName eq "Ada.Lovelace"', {"start_index": 2}),
    (USER_RESOURCE, 'userName eq "Ada.Lovelace"', {"sort_by": "userName"}),
    (USER_RESOURCE, 'userName eq "Ada.Lovelace"', {"cursor": ""}),
    (USER_RESOURCE, 'active eq true', {}),  # a FIELD no index answers alone
    (USER_RESOURCE, 'userName eq "grace" or userName eq "linus"', {}),
    (USER_RESOURCE, 'title eq "engineer"', {}),
    (GROUP_RESOURCE, 'displayName eq "analysts"', {}),
    (GROUP_RESOURCE, 'externalId eq "g-1"', {}),
    (GROUP_RESOURCE, 'displayName eq "analysts"', {"attributes": ["members.display"]}),
]


@pytest.mark.parametrize(("resource_type", "text", "options"), CASES)
async def test_a_point_search_answers_what_the_general_path_answers(database: Storage, resource_type: Any, text: str,
                                                                    options: dict[str, Any]) -> None:
    await seeded(database)
    point, general = both(database)
    query = ListQuery(filter=parse_filter(text), **options)
    assert await answered(point, resource_type, query) == await answered(general, resource_type, query)


async def test_a_point_search_by_id_answers_what_the_general_path_answers(database: Storage) -> None:
    ids = await seeded(database)
    point, general = both(database)
    for resource_type, resource_id in ((USER_RESOURCE, ids["Ada.Lovelace"]), (GROUP_RESOURCE, ids["Analysts"]),
                                       (USER_RESOURCE, "0" * 32)):
        query = ListQuery(filter=parse_filter(f'id eq "{resource_id}"'))
        answer = await answered(point, resource_type, query)
        assert answer == await answered(general, resource_type, query)
    assert orjson.loads(answer)["totalResults"] == 0


async def test_the_point_path_answers_a_single_match_with_its_groups(database: Storage) -> None:
    ids = await seeded(database)
    point, _ = both(database)
    search = resolve_search(USER_RESOURCE, parse_filter('userName eq "ada.lovelace"'), None, False)
    answer = await database.lookup(lambda tx: point._point_answer(tx, search, CTX))
    assert answer is not None and answer["totalResults"] == answer["itemsPerPage"] == 1
    assert answer["Resources"][0]["groups"][0]["value"] == ids["Analysts"]
    shared = resolve_search(USER_RESOURCE, parse_filter('externalId eq "shared"'), None, False)
    assert await database.lookup(lambda tx: point._point_answer(tx, shared, CTX)) is None


@pytest.mark.parametrize("text", ['userName eq "a"', 'externalId eq "a"', 'id eq "a"'])
async def test_an_engine_finds_a_point_search_by_an_index_seek(database: Storage, text: str) -> None:
    search = resolve_search(USER_RESOURCE, parse_filter(text), None, False)
    assert await database.lookup(lambda tx: tx.resources.find(search, 2)) == []


@pytest.mark.parametrize("text", ['active eq true', 'title eq "a"', 'userName sw "a"', 'userName ne "a"',
                                  'userName eq "a" and active eq true', 'not (userName eq "a")'])
async def test_an_engine_refuses_to_find_what_no_index_seek_answers(database: Storage, text: str) -> None:
    await seeded(database)
    search = resolve_search(USER_RESOURCE, parse_filter(text), None, False)
    assert await database.lookup(lambda tx: tx.resources.find(search, 2)) is None


def point_search_of(query: ListQuery, ctx: Context = CTX, types: tuple[Any, ...] = (USER_RESOURCE,)) -> Any:
    directory = Directory(None, RoleRules())  # type: ignore[arg-type]  # deciding reads no storage
    searches = [resolve_search(t, query.filter, query.sort_by, query.descending) for t in types]
    return directory._point_search(searches, query, ctx)


def test_the_point_path_is_taken_for_a_plain_equality() -> None:
    for text in ('userName eq "a"', 'externalId eq "a"', 'id eq "a"'):
        assert point_search_of(ListQuery(filter=parse_filter(text))) is not None
    assert point_search_of(ListQuery(filter=parse_filter('userName eq "a"'), count=5,
                                     attributes=["userName"])) is not None


@pytest.mark.parametrize(("query", "ctx"), [
    (ListQuery(filter=parse_filter('userName eq "a"'), sort_by="userName"), CTX),
    (ListQuery(filter=parse_filter('userName eq "a"'), count=0), CTX),
    (ListQuery(filter=parse_filter('userName eq "a"'), start_index=2), CTX),
    (ListQuery(filter=parse_filter('userName eq "a"'), cursor=""), CTX),
    (ListQuery(filter=parse_filter('userName eq "a"')), Context(BASE, attributes=['emails[type eq "work"]'])),
    (ListQuery(filter=parse_filter('userName ne "a"')), CTX),
    (ListQuery(filter=parse_filter('userName eq "a" and active eq true')), CTX),
    (ListQuery(filter=parse_filter('title eq "a"')), CTX),
    (ListQuery(), CTX),
])
def test_the_point_path_is_not_taken_where_it_would_answer_otherwise(query: ListQuery, ctx: Context) -> None:
    assert point_search_of(query, ctx) is None


def test_the_point_path_is_not_taken_across_resource_types() -> None:
    query = ListQuery(filter=parse_filter('externalId eq "a"'))
    assert point_search_of(query, types=(USER_RESOURCE, GROUP_RESOURCE)) is None
