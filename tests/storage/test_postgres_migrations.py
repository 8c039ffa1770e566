"""PostgreSQL's schema and its numbered steps, on a real server started by the test setup (tests/postgres_server.py)."""

from __future__ import annotations

import psycopg
import pytest

from app.storage.errors import DatabaseError
from app.storage.postgres import migrations
from tests.postgres_server import PostgresServer


def test_an_empty_database_gets_the_schema_and_a_second_run_finds_nothing_to_do(
        postgres_server: PostgresServer) -> None:
    url = postgres_server.new_database(migrated=False)
    with psycopg.connect(url, autocommit=True) as conn:
        assert migrations.schema_version(conn) == 0
        assert migrations.migrate(conn) == (0, migrations.SCHEMA_VERSION)
        assert migrations.migrate(conn) == (migrations.SCHEMA_VERSION, migrations.SCHEMA_VERSION)
        tables = {row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"users", "groups", "group_members", "tokens", "roster", "events", "settings", "holds", "held",
            "user_emails", "webhooks", "webhook_deliveries", "rollcall_schema"} <= tables


def test_a_later_step_is_applied_once_with_its_version(postgres_url: str) -> None:
    step = (migrations.SCHEMA_VERSION + 1, "CREATE TABLE later_step (id INTEGER PRIMARY KEY);")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert migrations.migrate(conn, (step,), target=step[0]) == (migrations.SCHEMA_VERSION, step[0])
        assert migrations.schema_version(conn) == step[0]
        assert conn.execute("SELECT to_regclass('later_step') IS NOT NULL").fetchone() == (True,)


def test_a_failing_step_leaves_the_version_and_the_data_as_they_were(postgres_url: str) -> None:
    broken = (migrations.SCHEMA_VERSION + 1, "CREATE TABLE half_done (id INTEGER); SELECT no_such_function();")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedFunction):
            migrations.migrate(conn, (broken,), target=broken[0])
        assert migrations.schema_version(conn) == migrations.SCHEMA_VERSION
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)


def test_a_database_from_a_newer_rollcall_is_refused(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE rollcall_schema SET version = 99")
        with pytest.raises(DatabaseError, match="newer rollcall"):
            migrations.migrate(conn)


def test_userName_and_displayName_are_unique_by_their_folded_keys(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        insert = ("INSERT INTO users (id, user_name, user_name_key, doc, doc_folded, created, last_modified) "
                  "VALUES (%s, %s, %s, '{}', '{}', '', '')")
        conn.execute(insert, ("u1", "Straße", "Straße".casefold()))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert, ("u2", "STRASSE", "STRASSE".casefold()))
