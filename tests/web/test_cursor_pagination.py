"""RFC 9865: cursor-based pagination of GET /Users, /Groups and POST .search, over real HTTP."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import Scim

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+")


def q(text: str) -> str:
    return quote(text, safe="")


async def seed(scim: Scim, count: int, prefix: str = "user") -> list[str]:
    return [(await scim.create_user(f"{prefix}{i:03d}@acme.com"))["id"] for i in range(count)]


async def walk(scim: Scim, query: str, *, between: Any = None) -> tuple[list[str], list[dict[str, Any]]]:
    """Every page of `query` by nextCursor; `between(page_number)` runs after each page."""
    ids: list[str] = []
    pages: list[dict[str, Any]] = []
    cursor = ""
    while True:
        answer = await scim.get(f"/Users?{query}&cursor={cursor}" if query else f"/Users?cursor={cursor}")
        assert answer.status == 200, answer.body
        pages.append(answer.body)
        ids += [r["id"] for r in answer.body["Resources"]]
        if "nextCursor" not in answer.body:
            return ids, pages
        cursor = answer.body["nextCursor"]
        if between is not None:
            await between(len(pages))


async def test_the_rfc_example_first_page_then_next(scim: Scim) -> None:
    """§2: `GET /Users?filter=userName sw J&cursor&count=10`, then the same with cursor=nextCursor."""
    await seed(scim, 25, "j")
    await seed(scim, 5, "k")
    sw = "/Users?filter=" + q('userName sw "J"')
    first = await scim.get(sw + "&cursor&count=10")
    assert first.status == 200
    body = first.body
    assert body["schemas"] == [LIST_RESPONSE]
    assert body["totalResults"] == 25 and body["itemsPerPage"] == 10 and len(body["Resources"]) == 10
    assert "startIndex" not in body and "previousCursor" not in body  # MUST NOT on the first page
    assert UNRESERVED.fullmatch(body["nextCursor"])
    second = (await scim.get(sw + f"&cursor={body['nextCursor']}&count=10")).body
    assert second["totalResults"] == 25 and second["itemsPerPage"] == 10
    assert "previousCursor" in second and "nextCursor" in second
    third = (await scim.get(sw + f"&cursor={second['nextCursor']}&count=10")).body
    assert third["itemsPerPage"] == 5 and "nextCursor" not in third  # omitted only on the last page
    names = [r["userName"] for page in (body, second, third) for r in page["Resources"]]
    assert names == [f"j{i:03d}@acme.com" for i in range(25)]


async def test_a_walk_sees_every_resource_exactly_once_while_others_come_and_go(scim: Scim) -> None:
    """Inserts and deletes between pages move no cursor: nothing already there is skipped or repeated."""
    ids = await seed(scim, 30)
    deleted: set[str] = set()
    added: list[str] = []

    async def churn(page_number: int) -> None:
        # Delete one user already listed and one not yet listed, add one: an offset would skip or repeat.
        listed_victim, ahead_victim = ids[page_number * 7 - 7], ids[-page_number]
        for victim in (listed_victim, ahead_victim):
            if victim not in deleted:
                assert (await scim.delete(f"/Users/{victim}")).status == 204
                deleted.add(victim)
        added.append((await scim.create_user(f"late{page_number}@acme.com"))["id"])

    seen, pages = await walk(scim, "count=7", between=churn)
    assert len(pages) > 3 and deleted and added
    assert len(seen) == len(set(seen))  # nothing twice
    assert {i for i in ids if i not in deleted} <= set(seen)  # everyone there all along, listed
    assert set(seen) <= set(ids) | set(added)
    # Users created during the walk come after every position reached so far, so each is listed too.
    assert set(added) <= set(seen)


async def test_previous_cursor_walks_back(scim: Scim) -> None:
    await seed(scim, 12)
    forward, pages = await walk(scim, "count=5")
    assert [len(p["Resources"]) for p in pages] == [5, 5, 2]
    back = (await scim.get(f"/Users?count=5&cursor={pages[2]['previousCursor']}")).body
    assert [r["id"] for r in back["Resources"]] == forward[5:10]
    first = (await scim.get(f"/Users?count=5&cursor={back['previousCursor']}")).body
    assert [r["id"] for r in first["Resources"]] == forward[:5]
    assert "previousCursor" not in first  # back at the first page
    again = (await scim.get(f"/Users?count=5&cursor={first['nextCursor']}")).body
    assert [r["id"] for r in again["Resources"]] == forward[5:10]


async def test_a_cursor_walk_follows_sortBy_and_sortOrder(scim: Scim) -> None:
    """§2.2: cursor pages are sorted when sortBy is given; ties and absent values keep a stable order."""
    for i, title in enumerate(["b", "a", None, "c", "a", None, "b"]):
        await scim.create_user(f"u{i}@acme.com", **({"title": title} if title else {}))
    seen, pages = await walk(scim, "sortBy=title&sortOrder=descending&count=2")
    titles = [(await scim.get(f"/Users/{i}")).body.get("title") for i in seen]
    assert titles == ["c", "b", "b", "a", "a", None, None]
    assert len(set(seen)) == 7
    back = (await scim.get(f"/Users?sortBy=title&sortOrder=descending&count=2&cursor={pages[-1]['previousCursor']}"))
    assert [r["id"] for r in back.body["Resources"]] == seen[4:6]


async def test_a_garbage_cursor_is_invalidCursor(scim: Scim) -> None:
    await seed(scim, 3)
    good = (await scim.get("/Users?count=1&cursor")).body["nextCursor"]
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    for cursor in ("garbage", tampered, "", "%00", "a" * 9000):
        if cursor == "":
            continue
        answer = await scim.get(f"/Users?count=1&cursor={cursor}")
        assert answer.status == 400, cursor
        assert answer.body["scimType"] == "invalidCursor"
        assert "empty cursor" in answer.body["detail"]


async def test_a_cursor_with_a_changed_filter_is_invalidCursor(scim: Scim) -> None:
    await seed(scim, 4)
    cursor = (await scim.get("/Users?count=1&cursor&filter=" + q('userName sw "user"'))).body["nextCursor"]
    for changed in ("filter=" + q('userName sw "use"'), "sortBy=userName", "", "filter=" + q('userName sw "user"')
                    + "&sortOrder=descending"):
        answer = await scim.get(f"/Users?count=1&cursor={cursor}&{changed}")
        assert answer.status == 400 and answer.body["scimType"] == "invalidCursor", changed
        assert "different query" in answer.body["detail"]
    # The same query with another count or attributes continues.
    same = await scim.get(f"/Users?count=2&attributes=userName&cursor={cursor}&filter=" + q('userName sw "user"'))
    assert same.status == 200 and len(same.body["Resources"]) == 2
    # A Users cursor is not a Groups cursor.
    other = await scim.get(f"/Groups?count=1&cursor={cursor}&filter=" + q('userName sw "user"'))
    assert other.status == 400


async def test_startIndex_and_cursor_together_are_refused(scim: Scim) -> None:
    answer = await scim.get("/Users?startIndex=1&cursor=")
    assert answer.status == 400 and answer.body["scimType"] == "invalidValue"
    assert "startIndex and cursor" in answer.body["detail"]
    searched = await scim.post("/Users/.search", {"schemas": [SEARCH], "startIndex": 2, "cursor": ""})
    assert searched.status == 400 and "startIndex and cursor" in searched.body["detail"]


async def test_count_zero_with_a_cursor_gives_the_total_and_a_way_on(scim: Scim) -> None:
    """§2: count=0 returns no resources but totalResults; the page is not the last, so nextCursor stays."""
    ids = await seed(scim, 3)
    body = (await scim.get("/Users?count=0&cursor")).body
    assert body["totalResults"] == 3 and body["itemsPerPage"] == 0 and body["Resources"] == []
    assert "previousCursor" not in body
    on = (await scim.get(f"/Users?count=2&cursor={body['nextCursor']}")).body
    assert [r["id"] for r in on["Resources"]] == ids[:2]
    middle = (await scim.get(f"/Users?count=0&cursor={on['nextCursor']}")).body
    assert middle["itemsPerPage"] == 0
    rest = (await scim.get(f"/Users?count=5&cursor={middle['nextCursor']}")).body
    assert [r["id"] for r in rest["Resources"]] == ids[2:]
    assert "nextCursor" not in rest


async def test_post_search_pages_by_cursor_in_the_body(scim: Scim) -> None:
    """§3: the SearchRequest's `cursor` attribute, for /Users/.search and the root /.search across types."""
    users = await seed(scim, 3)
    group = (await scim.create_group("Engineering"))["id"]
    ids: list[str] = []
    cursor = ""
    while cursor is not None:
        answer = await scim.post("/.search", {"schemas": [SEARCH], "cursor": cursor, "count": 2,
                                              "attributes": ["id"]})
        assert answer.status == 200, answer.body
        assert "startIndex" not in answer.body and answer.body["totalResults"] == 4
        ids += [r["id"] for r in answer.body["Resources"]]
        cursor = answer.body.get("nextCursor")
    assert ids == [*users, group]
    typed = await scim.post("/Users/.search", {"schemas": [SEARCH], "cursor": "", "count": 2})
    assert typed.body["itemsPerPage"] == 2 and "nextCursor" in typed.body


