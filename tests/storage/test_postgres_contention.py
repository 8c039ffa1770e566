"""The PostgreSQL engine under contention: a write that keeps colliding is given up after its time budget with
`Contended` (never a DatabaseError, which would be a 500), and the writes of many clients over two instances
collide rarely enough that none comes near the budget."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from app.storage.errors import Contended
from app.storage.postgres.engine import WRITE_TURNS, PostgresStorage
from tests.postgres_server import wait_until_a_write_waits_for_a_lock

NOW = "2026-01-01T00:00:00.000000Z"


@pytest.fixture
async def impatient(postgres_url: str) -> AsyncIterator[PostgresStorage]:
    """An instance whose writes are given up at their first conflict (a retry budget of no time at all)."""
    engine = PostgresStorage(postgres_url, retry_seconds=0)
    await engine.open()
    yield engine
    await engine.close()


def hold_row_then_commit(url: str, statement: str) -> psycopg.Connection:
    """Another instance's transaction: it changes a row and keeps it locked; the caller commits it."""
    other = psycopg.connect(url, autocommit=True)
    other.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
    other.execute(statement)
    return other


def increment_counter(tx):  # type: ignore[no-untyped-def]
    tx.settings.put("counter", str(int(tx.settings.get("counter")) + 1))


async def test_an_exhausted_retry_budget_is_contended_not_a_database_error(postgres_url: str,
                                                                          impatient: PostgresStorage) -> None:
    await impatient.write(lambda tx: tx.settings.put("counter", "0"))

    other = hold_row_then_commit(postgres_url, "UPDATE settings SET value = '10' WHERE key = 'counter'")
    try:
        write = asyncio.ensure_future(impatient.write(increment_counter))
        await asyncio.to_thread(wait_until_a_write_waits_for_a_lock, postgres_url)
        other.execute("COMMIT")  # the waiting write's snapshot is now stale: a serialization failure
        with pytest.raises(Contended) as raised:
            await write
    finally:
        other.close()
    assert raised.value.attempts == 1
    [((sqlstate, statement), times)] = impatient.conflicts.items()
    assert (sqlstate, statement.split(" (")[0], times) == ("40001", "INSERT INTO settings", 1)
    assert await impatient.read(lambda tx: tx.settings.get("counter")) == "10"  # nothing of the given-up write


async def test_a_write_within_its_budget_is_run_again_and_commits(postgres_url: str) -> None:
    patient = PostgresStorage(postgres_url)  # the default budget: seconds
    await patient.open()
    try:
        await patient.write(lambda tx: tx.settings.put("counter", "0"))

        other = hold_row_then_commit(postgres_url, "UPDATE settings SET value = '10' WHERE key = 'counter'")
        try:
            write = asyncio.ensure_future(patient.write(increment_counter))
            await asyncio.to_thread(wait_until_a_write_waits_for_a_lock, postgres_url)
            other.execute("COMMIT")
            await write
        finally:
            other.close()
        assert await patient.read(lambda tx: tx.settings.get("counter")) == "11"
        assert patient.retries == 1
    finally:
        await patient.close()


async def test_a_write_that_begins_while_another_runs_alone_waits_for_its_turn(postgres_url: str) -> None:
    engine = PostgresStorage(postgres_url)
    await engine.open()
    alone = psycopg.connect(postgres_url, autocommit=True)
    try:
        alone.execute("SELECT pg_advisory_lock(%s)", (WRITE_TURNS,))  # as a retry running alone holds it
        write = asyncio.ensure_future(engine.write(lambda tx: tx.settings.put("turn", "taken")))
        await asyncio.to_thread(wait_until_a_write_waits_for_a_lock, postgres_url)
        assert not write.done()
        alone.execute("SELECT pg_advisory_unlock(%s)", (WRITE_TURNS,))
        await write
    finally:
        alone.close()
    try:
        assert await engine.read(lambda tx: tx.settings.get("turn")) == "taken"
        # Begun again once its turn came, without being counted as a conflict or a retry.
        assert (engine.retries, dict(engine.conflicts), engine.most_attempts) == (0, {}, 1)
    finally:
        await engine.close()
