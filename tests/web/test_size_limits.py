"""Issue 9, finding 2: a resource's size is capped (--max-resource-bytes), and a list page stops before `count`
once its bytes would pass --max-page-bytes (RFC 7644 §3.4.2.4), with paging that continues correctly."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from tests.conftest import GROUP_SCHEMA, USER_SCHEMA, Scim

LIMIT = 8 * 1024
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def assert_too_large(answer: object, *, early: bool = False) -> None:
    status, body = answer.status, answer.body  # type: ignore[attr-defined]
    assert status == 413, body
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == "413"
    detail = body["detail"]
    assert f"{LIMIT:,}" in detail and "--max-resource-bytes" in detail, detail
    assert ("its body holds" if early else "it would be stored as") in detail, detail


async def user_names(scim: Scim) -> list[str]:
    return [r["userName"] for r in (await scim.get("/Users?count=1000")).body["Resources"]]


async def test_a_post_whose_document_is_over_the_limit_is_413_and_stores_nothing(
        scim_with: Callable[..., Awaitable[Scim]]) -> None:
    scim = await scim_with(max_resource_bytes=LIMIT)
    answer = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "fat", "title": "x" * LIMIT})
    assert_too_large(answer)
    assert "bytes of JSON" in answer.body["detail"]
    assert await user_names(scim) == []
    # Just under the limit is fine.
    assert (await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "ok",
                                       "title": "x" * (LIMIT - 200)})).status == 201


async def test_a_group_over_the_limit_is_refused_too(scim_with: Callable[..., Awaitable[Scim]]) -> None:
    scim = await scim_with(max_resource_bytes=LIMIT)
    answer = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "g" * (LIMIT + 1)})
    assert_too_large(answer)
    assert (await scim.get("/Groups")).body["totalResults"] == 0


async def test_a_body_far_over_the_limit_is_refused_before_validation(
        scim_with: Callable[..., Awaitable[Scim]]) -> None:
    scim = await scim_with(max_resource_bytes=LIMIT)
    emails = [{"value": f"u{i}@acme.com", "type": "work"} for i in range(2000)]  # ~80 KB, 10 times the limit
    answer = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "many", "emails": emails})
    assert_too_large(answer, early=True)
    assert await user_names(scim) == []


async def test_a_put_over_the_limit_is_413_and_leaves_the_user_alone(
        scim_with: Callable[..., Awaitable[Scim]]) -> None:
    scim = await scim_with(max_resource_bytes=LIMIT)
    user = await scim.create_user("alice", title="engineer")
    answer = await scim.put(f"/Users/{user['id']}", {"schemas": [USER_SCHEMA], "userName": "alice",
                                                     "title": "y" * LIMIT})
    assert_too_large(answer)
    after = (await scim.get(f"/Users/{user['id']}")).body
    assert after["title"] == "engineer" and after["meta"]["version"] == user["meta"]["version"]


async def test_patches_that_grow_a_user_past_the_limit_are_413_and_change_nothing(
        scim_with: Callable[..., Awaitable[Scim]]) -> None:
    scim = await scim_with(max_resource_bytes=LIMIT)
    user = await scim.create_user("bob", title="t")
    # Each PATCH is small; the document they would build is not.
    chunk = "z" * 1000
    version = user["meta"]["version"]
    for i in range(20):
        answer = await scim.patch(f"/Users/{user['id']}", [{"op": "add", "path": "emails",
                                                            "value": [{"value": f"{i}{chunk}@acme.com"}]}])
        if answer.status != 200:
            break
        version = answer.body["meta"]["version"]
    assert_too_large(answer)
    after = (await scim.get(f"/Users/{user['id']}")).body
    assert after["meta"]["version"] == version and len(after["emails"]) == i
    assert len(json.dumps(after)) < LIMIT + 1000


async def seed(scim: Scim, count: int, title_length: int) -> list[str]:
    names = [f"user{i:03d}" for i in range(count)]
    for name in names:
        await scim.create_user(name, title="t" * title_length)
    return names


async def test_a_list_page_stops_at_the_byte_budget_and_paging_continues(
        scim_with: Callable[..., Awaitable[Scim]]) -> None:
    scim = await scim_with(max_page_bytes=10_000)
    names = await seed(scim, 12, 2000)  # ~2.3 KB each as rendered: four fit in 10,000 bytes
    seen: list[str] = []
    start = 1
    pages = 0
    while True:
        page = (await scim.get(f"/Users?startIndex={start}&count=100&filter=" + quote('title pr'))).body
        assert page["totalResults"] == 12 and page["startIndex"] == start
        assert page["itemsPerPage"] == len(page["Resources"])
        if not page["Resources"]:
            break
        assert len(json.dumps(page["Resources"])) <= 10_000 + 100
        seen += [r["userName"] for r in page["Resources"]]
        start += page["itemsPerPage"]
        pages += 1
    assert seen == names
    assert pages == 3


async def test_a_resource_bigger_than_the_budget_still_comes_alone(
        scim_with: Callable[..., Awaitable[Scim]]) -> None:
    scim = await scim_with(max_page_bytes=1024)
    names = await seed(scim, 3, 1500)
    page = (await scim.get("/Users?count=10")).body
    assert page["itemsPerPage"] == 1 and page["totalResults"] == 3
    assert [r["userName"] for r in page["Resources"]] == names[:1]


async def test_a_search_across_types_cut_short_by_the_budget_leaves_no_gap(
        scim_with: Callable[..., Awaitable[Scim]]) -> None:
    scim = await scim_with(max_page_bytes=10_000)
    names = await seed(scim, 6, 2000)
    await scim.create_group("staff")
    seen: list[str] = []
    start = 1
    while True:
        page = (await scim.post("/.search", {"schemas": [SEARCH], "startIndex": start, "count": 50})).body
        assert page["totalResults"] == 7
        if not page["Resources"]:
            break
        seen += [r.get("userName") or r["displayName"] for r in page["Resources"]]
        start += page["itemsPerPage"]
    assert seen == [*names, "staff"]


async def test_an_ordinary_page_of_a_thousand_users_fits_the_default_budget(scim: Scim) -> None:
    # The default budget must not shorten the pages identity providers ask for: 1,000 typical users.
    from app.domain.limits import DEFAULT_MAX_PAGE_BYTES

    user = await scim.create_user("typical@acme.com", displayName="Typical User", title="Engineer",
                                  name={"givenName": "Typical", "familyName": "User"},
                                  emails=[{"value": "typical@acme.com", "type": "work", "primary": True}])
    assert len(json.dumps(user)) * 1000 < DEFAULT_MAX_PAGE_BYTES / 2