async def test_a_short_page_continues_right_after_its_last_resource(scim_with: Any) -> None:
    """The page byte budget cuts a cursor page short; its nextCursor starts at the first resource left out."""
    scim = await scim_with(max_page_bytes=4000)
    ids = [(await scim.create_user(f"big{i}@acme.com", title="x" * 1500))["id"] for i in range(6)]
    seen, pages = await walk(scim, "count=5")
    assert seen == ids
    assert all(len(p["Resources"]) < 5 for p in pages)


async def test_index_paging_is_unchanged_and_has_no_cursors(scim: Scim) -> None:
    ids = await seed(scim, 5)
    body = (await scim.get("/Users?startIndex=2&count=2")).body
    assert body["startIndex"] == 2 and "nextCursor" not in body
    assert [r["id"] for r in body["Resources"]] == ids[1:3]
    following = (await scim.get("/Users?startIndex=4&count=2")).body  # continues from the page before's end
    assert [r["id"] for r in following["Resources"]] == ids[3:5]
    await scim.delete(f"/Users/{ids[0]}")
    shifted = (await scim.get("/Users?startIndex=4&count=2")).body  # a write since: counted afresh
    assert [r["id"] for r in shifted["Resources"]] == ids[4:5]
    assert shifted["totalResults"] == 4


