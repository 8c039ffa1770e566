"""Migration step 5 fills the members search key for the users and roster entries a version-4 database holds, as
app/storage/search_key.py writes it from then on: on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app.protocol.folding import fold_case
from app.storage.search_key import user_search_key
from tests.postgres_server import PostgresServer

DOCUMENT: dict[str, Any] = {"userName": "Groß.Ann", "displayName": "Ann STRASSE",
                            "emails": [{"value": "Ann@Work.ORG", "primary": True}, {"value": "ann@HOME.org"}]}
NO_DISPLAY: dict[str, Any] = {"userName": "bob"}


@pytest.mark.engines("sqlite", reason="SQLite's step 5 on a version-4 file")
def test_step_5_fills_the_search_keys_of_a_version_4_sqlite_file(tmp_path: Path) -> None:
    from app.storage.sqlite.functions import register_functions
    from app.storage.sqlite.migrations import migrate

    conn = sqlite3.connect(tmp_path / "v4.db", isolation_level=None)
    register_functions(conn)
    migrate(conn, target=4)
    for user_id, document in (("u1", DOCUMENT), ("u2", NO_DISPLAY)):
        conn.execute("INSERT INTO users (id, user_name, user_name_key, display_name, doc, created, last_modified) "
                     "VALUES (?, ?, ?, ?, ?, 't', 't')", (user_id, document["userName"],
                                                          fold_case(document["userName"]),
                                                          document.get("displayName"), json.dumps(document)))
    for user_id, name in (("u1", "Groß.Ann"), ("u2", "bob"), ("gone", "Held.Gone")):  # gone: deleted, held
        conn.execute("INSERT INTO roster (user_id, user_name, user_name_key, role, since) VALUES (?, ?, ?, 'member', "
                     "'t')", (user_id, name, fold_case(name)))
    migrate(conn)
    assert dict(conn.execute("SELECT id, search_key FROM users")) == {
        "u1": user_search_key(DOCUMENT), "u2": user_search_key(NO_DISPLAY)}
    assert dict(conn.execute("SELECT user_id, search_key FROM roster")) == {
        "u1": user_search_key(DOCUMENT), "u2": user_search_key(NO_DISPLAY), "gone": "held.gone"}
    conn.close()


def test_step_5_fills_the_search_keys_of_a_version_4_postgresql_database(postgres_server: PostgresServer) -> None:
    from app.storage.postgres import migrations
    from app.storage.postgres.transaction import fold_document

    url = postgres_server.new_database(migrated=False)
    with psycopg.connect(url, autocommit=True) as conn:
        migrations.migrate(conn, target=4)
        for user_id, document in (("u1", DOCUMENT), ("u2", NO_DISPLAY)):
            conn.execute(
                "INSERT INTO users (id, user_name, user_name_key, display_name, doc, doc_folded, created, "
                "last_modified) VALUES (%s, %s, %s, %s, %s::jsonb, %s::jsonb, 't', 't')",
                (user_id, document["userName"], fold_case(document["userName"]), document.get("displayName"),
                 json.dumps(document), json.dumps(fold_document(document))))
        for user_id, name in (("u1", "Groß.Ann"), ("u2", "bob"), ("gone", "Held.Gone")):
            conn.execute("INSERT INTO roster (user_id, user_name, user_name_key, role, since) "
                         "VALUES (%s, %s, %s, 'member', 't')", (user_id, name, fold_case(name)))
        migrations.migrate(conn)
        assert dict(conn.execute("SELECT id, search_key FROM users").fetchall()) == {
            "u1": user_search_key(DOCUMENT), "u2": user_search_key(NO_DISPLAY)}
        assert dict(conn.execute("SELECT user_id, search_key FROM roster").fetchall()) == {
            "u1": user_search_key(DOCUMENT), "u2": user_search_key(NO_DISPLAY), "gone": "held.gone"}
