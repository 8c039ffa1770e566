"""Whether the console's members page answers within 100 ms server-side at 100,000 members (issue 14).

    .venv/bin/python bench/console.py [--members 100000] [--runs 15]

Seeds a fresh database with N users through the storage layer (bench/paging.py's seed), puts them in role
groups (1% administrators, 89% members, 10% guests) and derives the roster with the domain's own settle, in one
transaction; then serves it with the real application on loopback, signs in with an admin token as a browser
would, and times, `--runs` times each, in turns (so a busy moment of the shared machine weighs on all alike):
the first page, a page 200 pages deep (reached by following the Next page links), the admin filter, and a
search. It reports the median and the worst of the server's own duration for each (the access log's
duration_ms: the handler, the session check and the queries, not the network), against the goal of 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from paging import seed

from app.config import Settings
from app.domain.clock import utc_now
from app.domain.directory import new_id
from app.domain.roles import RoleRules
from app.domain.roster import settle
from app.domain.tokens import create_token
from app.protocol.schema_defs import GROUP_RESOURCE
from app.storage import resources as store
from app.storage import roster as roster_store
from app.storage.database import Database
from app.web.access_log import AccessLog
from app.web.app import init_app
from app.web.keys import ACCESS_LOG

GOAL_MS = 100.0
DEEP_PAGES = 200


async def give_roles(db_path: Path) -> str:
    """Role groups for every user, the roster derived from them; returns an admin token."""
    db = Database(db_path)
    await db.open()

    def bind(conn: Any) -> None:
        now = utc_now()
        ids = [row[0] for row in conn.execute("SELECT id FROM users ORDER BY id")]
        shares = {"rollcall-administrators": ids[: len(ids) // 100],
                  "rollcall-members": ids[len(ids) // 100: len(ids) * 90 // 100],
                  "rollcall-guests": ids[len(ids) * 90 // 100:]}
        for name, members in shares.items():
            group_id = new_id()
            store.insert(conn, GROUP_RESOURCE, group_id, {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name}, now)
            store.add_members(conn, group_id, members, now)
        settle(conn, RoleRules(), roster_store.all_user_ids(conn), actor="bench", now=now)

    try:
        await db.write(bind)
        return await create_token(db, "console-bench", ("admin",))
    finally:
        await db.close()


class Durations(io.StringIO):
    """Where the access log writes: keeps each request's duration_ms, as the server measured it."""

    last: float | None = None

    def write(self, line: str) -> int:
        found = re.search(r"duration_ms=([0-9.]+)", line)
        if found:
            self.last = float(found.group(1))
        return len(line)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rollcall-console-bench-") as scratch:
        db_path = Path(scratch) / "bench.db"
        started = time.monotonic()
        await seed(db_path, args.members)
        admin = await give_roles(db_path)
        print(f"seeded {args.members} members in {time.monotonic() - started:.0f} s", flush=True)
        durations = Durations()
        app = init_app(Settings(db_path=str(db_path)))
        app[ACCESS_LOG] = AccessLog("text", durations)
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            form = await (await client.get("/")).text()
            csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
            signed = await client.post("/console/sign-in", data={"token": admin, "csrf": csrf},
                                       allow_redirects=False)
            assert signed.status == 303, await signed.text()
            deep = "/console/members"
            for _ in range(DEEP_PAGES):
                page = await (await client.get(deep)).text()
                deep = "/console/members" + re.search(r'href="/console/members(\?[^"]+)" rel="next"',
                                                      page).group(1).replace("&amp;", "&")
            cases = {"first page": "/console/members", f"page {DEEP_PAGES + 1}": deep,
                     "role=admin": "/console/members?role=admin", "q=user099999": "/console/members?q=user099999"}
            timings: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(args.runs):
                for name, path in cases.items():
                    answer = await client.get(path)
                    await answer.read()
                    assert answer.status == 200, (path, answer.status)
                    assert durations.last is not None
                    timings[name].append(durations.last)
        finally:
            await client.close()
    print(f"members page at {args.members} members, server-side duration_ms over {args.runs} runs "
          f"(goal: {GOAL_MS:g} ms):")
    for name, values in timings.items():
        verdict = "ok" if statistics.median(values) <= GOAL_MS else "OVER"
        print(f"  {name:<16} median {statistics.median(values):7.1f}   worst {max(values):7.1f}   {verdict}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