async def test_the_discovery_document_advertises_cursor_pagination(scim: Scim) -> None:
    """§4: `pagination` in /ServiceProviderConfig."""
    config = (await scim.get("/ServiceProviderConfig")).body
    assert config["pagination"] == {"cursor": True, "index": True, "defaultPaginationMethod": "index",
                                    "defaultPageSize": 100, "maxPageSize": config["filter"]["maxResults"],
                                    "cursorTimeout": 3600}


@pytest.mark.parametrize("path", ["/Users", "/Groups"])
async def test_an_empty_collection_by_cursor_is_one_last_page(scim: Scim, path: str) -> None:
    body = (await scim.get(f"{path}?cursor")).body
    assert body == {"schemas": [LIST_RESPONSE], "totalResults": 0, "itemsPerPage": 0, "Resources": []}


async def test_a_long_sort_value_makes_a_long_cursor_that_still_works(scim: Scim) -> None:
    """A cursor carries the sort value of its row: a sortBy attribute holding kilobytes still pages."""
    ids = [(await scim.create_user(f"long{i}@acme.com", title="t" * 10_000 + str(i)))["id"] for i in range(3)]
    seen, pages = await walk(scim, "sortBy=title&count=1")
    assert seen == ids and len(pages[0]["nextCursor"]) > 10_000


async def test_a_search_across_types_by_cursor_cut_short_by_the_budget_leaves_no_gap(scim_with: Any) -> None:
    scim = await scim_with(max_page_bytes=10_000)
    users = [(await scim.create_user(f"wide{i}@acme.com", title="x" * 2000))["id"] for i in range(6)]
    group = (await scim.create_group("staff"))["id"]
    ids: list[str] = []
    cursor: str | None = ""
    while cursor is not None:
        page = (await scim.post("/.search", {"schemas": [SEARCH], "cursor": cursor, "count": 50})).body
        assert page["totalResults"] == 7 and page["Resources"]
        ids += [r["id"] for r in page["Resources"]]
        cursor = page.get("nextCursor")
    assert ids == [*users, group]
