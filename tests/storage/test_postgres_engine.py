"""The PostgreSQL engine on a real server: transactions, retries on conflict, uniqueness, several instances."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.protocol.resolved import FIELD, Compare, SearchQuery, Value
from app.protocol.schema_defs import GROUP_RESOURCE, USER_RESOURCE
from app.storage.errors import DatabaseError, IntegrityViolation, NoDatabase, TokenNameTaken, UniquenessConflict
from app.storage.factory import open_storage
from app.storage.postgres.compiler import compile_filter
from app.storage.postgres.engine import PostgresStorage, redact
from app.storage.records import Event
from tests.postgres_server import PostgresServer

NOW = "2026-01-01T00:00:00.000000Z"


@pytest.fixture
async def storage(postgres_url: str) -> AsyncIterator[PostgresStorage]:
    engine = open_storage(postgres_url)
    assert isinstance(engine, PostgresStorage)
    await engine.open()
    yield engine
    await engine.close()


async def test_a_write_commits_and_a_read_sees_it(storage: PostgresStorage) -> None:
    await storage.write(lambda tx: tx.resources.insert(USER_RESOURCE, "u1", {"userName": "Straße"}, NOW))
    found = await storage.read(lambda tx: tx.resources.get(USER_RESOURCE, "u1"))
    assert found is not None and found.document == {"userName": "Straße"} and found.version == 1


async def test_a_body_that_raises_leaves_nothing_behind(storage: PostgresStorage) -> None:
    def body(tx):  # type: ignore[no-untyped-def]
        tx.resources.insert(USER_RESOURCE, "u1", {"userName": "a"}, NOW)
        raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        await storage.write(body)
    assert await storage.read(lambda tx: tx.resources.get(USER_RESOURCE, "u1")) is None


async def test_userName_is_unique_by_its_folded_form_and_the_transaction_goes_on(storage: PostgresStorage) -> None:
    def body(tx):  # type: ignore[no-untyped-def]
        tx.resources.insert(USER_RESOURCE, "u1", {"userName": "Straße"}, NOW)
        with pytest.raises(UniquenessConflict):
            tx.resources.insert(USER_RESOURCE, "u2", {"userName": "STRASSE"}, NOW)
        tx.resources.insert(USER_RESOURCE, "u3", {"userName": "other"}, NOW)

    await storage.write(body)
    assert await storage.read(lambda tx: sorted(tx.roster.all_user_ids())) == ["u1", "u3"]


async def test_token_names_are_unique(storage: PostgresStorage) -> None:
    await storage.write(lambda tx: tx.tokens.insert("ci", "h1", NOW, "scim", None))
    with pytest.raises(TokenNameTaken):
        await storage.write(lambda tx: tx.tokens.insert("ci", "h2", NOW, "scim", None))


async def test_concurrent_read_modify_writes_are_retried_until_none_is_lost(storage: PostgresStorage) -> None:
    await storage.write(lambda tx: tx.settings.put("counter", "0"))

    def increment(tx):  # type: ignore[no-untyped-def]
        value = int(tx.settings.get("counter"))
        tx.settings.put("counter", str(value + 1))

    await asyncio.gather(*(storage.write(increment) for _ in range(40)))
    assert await storage.read(lambda tx: tx.settings.get("counter")) == "40"
    assert storage.retries > 0, "the writes never conflicted: the test did not test the retry"


async def test_a_revocation_through_one_instance_is_seen_by_another_at_once(postgres_url: str) -> None:
    one, two = PostgresStorage(postgres_url), PostgresStorage(postgres_url)
    await one.open()
    await two.open()
    try:
        await one.write(lambda tx: tx.tokens.insert("ci", "hash", NOW, "scim", None))
        assert await two.lookup(lambda tx: tx.tokens.find_live_hash("hash", NOW)) is not None
        assert two.change_stamp() != two.change_stamp()
        await one.write(lambda tx: tx.tokens.revoke("ci", NOW))
        assert await two.lookup(lambda tx: tx.tokens.find_live_hash("hash", NOW)) is None
    finally:
        await one.close()
        await two.close()


async def test_events_are_numbered_in_commit_order(storage: PostgresStorage) -> None:
    await asyncio.gather(*(storage.write(lambda tx, n=n: tx.feed.append([Event("test", data={"n": n})], NOW, "t"))
                           for n in range(20)))
    events = await storage.read(lambda tx: tx.feed.after(0, 100))
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert sorted(e["n"] for e in events) == list(range(20))


async def test_search_by_a_resolved_filter(storage: PostgresStorage) -> None:
    def body(tx):  # type: ignore[no-untyped-def]
        tx.resources.insert(USER_RESOURCE, "u1", {"userName": "Straße"}, NOW)
        tx.resources.insert(USER_RESOURCE, "u2", {"userName": "bob"}, NOW)
        tx.resources.insert(GROUP_RESOURCE, "g1", {"displayName": "Admins"}, NOW)

    await storage.write(body)
    query = SearchQuery(USER_RESOURCE, Compare(Value(FIELD, ("userName",), "userName"), "eq", "strasse"))
    found, more = await storage.search(lambda tx: tx.resources.page(query, 10, 0, 10_000), [query])
    assert [f.resource.id for f in found] == ["u1"] and not more
    assert await storage.read(lambda tx: tx.resources.count(SearchQuery(USER_RESOURCE))) == 2


async def test_an_empty_database_is_refused_when_it_must_exist(postgres_server: PostgresServer) -> None:
    engine = PostgresStorage(postgres_server.new_database(migrated=False), must_exist=True)
    with pytest.raises(NoDatabase):
        await engine.open()


async def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    engine = PostgresStorage("postgresql://rollcall:s3cret@127.0.0.1:1/rollcall")
    with pytest.raises(DatabaseError) as caught:
        await engine.open()
    assert "s3cret" not in str(caught.value) and "127.0.0.1" in str(caught.value)


def test_the_location_never_carries_a_password() -> None:
    assert redact("postgresql://app:s3cret@db.example:5432/rollcall") == "postgresql://app@db.example:5432/rollcall"
    assert redact("postgresql://db:5432/rollcall?password=s3cret&sslmode=require") == \
        "postgresql://db:5432/rollcall?sslmode=require"
    assert PostgresStorage("postgresql://a:b@h/d").location == "postgresql://a@h/d"


async def test_one_instance_at_a_time_delivers_an_endpoints_events(postgres_url: str) -> None:
    one, two = PostgresStorage(postgres_url), PostgresStorage(postgres_url)
    await one.open()
    await two.open()
    try:
        assert await one.claim_endpoint(1) is True
        assert await one.claim_endpoint(1) is True, "a claim is kept by the instance that holds it"
        assert await two.claim_endpoint(1) is False
        assert await two.claim_endpoint(2) is True, "other endpoints can go to the other instance"
        await one.release_endpoint(1)
        assert await two.claim_endpoint(1) is True
        await two.close()  # an instance that stops (or dies) lets go of all its endpoints
        assert await one.claim_endpoint(1) is True and await one.claim_endpoint(2) is True
    finally:
        await one.close()
        await two.close()


async def test_a_broken_reference_is_an_integrity_violation_not_a_driver_error(storage: PostgresStorage) -> None:
    await storage.write(lambda tx: tx.resources.insert(USER_RESOURCE, "u1", {"userName": "ann"}, NOW))
    with pytest.raises(IntegrityViolation):  # a membership of a group that does not exist
        await storage.write(lambda tx: tx.members.add_users("no-such-group", ["u1"], NOW))


async def test_externalId_eq_is_answered_by_its_index(storage: PostgresStorage) -> None:
    # IS NOT DISTINCT FROM, which the compiler once emitted for a nullable column, is no index condition: every
    # `externalId eq` scanned the whole users table. With sequential scans priced out, a plan that still scans
    # has no index to use.
    where, params = compile_filter(USER_RESOURCE, Compare(Value(FIELD, ("externalId",), "externalId",
                                                                case_exact=True), "eq", "ext-1"))

    def plan(tx):  # type: ignore[no-untyped-def]
        tx.sql("SET LOCAL enable_seqscan = off")
        return " ".join(row[0] for row in tx.sql(f"EXPLAIN SELECT id FROM users AS r WHERE {where}", params))

    assert "users_external_id" in await storage.read(plan)
