"""The engines behind the storage interface: exact error kinds, exact change stamps, and the layering."""

from __future__ import annotations

import ast
import asyncio
import sqlite3
from pathlib import Path

import pytest

from app.protocol.schema_defs import GROUP_RESOURCE, USER_RESOURCE
from app.storage.errors import IntegrityViolation, TokenNameTaken, UniquenessConflict
from app.storage.interface import Storage, Transaction
from app.storage.sqlite.transaction import SqliteTransaction

NOW = "2026-12-01T00:00:00.000000Z"
APP = Path(__file__).resolve().parents[2] / "app"


async def test_a_taken_name_is_a_conflict_and_a_broken_constraint_is_not(database: Storage) -> None:
    await database.write(lambda tx: tx.tokens.insert("ci", "hash-1", NOW, "scim", None))
    with pytest.raises(TokenNameTaken):
        await database.write(lambda tx: tx.tokens.insert("ci", "hash-2", NOW, "scim", None))
    # scopes is NOT NULL: a bug in the caller, which must not read as "the name is taken".
    with pytest.raises(IntegrityViolation):
        await database.write(lambda tx: tx.tokens.insert("other", "hash-3", NOW, None, None))  # type: ignore[arg-type]

    def user(tx: Transaction, resource_id: str, name: str) -> None:
        tx.resources.insert(USER_RESOURCE, resource_id, {"userName": name}, NOW)

    await database.write(lambda tx: user(tx, "u1", "ada"))
    with pytest.raises(UniquenessConflict):
        await database.write(lambda tx: user(tx, "u2", "ADA"))  # userNames are unique without regard to case


async def test_add_users_adds_the_ids_that_name_users_once_each_in_order(database: Storage) -> None:
    def setup(tx: Transaction) -> None:
        for user_id, name in (("u1", "ada"), ("u2", "bob"), ("u3", "cy")):
            tx.resources.insert(USER_RESOURCE, user_id, {"userName": name}, NOW)
        tx.resources.insert(GROUP_RESOURCE, "g1", {"displayName": "team"}, NOW)
        tx.members.add_users("g1", ["u2"], NOW)

    await database.write(setup)
    # u2 is a member already, "nobody" names no user (no integrity error: it is left out), u3 is repeated.
    added = await database.write(lambda tx: tx.members.add_users("g1", ["u3", "nobody", "u2", "u1", "u3"], NOW))
    assert added == ["u3", "u1"]
    assert sorted(await database.read(lambda tx: tx.members.all_of("g1"))) == ["u1", "u2", "u3"]
    assert await database.write(lambda tx: tx.members.add_users("g1", [], NOW)) == []


# SQLite only: its stamps are data_version on one connection; PostgreSQL's are never equal (the test below).
@pytest.mark.engines("sqlite", reason="SQLite's data_version on one connection")
async def test_change_stamps_are_equal_only_with_no_commit_between(database: Storage) -> None:
    first = database.change_stamp()
    await database.read(lambda tx: tx.settings.get("k"))
    assert database.change_stamp() == first
    await database.write(lambda tx: tx.settings.put("k", "v"))
    assert database.change_stamp() != first
    second = database.change_stamp()
    assert database.change_stamp() == second


def _commit_elsewhere(path: str, key: str, value: str) -> None:
    """A commit by another process's connection (a `rollcall` command run beside the server), with the engine's
    own statements."""
    other = sqlite3.connect(path)
    try:
        SqliteTransaction(other).settings.put(key, value)
        other.commit()
    finally:
        other.close()


