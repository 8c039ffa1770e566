"""A write that storage gives up on under contention (storage.errors.Contended) is a 503 with Retry-After and a
SCIM error body a person can act on, never a 500: on PostgreSQL when its serialization retries run out of time, on
SQLite when another process holds the file's write lock for all of its busy timeout."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest

from app.domain.sessions import TOUCH_EVERY_SECONDS
from app.protocol.schema_defs import ERROR
from app.storage.postgres import engine as postgres_engine
from app.storage.sqlite import engine as sqlite_engine
from tests.conftest import USER_SCHEMA, Answer, Scim, mint_token
from tests.postgres_server import wait_until_a_write_waits_for_a_lock
from tests.web.conftest import Console

MEMBER_ADD = "members"


async def _patch_while_contended(engine: str, db_location: str, scim: Scim, group_id: str,
                                 patch: Callable[[], Awaitable[Answer]]) -> Answer:
    if engine == "postgresql":
        # Another instance's transaction changes the group's row and commits only once the PATCH waits for it:
        # the PATCH's snapshot is then stale, a serialization failure, and its budget (none) is spent.
        other = psycopg.connect(db_location, autocommit=True)
        try:
            other.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
            other.execute("UPDATE groups SET version = version WHERE id = %s", (group_id,))
            answer = asyncio.ensure_future(patch())
            await asyncio.to_thread(wait_until_a_write_waits_for_a_lock, db_location)
            other.execute("COMMIT")
            return await answer
        finally:
            other.close()
    # Another process (a CLI command, say) holds the SQLite file's write lock through the writer's busy timeout.
    other_sqlite = sqlite3.connect(db_location, isolation_level=None)
    try:
        other_sqlite.execute("BEGIN IMMEDIATE")
        return await patch()
    finally:
        other_sqlite.execute("ROLLBACK")
        other_sqlite.close()


async def test_a_write_given_up_under_contention_is_a_503_with_retry_after(
        engine: str, db_location: str, scim_with: Callable[..., Awaitable[Scim]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_engine, "RETRY_SECONDS", 0.0)
    monkeypatch.setattr(sqlite_engine, "BUSY_TIMEOUT_MS", 200)
    scim = await scim_with()
    user = await scim.create_user("contended")
    group = await scim.create_group("busy-group")

    async def add_member() -> Answer:
        return await scim.patch(f"/Groups/{group['id']}",
                                [{"op": "add", "path": MEMBER_ADD, "value": [{"value": user["id"]}]}])

    answer = await _patch_while_contended(engine, db_location, scim, group["id"], add_member)
    assert answer.status == 503, answer.body
    assert answer.headers["Retry-After"] == "1"
    body: dict[str, Any] = answer.body
    assert body["schemas"] == [ERROR] and body["status"] == "503"
    assert "too busy" in body["detail"] and "Send it again" in body["detail"]
    # Nothing of it was written, and the same PATCH once the contention is over goes through.
    assert (await scim.get(f"/Groups/{group['id']}")).body.get("members") is None
    retried = await add_member()
    assert retried.status == 200, retried.body
    assert [m["value"] for m in retried.body["members"]] == [user["id"]]


@pytest.mark.engines("sqlite", reason="one middleware answers for both engines; SQLite's write lock is the simple "
                                      "one to hold from a test")
async def test_an_api_route_and_a_bulk_request_given_up_under_contention_are_503s_too(
        engine: str, db_location: str, scim_with: Callable[..., Awaitable[Scim]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_engine, "BUSY_TIMEOUT_MS", 200)
    scim = await scim_with()
    admin = Scim(scim.client, await mint_token(db_location, "ops", ("admin",)))
    await mint_token(db_location, "doomed")
    bulk = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"schemas": [USER_SCHEMA], "userName": "bulky"}}]}
    other = sqlite3.connect(db_location, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        answers = [await admin.delete("/api/tokens/doomed"), await scim.post("/Bulk", bulk)]
    finally:
        other.execute("ROLLBACK")
        other.close()
    for answer in answers:
        assert answer.status == 503, answer.body
        assert answer.headers["Retry-After"] == "1" and "too busy" in answer.body["detail"]
    assert (await admin.delete("/api/tokens/doomed")).status == 204


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's writer gives up on a held write lock after 0.2 s (set before the app under test opens its file)."""
    monkeypatch.setattr(sqlite_engine, "BUSY_TIMEOUT_MS", 200)


@pytest.mark.engines("sqlite", reason="the console's guard answers alike for both engines; SQLite's write lock is the "
                                      "simple one to hold from a test")
async def test_a_console_session_check_given_up_under_contention_is_a_503_page_not_a_500(
        short_busy_timeout: None, engine: str, db_location: str, signed_in: Console) -> None:
    # The session is due its once-a-minute touch, a write, while another process holds the file's write lock.
    signed_in.clock.advance(TOUCH_EVERY_SECONDS + 1)
    other = sqlite3.connect(db_location, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        page = await signed_in.get("/console/members")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert page.status == 503, page.text
    assert page.headers["Retry-After"] == "1"
    assert "too busy" in page.text and "Send it again" in page.text
    assert (await signed_in.get("/console/members")).status == 200  # the same session, once the lock is free
