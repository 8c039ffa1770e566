"""Crash safety: SIGKILL `rollcall serve` in the middle of concurrent writes, restart it on the same file, and
check that every change it acknowledged is there, nothing is half-applied, and the roster, the change feed and
the SQLite file all agree with the data.

Each client owns its own users, and sends one request at a time, so for each user the acknowledged requests form
one sequence and the expected state is the state after the last acknowledged one. When the server dies, each
client has at most one request in flight; that request may or may not have been applied, so for its user both
outcomes are accepted (and nothing else).

Six kill points: three into a run of 8 clients, one in the middle of group commits of 64 writers (each batch a
transaction of many savepoints), one in the middle of a schema migration, and one while a role group's deletion opens
a hold for its 3,000 members. The workload's departures open holds too; the roster must be what the data implies,
minus the held departures, and the holds and their events must agree with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.storage.factory import is_postgres
from app.storage.schema_version import SCHEMA_VERSION
from tests.conftest import GROUP_SCHEMA, PATCH_OP, REPO, USER_SCHEMA, assert_invariant
from tests.reliability.conftest import (
    ServedDatabase,
    ServerProcess,
    check_feed_matches_roster,
    cli,
    create_token_with_cli,
    expected_roles,
)

CLIENTS = 8
# As many writers as one group commit takes (MAX_GROUP_COMMIT): a batch holds many savepoints when it is killed.
MANY_WRITERS = 64
ROLE_GROUPS = ("rollcall-administrators", "rollcall-members", "rollcall-guests")
WORKLOAD_TIMEOUT_S = 60
REQUEST_TIMEOUT_S = 10


@dataclass(frozen=True)
class UserState:
    """What one user should look like, as far as the server has acknowledged."""

    user_name: str
    exists: bool = False
    id: str | None = None
    stamp: str | None = None  # displayName and title are always written together, to the same stamp
    active: bool = True
    groups: frozenset[str] = frozenset()


@dataclass
class Tally:
    sent: int = 0
    acknowledged: int = 0
    in_flight: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


class Client:
    """One identity-provider connection that owns a set of users and changes them one request at a time."""

    def __init__(self, number: int, session: aiohttp.ClientSession, base: str, group_ids: dict[str, str],
                 tally: Tally, stop: asyncio.Event, seed: int) -> None:
        self.number = number
        self.session = session
        self.base = base
        self.group_ids = group_ids
        self.tally = tally
        self.stop = stop
        self.random = random.Random(seed)
        self.users: dict[str, UserState] = {}  # userName -> acknowledged state
        self.pending: UserState | None = None  # the state if the request in flight when the server died applied
        self.created = 0

    async def send(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.tally.sent += 1
        self.tally.in_flight += 1
        try:
            async with self.session.request(method, f"{self.base}{path}", json=body) as response:
                payload = await response.json(content_type=None) if response.status != 204 else None
                return response.status, payload
        finally:
            self.tally.in_flight -= 1

    async def run(self) -> None:
        while not self.stop.is_set():
            after, request = self.next_change()
            self.pending = after
            try:
                status, payload = await self.send(*request)
            except (aiohttp.ClientError, TimeoutError):
                return  # the server is gone: `pending` stays uncertain
            if not 200 <= status < 300:
                self.tally.failures.append(f"{request[0]} {request[1]} -> {status} {payload}")
                return
            if after.exists and after.id is None:
                after = replace(after, id=payload["id"])
            self.users[after.user_name] = after
            self.pending = None
            self.tally.acknowledged += 1
            kind = request[0] + " " + request[1].split("/")[1]
            self.tally.by_kind[kind] = self.tally.by_kind.get(kind, 0) + 1

    def next_change(self) -> tuple[UserState, tuple[str, str, Any]]:
        """Pick a change to one of this client's users: (its state once applied, the request)."""
        living = [u for u in self.users.values() if u.exists]
        roll = self.random.random()
        if not living or roll < 0.25:
            self.created += 1
            name = f"crash-{self.number}-{self.created}"
            stamp = f"s{self.random.getrandbits(40):x}"
            after = UserState(name, exists=True, stamp=stamp)
            body = {"schemas": [USER_SCHEMA], "userName": name, "displayName": stamp, "title": stamp}
            return after, ("POST", "/Users", body)
        user = self.random.choice(living)
        if roll < 0.5:
            # Several attributes in one PATCH: after any crash they must be all old or all new.
            stamp = f"s{self.random.getrandbits(40):x}"
            active = self.random.random() < 0.8
            operations = [{"op": "replace", "path": "displayName", "value": stamp},
                          {"op": "replace", "path": "title", "value": stamp},
                          {"op": "replace", "path": "active", "value": active}]
            body = {"schemas": [PATCH_OP], "Operations": operations}
            return replace(user, stamp=stamp, active=active), ("PATCH", f"/Users/{user.id}", body)
        if roll < 0.93:
            group = self.random.choice(ROLE_GROUPS)
            if group in user.groups:
                operations = [{"op": "remove", "path": f'members[value eq "{user.id}"]'}]
                after = replace(user, groups=user.groups - {group})
            else:
                operations = [{"op": "add", "path": "members", "value": [{"value": user.id}]}]
                after = replace(user, groups=user.groups | {group})
            body = {"schemas": [PATCH_OP], "Operations": operations}
            return after, ("PATCH", f"/Groups/{self.group_ids[group]}", body)
        return replace(user, exists=False, groups=frozenset()), ("DELETE", f"/Users/{user.id}", None)