@pytest.mark.engines("sqlite", reason="the loop snapshot of SQLite's event-loop connection")
async def test_lookups_of_one_loop_turn_share_a_snapshot_that_the_next_turn_renews(database: Storage) -> None:
    await database.write(lambda tx: tx.settings.put("k", "before"))
    stamp = database.change_stamp()
    assert await database.lookup(lambda tx: tx.settings.get("k")) == "before"
    _commit_elsewhere(database.location, "k", "after")
    # Still this turn (nothing above yielded to the loop): the stamp and the lookup agree on the snapshot.
    assert database.change_stamp() == stamp
    assert await database.lookup(lambda tx: tx.settings.get("k")) == "before"
    await asyncio.sleep(0)  # the next turn: a request arriving now sees the commit
    assert database.change_stamp() != stamp
    assert await database.lookup(lambda tx: tx.settings.get("k")) == "after"


@pytest.mark.engines("sqlite", reason="the loop snapshot of SQLite's event-loop connection")
async def test_a_commit_of_this_process_is_seen_by_the_next_lookup(database: Storage) -> None:
    stamp = database.change_stamp()
    assert await database.lookup(lambda tx: tx.settings.get("k")) is None
    write = asyncio.ensure_future(database.write(lambda tx: tx.settings.put("k", "v")))
    while not write.done():
        # Turn after turn until the write is answered, each turn reading under the snapshot of its own.
        await database.lookup(lambda tx: tx.settings.get("k"))
        await asyncio.sleep(0)
    await write
    assert await database.lookup(lambda tx: tx.settings.get("k")) == "v"
    assert database.change_stamp() != stamp


@pytest.mark.engines("postgresql", reason="instances that share a PostgreSQL database commit unseen")
async def test_change_stamps_never_vouch_where_other_instances_commit_unseen(database: Storage) -> None:
    # Another instance's commit is invisible to this one's caches: a stamp that repeated could outlive a revocation.
    assert database.change_stamp() != database.change_stamp()


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_storage_is_behind_its_interface() -> None:
    """Only the engines know SQLite; storage never reaches up into web or raises protocol errors; nothing uses
    aiosqlite (or its private internals) any more."""
    for path in APP.rglob("*.py"):
        imports = _imports(path)
        where = path.relative_to(APP.parent).as_posix()
        assert not any(name == "aiosqlite" or name.startswith("aiosqlite.") for name in imports), where
        if where.startswith("app/storage/"):
            assert not any(name.startswith(("app.web", "app.protocol.errors")) for name in imports), where
        else:
            assert "sqlite3" not in imports, where
            assert not any(name.startswith("app.storage.sqlite") for name in imports), where
            assert not any(name.startswith(("psycopg", "app.storage.postgres")) for name in imports), where


async def test_groups_of_lists_each_users_groups_by_folded_display_name(database: Storage) -> None:
    # More users than one batch of ids (500), groups whose id order, raw displayName order and folded order all
    # differ, and users in no group.
    users = [f"u{i:04d}" for i in range(1200)]
    names = {"g3": "alpha", "g1": "Bravo", "g2": "Charlie", "g0": "delta"}

    def seed(tx: Transaction) -> None:
        for user_id in users:
            tx.resources.insert(USER_RESOURCE, user_id, {"userName": user_id}, NOW)
        for group_id, name in names.items():
            tx.resources.insert(GROUP_RESOURCE, group_id, {"displayName": name}, NOW)
        tx.members.add_users("g0", users[::2], NOW)
        tx.members.add_users("g1", users[::3], NOW)
        tx.members.add_users("g2", users[1::5], NOW)
        tx.members.add_users("g3", users[1000:], NOW)

    await database.write(seed)
    found = await database.read(lambda tx: tx.members.groups_of(users))
    by_name = sorted(names, key=lambda group_id: names[group_id].lower())
    for i, user_id in enumerate(users):
        held = {group_id for group_id, there in
                (("g0", i % 2 == 0), ("g1", i % 3 == 0), ("g2", i % 5 == 1), ("g3", i >= 1000)) if there}
        assert [(m.group_id, m.display) for m in found[user_id]] == \
            [(group_id, names[group_id]) for group_id in by_name if group_id in held], user_id
    assert list(found) == users