async def _setup_groups(session: aiohttp.ClientSession, base: str) -> dict[str, str]:
    ids = {}
    for name in ROLE_GROUPS:
        async with session.post(f"{base}/Groups", json={"schemas": [GROUP_SCHEMA], "displayName": name}) as answer:
            assert answer.status == 201, await answer.text()
            ids[name] = (await answer.json(content_type=None))["id"]
    return ids


async def _drive_until_kill(served: ServedDatabase, kill_after: int, seed: int, writers: int,
                            also: tuple[str, ...] = ()) -> tuple[list[Client], Tally, int]:
    """Run `writers` clients against the server (and the other instances whose base URLs are `also`, the clients
    taking them in turn) and SIGKILL the server once `kill_after` requests were acknowledged; also returns how many
    requests were in flight at the kill."""
    tally = Tally()
    stop = asyncio.Event()
    headers = {"Authorization": f"Bearer {served.token}"}
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout,
                                     connector=aiohttp.TCPConnector(limit=writers + 2)) as session:
        group_ids = await _setup_groups(session, served.server.base_url)
        bases = (served.server.base_url, *also)
        clients = [Client(n, session, bases[n % len(bases)], group_ids, tally, stop, seed * 100 + n)
                   for n in range(writers)]
        tasks = [asyncio.create_task(c.run()) for c in clients]
        deadline = time.monotonic() + WORKLOAD_TIMEOUT_S
        while tally.acknowledged < kill_after and time.monotonic() < deadline and not tally.failures:
            if all(t.done() for t in tasks):
                break
            await asyncio.sleep(0.001)
        # Kill while requests are in flight: the clients are still sending.
        in_flight = tally.in_flight
        served.server.kill()
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=REQUEST_TIMEOUT_S + 5)
    assert not tally.failures, tally.failures[:5]
    assert tally.acknowledged >= kill_after, f"only {tally.acknowledged} acknowledged before the deadline"
    # Each client sends its next request as soon as the last is answered, so nearly all are waiting at any moment.
    assert in_flight >= writers // 2, f"only {in_flight} of {writers} requests in flight at the kill"
    return clients, tally, in_flight


async def _get_all(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    start = 1
    while True:
        async with session.get(url, params={"startIndex": start, "count": 1000}) as answer:
            assert answer.status == 200, await answer.text()
            page = await answer.json(content_type=None)
        found += page["Resources"]
        if not page["Resources"] or len(found) >= page["totalResults"]:
            return found
        start += len(page["Resources"])


async def _read_everything(served: ServedDatabase) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                                              dict[str, str], set[str], list[dict[str, Any]]]:
    """Users, groups, the roster (id → role), who on it is held, and the feed, as a client reads them."""
    headers = {"Authorization": f"Bearer {served.token}"}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as session:
        base = served.server.base_url
        users = await _get_all(session, f"{base}/Users")
        groups = await _get_all(session, f"{base}/Groups")
        async with session.get(f"{served.server.origin}/api/members") as answer:
            assert answer.status == 200
            members = (await answer.json())["members"]
            roster = {m["id"]: m["role"] for m in members}
            held = {m["id"] for m in members if m["held"]}
        events: list[dict[str, Any]] = []
        after = 0
        while True:
            async with session.get(f"{served.server.origin}/api/events",
                                   params={"after": after, "limit": 1000}) as answer:
                assert answer.status == 200
                page = await answer.json()
            events += page["events"]
            if not page["events"]:
                return users, groups, roster, held, events
            after = page["next"]


def _actual_state(name: str, user: dict[str, Any] | None, groups_of: dict[str, frozenset[str]]) -> UserState:
    if user is None:
        return UserState(name)
    # A user is defined by its id and what the workload writes; displayName and title must match each other.
    assert user.get("displayName") == user.get("title"), f"half-applied PATCH on {name}: {user}"
    return UserState(name, exists=True, id=user["id"], stamp=user.get("displayName"),
                     active=user.get("active", True) is not False, groups=groups_of.get(user["id"], frozenset()))


def _same(expected: UserState, actual: UserState) -> bool:
    if not expected.exists:
        return not actual.exists
    return actual.exists and (expected.id is None or expected.id == actual.id) and replace(
        expected, id=None) == replace(actual, id=None)


def _integrity_check(db_path: str) -> str:
    conn = sqlite3.connect(db_path)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        orphans = conn.execute("PRAGMA foreign_key_check").fetchall()
        assert orphans == [], f"foreign keys broken after the crash: {orphans[:5]}"
        return result
    finally:
        conn.close()


@pytest.mark.parametrize(("writers", "kill_after"), [(CLIENTS, 50), (CLIENTS, 200), (CLIENTS, 500),
                                                     (MANY_WRITERS, 400)],
                         ids=["8-writers-50", "8-writers-200", "8-writers-500", "group-commit-of-64-writers-400"])
async def test_acknowledged_changes_survive_sigkill(served_database: ServedDatabase, writers: int,
                                                    kill_after: int) -> None:
    served = served_database
    served.server.start()
    clients, tally, in_flight = await _drive_until_kill(served, kill_after, seed=kill_after, writers=writers)

    served.server.start()  # the same file, after SIGKILL
    await _verify_after_restart(served, clients, tally, in_flight, kill_after, writers)


@pytest.mark.parametrize(("writers", "kill_after"), [(CLIENTS, 200), (MANY_WRITERS, 400)],
                         ids=["8-writers-200", "64-writers-400"])
async def test_acknowledged_changes_survive_sigkill_of_one_of_two_postgresql_instances(
        tmp_path: Path, postgres_url: str, writers: int, kill_after: int) -> None:
    # Two `rollcall serve` on one PostgreSQL database, the clients spread over both; one is SIGKILLed mid-load.
    token = create_token_with_cli(postgres_url, "reliability")
    one = ServerProcess(postgres_url, tmp_path / "one.log")
    two = ServerProcess(postgres_url, tmp_path / "two.log")
    served = ServedDatabase(postgres_url, token, one)
    try:
        one.start()
        two.start()
        clients, tally, in_flight = await _drive_until_kill(served, kill_after, seed=kill_after, writers=writers,
                                                            also=(two.base_url,))
        one.start()
        await _verify_after_restart(served, clients, tally, in_flight, kill_after, writers)
    finally:
        one.stop()
        two.stop()


async def _verify_after_restart(served: ServedDatabase, clients: list[Client], tally: Tally, in_flight: int,
                                kill_after: int, writers: int) -> None:
    """Every acknowledged change is there, the one in flight all there or not at all; the roster and the feed
    agree with the data; the database is whole."""
    users, groups, roster, held, events = await _read_everything(served)

    # -- every acknowledged change is there; the one in flight is all there or not at all --------------------
    by_name = {u["userName"]: u for u in users}
    groups_of: dict[str, frozenset[str]] = {}
    for group in groups:
        for member in group.get("members", []):
            groups_of[member["value"]] = groups_of.get(member["value"], frozenset()) | {group["displayName"]}
    verified = facts = 0
    expected_names = set()
    for client in clients:
        pending = client.pending
        for name in {*client.users, *([pending.user_name] if pending else [])}:
            acknowledged = client.users.get(name, UserState(name))
            allowed = [acknowledged] + ([pending] if pending and pending.user_name == name else [])
            actual = _actual_state(name, by_name.get(name), groups_of)
            assert any(_same(state, actual) for state in allowed), (
                f"{name}: after the crash {actual}, but acknowledged {acknowledged}"
                f"{f' (or, if the request in flight applied, {pending})' if len(allowed) > 1 else ''}")
            expected_names.add(name)
            verified += 1
            # existence, and for a living user: id, displayName, title, active and each role group's membership
            facts += 5 + len(ROLE_GROUPS) if actual.exists else 1
    unexpected = set(by_name) - expected_names
    assert not unexpected, f"users nobody created: {sorted(unexpected)[:5]}"
    assert {g["displayName"] for g in groups} == set(ROLE_GROUPS)

    # -- the roster and the change feed agree with the data -----------------------------------------------
    # Past three departures in the window, each one is held (app/domain/holds.py): the held keep their role.
    implied = expected_roles(users, groups)
    assert {u: r for u, r in roster.items() if u not in held} == {u: r for u, r in implied.items() if u not in held}, \
        "GET /api/members disagrees with GET /Users and GET /Groups"
    assert all(implied.get(u) != roster[u] for u in held), "held from a change the data no longer implies"
    feed_users = check_feed_matches_roster(events, roster)
    created_events = {e["userName"] for e in events if e["type"] == "user.created"}
    deleted_events = {e["userId"] for e in events if e["type"] == "user.deleted"}
    for client in clients:
        for state in client.users.values():
            assert state.user_name in created_events, f"no user.created event for {state.user_name}"
            if not state.exists and state.id is not None:
                assert state.id in deleted_events, f"no user.deleted event for {state.user_name}"

    served.server.stop()
    if not is_postgres(served.db_path):  # PostgreSQL's own pages were never at risk: only rollcall was killed
        assert _integrity_check(str(served.db_path)) == "ok"
    assert_invariant(str(served.db_path))  # the same, read from the database, with the holds and their events
    print(f"\n[crash safety] kill point {kill_after}: {tally.sent} requests sent by {writers} clients, "
          f"{tally.acknowledged} acknowledged ({', '.join(f'{k}: {v}' for k, v in sorted(tally.by_kind.items()))}), "
          f"{in_flight} in flight at SIGKILL; after restart all {tally.acknowledged} acknowledged changes verified "
          f"through the final state of {verified} users ({facts} facts), {len(roster)} roster entries recomputed, "
          f"{feed_users} users' feed checked in {len(events)} events ({len(held)} held); "
          f"{'PostgreSQL' if is_postgres(served.db_path) else 'integrity_check ok'}; "
          "nothing lost")


# -- the fifth kill point: in the middle of a schema migration ------------------------------------------------

MIGRATION_USERS = 12_000
# A heavy step of the kind a release brings: a new column, filled in for every row, and indexed.
HEAVY_STEP = """
ALTER TABLE users ADD COLUMN nick TEXT;
UPDATE users SET nick = upper(user_name), doc = json_set(doc, '$.nickName', upper(user_name));
CREATE INDEX users_nick ON users (nick);
"""
# The real upgrade path (upgrade(): back up, then migrate()), as a release one schema version newer would run it.
NEWER_ROLLCALL_UPGRADES = """
import asyncio, sys
from app.storage.sqlite import migrations as database
database.MIGRATIONS = (*database.MIGRATIONS, (database.SCHEMA_VERSION + 1, sys.argv[2]))
database.SCHEMA_VERSION += 1
print(asyncio.run(database.upgrade(sys.argv[1])), flush=True)
"""
# The step has written this much into the WAL, uncommitted, when the process is killed (SQLite spills a
# transaction's pages to the WAL once its 2 MB page cache is full; the whole step writes about 12 MB there).
KILL_AT_WAL_BYTES = 3 * 1024 * 1024


async def _fill(db_path: str, users: int = MIGRATION_USERS) -> None:
    from app.domain.directory import new_id
    from app.protocol.schema_defs import USER_RESOURCE
    from app.storage.factory import open_storage
    from app.storage.interface import Transaction

    padding = "x" * 600

    def insert_all(tx: Transaction) -> None:
        for n in range(users):
            document = {"schemas": [USER_SCHEMA], "userName": f"user{n}@acme.com", "title": f"t{n}",
                        "displayName": f"User {n}", "emails": [{"value": f"user{n}@acme.com", "primary": True}],
                        "addresses": [{"streetAddress": padding}]}
            tx.resources.insert(USER_RESOURCE, new_id(), document, "2026-12-01T00:00:00Z")

    db = open_storage(db_path)
    await db.open()
    try:
        await db.write(insert_all)
    finally:
        await db.close()


def _fingerprint(path: str) -> tuple[int, str]:
    """The schema version and a digest of every user row as the old schema has it."""
    import hashlib

    conn = sqlite3.connect(path)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        digest = hashlib.sha256()
        for row in conn.execute("SELECT id, user_name, json_remove(doc, '$.nickName'), version FROM users ORDER BY id"):
            digest.update(repr(row).encode())
        return version, digest.hexdigest()
    finally:
        conn.close()


def _upgrade_in_child(db_path: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", NEWER_ROLLCALL_UPGRADES, db_path, HEAVY_STEP], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.engines("sqlite", reason="SQLite's upgrade of a file (a backup, then steps written through the WAL), "
                                        "killed with its step half in the WAL")
async def test_a_migration_killed_midway_leaves_the_old_version_whole(served_database: ServedDatabase) -> None:
    served = served_database
    db_path = str(served.db_path)
    await _fill(db_path)
    before = _fingerprint(db_path)
    assert before[0] == SCHEMA_VERSION

    child = _upgrade_in_child(db_path)
    wal = Path(f"{db_path}-wal")
    # Mid-step: its statements have run in part, its COMMIT has not.
    _kill_migration_once(child, lambda: wal.exists() and wal.stat().st_size > KILL_AT_WAL_BYTES,
                         "the migration never started writing", poll_s=0.001)
    killed_at_wal = wal.stat().st_size

    # -- after the crash: the old version with every row as it was, or the new one fully applied ---------------
    assert _integrity_check(db_path) == "ok"
    version, digest = _fingerprint(db_path)
    columns = [row[1] for row in sqlite3.connect(db_path).execute("PRAGMA table_info(users)")]
    if version == SCHEMA_VERSION:
        assert digest == before[1] and "nick" not in columns, "a half-applied migration step"
    else:
        assert version == SCHEMA_VERSION + 1 and digest == before[1]
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("SELECT count(*) FROM users WHERE nick IS NOT upper(user_name)").fetchone()[0] == 0
    # upgrade() backed the file up before migrating: that copy is whole, at the old version, and nothing half
    # written is left beside it.
    copies = sorted(Path(db_path).parent.glob(f"rollcall.db.v{SCHEMA_VERSION}-*.backup"))
    assert len(copies) == 1 and _fingerprint(str(copies[0])) == before and _integrity_check(str(copies[0])) == "ok"
    assert not list(Path(db_path).parent.glob("*.partial"))

    # -- and the file serves: the rollcall it belongs to starts on it and answers from it --------------------
    if version == SCHEMA_VERSION:
        assert await _served_users(served) == MIGRATION_USERS
        copies[0].unlink()
        # Upgrading again, undisturbed, completes.
        finished = _upgrade_in_child(db_path)
        assert finished.wait(timeout=WORKLOAD_TIMEOUT_S) == 0, finished.stdout.read() if finished.stdout else ""
        if finished.stdout:
            finished.stdout.close()
        assert _fingerprint(db_path) == (SCHEMA_VERSION + 1, before[1]) and _integrity_check(db_path) == "ok"
    print(f"\n[crash safety] migration of {MIGRATION_USERS} users killed with {killed_at_wal:,} bytes of it in the "
          f"WAL: after restart at schema version {version}, every row as before, integrity_check ok, the backup "
          f"upgrade() made first whole; served, then upgraded undisturbed to version {SCHEMA_VERSION + 1}")


# -- the same kill on PostgreSQL: each step is one transaction there, so the schema is old or new, never between --

PG_MIGRATION_USERS = 2_000
# The heavy step as PostgreSQL writes it; the pause at its end is where the kill lands: every statement of the step
# has run, its transaction is open, and the COMMIT never comes.
PG_HEAVY_STEP = """
ALTER TABLE users ADD COLUMN nick TEXT;
UPDATE users SET nick = upper(user_name), doc = jsonb_set(doc, '{nickName}', to_jsonb(upper(user_name)));
CREATE INDEX users_nick ON users (nick);
SELECT pg_sleep(%s);
"""
PG_NEWER_ROLLCALL_UPGRADES = """
import asyncio, sys
from app.storage.postgres import migrations
migrations.MIGRATIONS = (*migrations.MIGRATIONS, (migrations.SCHEMA_VERSION + 1, sys.argv[2]))
migrations.SCHEMA_VERSION += 1
print(asyncio.run(migrations.upgrade(sys.argv[1])), flush=True)
"""
UPGRADER = "rollcall-killed-upgrade"  # the application_name of the upgrade's connection, to find its backend


def _pg_fingerprint(url: str) -> tuple[int, str, bool]:
    """The schema version, a digest of every user row as the old schema has it, and whether `nick` exists."""
    import hashlib

    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        version = conn.execute("SELECT version FROM rollcall_schema").fetchone()
        digest = hashlib.sha256()
        for row in conn.execute("SELECT id, user_name, (doc - 'nickName')::text, version FROM users ORDER BY id"):
            digest.update(repr(row).encode())
        nick = conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' "
                            "AND column_name = 'nick'").fetchone()
    assert version is not None and nick is not None
    return int(version[0]), digest.hexdigest(), bool(nick[0])


def _pg_backends(url: str, running: str = "%") -> list[str]:
    """The upgrade's backends still alive (those running a query like `running`), as state: query."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return [f"{row[0]}: {row[1]}" for row in conn.execute(
            "SELECT state, query FROM pg_stat_activity WHERE application_name = %s AND (%s = '%%' OR "
            "(state = 'active' AND query LIKE %s))", (UPGRADER, running, running))]


@pytest.mark.engines("postgresql", reason="PostgreSQL's migration in one transaction per step, killed mid-step")
async def test_a_postgresql_migration_killed_midway_leaves_the_old_version_whole(
        served_database: ServedDatabase) -> None:
    served = served_database
    url = str(served.db_path)
    await _fill(url, PG_MIGRATION_USERS)
    before = _pg_fingerprint(url)
    assert before[0] == SCHEMA_VERSION and not before[2]

    upgrader_url = f"{url}?application_name={UPGRADER}"
    child = subprocess.Popen([sys.executable, "-c", PG_NEWER_ROLLCALL_UPGRADES, upgrader_url, PG_HEAVY_STEP % 3],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # Mid-step: its statements have run, its COMMIT has not.
    _kill_migration_once(child, lambda: bool(_pg_backends(url, "%pg_sleep%")),
                         "the migration never reached its last statement", poll_s=0.01)
    deadline = time.monotonic() + WORKLOAD_TIMEOUT_S
    # PostgreSQL ends the orphaned backend (and rolls its transaction back) once it finds its client gone.
    while left := _pg_backends(url):
        assert time.monotonic() < deadline, f"the killed upgrade's backend lives on: {left}"
        time.sleep(0.05)

    # -- after the crash: the old version with every row as it was (the new one was never committed) ------------
    assert _pg_fingerprint(url) == before, "a half-applied migration step"
    assert await _served_users(served) == PG_MIGRATION_USERS
    # Upgrading again, undisturbed, completes: the new version, the rows as before, the column filled in.
    finished = subprocess.run([sys.executable, "-c", PG_NEWER_ROLLCALL_UPGRADES, url, PG_HEAVY_STEP % 0], cwd=REPO,
                              capture_output=True, text=True, timeout=WORKLOAD_TIMEOUT_S)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert _pg_fingerprint(url) == (SCHEMA_VERSION + 1, before[1], True)
    print(f"\n[crash safety] PostgreSQL migration of {PG_MIGRATION_USERS} users killed after its step's statements, "
          f"before its COMMIT: the old schema version {SCHEMA_VERSION}, every row as before; served, then upgraded "
          f"undisturbed to version {SCHEMA_VERSION + 1}")


# -- a kill point in the middle of opening a hold ---------------------------------------------------------------

HOLD_USERS = 3000
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
# Where in the measured time of one hold-opening DELETE each kill lands: inside its transaction, and after it.
KILL_FRACTIONS = (0.25, 0.5, 0.75, 1.0, 3.0)


async def _members_group(session: aiohttp.ClientSession, base: str, user_ids: list[str]) -> tuple[str, float]:
    """POST the members group with every user (releasing whoever an open hold keeps); its id and how long it took."""
    started = time.monotonic()
    body = {"schemas": [GROUP_SCHEMA], "displayName": "rollcall-members", "members": [{"value": i} for i in user_ids]}
    async with session.post(f"{base}/Groups", json=body) as answer:
        assert answer.status == 201, await answer.text()
        return (await answer.json(content_type=None))["id"], time.monotonic() - started


async def test_sigkill_while_a_hold_opens_leaves_nothing_half_held(served_database: ServedDatabase) -> None:
    served = served_database
    # The hold API takes an admin token.
    admin = cli("token", "create", "--name", "crash-admin", "--scope", "admin", "--db", str(served.db_path))
    served.server.start()
    headers = {"Authorization": f"Bearer {admin.stdout.strip().splitlines()[-1]}"}
    # Generous: re-adding 3,000 held members on PostgreSQL took over 30 s once on a loaded 2-core machine.
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S * 6)
    base = served.server.base_url
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        user_ids: list[str] = []
        for start in range(0, HOLD_USERS, 1000):
            operations = [{"method": "POST", "path": "/Users", "bulkId": f"u{n}",
                           "data": {"schemas": [USER_SCHEMA], "userName": f"held-{n}@acme.com"}}
                          for n in range(start, start + 1000)]
            async with session.post(f"{base}/Bulk", json={"schemas": [BULK_REQUEST], "Operations": operations}) as r:
                assert r.status == 200, await r.text()
                user_ids += [op["location"].rsplit("/", 1)[1] for op in (await r.json(content_type=None))["Operations"]]
        group_id, _ = await _members_group(session, base, user_ids)
        # One undisturbed round, to time the DELETE that opens the hold.
        started = time.monotonic()
        async with session.delete(f"{base}/Groups/{group_id}") as answer:
            assert answer.status == 204
        took = time.monotonic() - started
        assert len(assert_invariant(str(served.db_path))["held"]) == HOLD_USERS
        group_id, _ = await _members_group(session, base, user_ids)
    outcomes = []
    for fraction in KILL_FRACTIONS:
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            deleting = asyncio.create_task(session.delete(f"{base}/Groups/{group_id}"))
            await asyncio.sleep(took * fraction)
            served.server.kill()
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                (await deleting).release()
        if not is_postgres(served.db_path):  # PostgreSQL's own pages were never at risk: only rollcall was killed
            assert _integrity_check(str(served.db_path)) == "ok"
        served.server.start()
        # -- after the restart: the whole change and its whole hold, or neither ----------------------------------
        state = assert_invariant(str(served.db_path))
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            async with session.get(f"{base}/Groups/{group_id}", params={"excludedAttributes": "members"}) as answer:
                group_stored = answer.status == 200
            async with session.get(f"{served.server.origin}/api/holds") as answer:
                open_holds = (await answer.json())["holds"]
            if group_stored:
                assert state["held"] == {} and open_holds == [] and len(state["roster"]) == HOLD_USERS
                outcomes.append("not applied")
            else:
                assert len(state["held"]) == HOLD_USERS and len(state["roster"]) == HOLD_USERS
                assert [h["count"] for h in open_holds] == [HOLD_USERS]
                outcomes.append("applied and held")
                group_id, _ = await _members_group(session, base, user_ids)  # releases them for the next round
                assert assert_invariant(str(served.db_path))["held"] == {}
    served.server.stop()
    print(f"\n[crash safety] SIGKILL while a DELETE of a {HOLD_USERS}-member role group opened its hold "
          f"(it takes {took * 1000:.0f} ms), at {', '.join(f'{f:.0%}' for f in KILL_FRACTIONS)} of it: "
          f"{', '.join(outcomes)}; roster = data minus held departures, holds and feed agree, after each restart")


def _kill_migration_once(child: subprocess.Popen[bytes], ready: Callable[[], bool], never: str,
                         poll_s: float) -> None:
    """SIGKILL the migrating child as soon as `ready()` holds; it must not finish first."""
    deadline = time.monotonic() + WORKLOAD_TIMEOUT_S
    try:
        while not ready():
            assert child.poll() is None, f"the migration ended before it could be killed: {child.stdout.read()!r}"
            assert time.monotonic() < deadline, never
            time.sleep(poll_s)
        child.send_signal(signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)
        assert child.stdout is not None
        child.stdout.close()


async def _served_users(served: Any) -> int:
    """Start the database's server, and the totalResults of its Users (asked with a token it keeps); stop it."""
    served.server.start()
    try:
        headers = {"Authorization": f"Bearer {served.token}"}
        async with aiohttp.ClientSession(headers=headers) as session, \
                session.get(f"{served.server.base_url}/Users", params={"count": 1}) as answer:
            assert answer.status == 200, await answer.text()
            return int((await answer.json(content_type=None))["totalResults"])
    finally:
        served.server.stop()
