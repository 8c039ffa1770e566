"""Whether the last page of 100,000 users costs what the first does, by cursor and by startIndex (issue 10).

    .venv/bin/python bench/paging.py [--users 100000] [--count 100] [--runs 15] [--server-root DIR]

Seeds a fresh database in a temporary directory with N users through the storage layer (one transaction,
no HTTP: ~10 s for 100,000), serves it with a real `python -m app serve` subprocess, and walks the whole
collection as a client would, one request at a time on one keep-alive connection:

- by cursor: `GET /Users?count=100&cursor=` then each page's nextCursor, to the end;
- by startIndex: `GET /Users?count=100&startIndex=1`, then 101, 201, ... to the end.

Then it times the pages the walk went through as the walk asked for them (the cursor, or the startIndex,
that the page before handed on): the first and the last 50, in pairs (first, last, first, ...) so that a busy
moment of the shared machine weighs on both alike, and the first and the last page `--runs` times; it reports
median times and the ratio last/first (the goal: 1.2 at most). A third figure is for a startIndex page no walk
reached (each request right after a write, which forgets where pages ended): the last page is then found by
an OFFSET scan, shown for information.

`--server-root` serves another checkout (e.g. `git worktree add /tmp/old main`) on the same seeded
database, to compare with the code before; a server without cursor support has its cursor rows skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from footprint import ROOT, free_port

from app.domain.clock import utc_now
from app.domain.directory import new_id
from app.domain.tokens import create_token
from app.protocol.resources import load_resource
from app.protocol.schema_defs import USER_RESOURCE
from app.storage.factory import open_storage
from app.storage.interface import Transaction

RATIO_GOAL = 1.2
EDGE_PAGES = 50
JUMP = "startIndex: the first and the last page right after a write (the last by an OFFSET scan)"


async def seed(db_path: Path, users: int) -> str:
    """N users in one transaction, each a validated document like a POST would store; returns a token."""
    template = load_resource(USER_RESOURCE, {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "template",
        "name": {"givenName": "Bench", "familyName": "User"}, "displayName": "Bench User", "active": True,
        "emails": [{"value": "template@example.com", "type": "work", "primary": True}],
    })

    def insert_all(tx: Transaction) -> None:
        now = utc_now()
        for i in range(users):
            document = copy.deepcopy(template)
            document["userName"] = f"user{i:06d}@example.com"
            document["emails"][0]["value"] = document["userName"]
            tx.resources.insert(USER_RESOURCE, new_id(), document, now)

    db = open_storage(db_path)
    await db.open()
    try:
        await db.write(insert_all)
        return await create_token(db, "bench")
    finally:
        await db.close()


@contextmanager
def serving(root: Path, db_path: Path, port: int, log: Path) -> Iterator[None]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "app", "serve", "--db", str(db_path), "--host",
                                    "127.0.0.1", "--port", str(port)], cwd=root, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/healthz")
                connection.getresponse().read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start; its log:\n{log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Client:
    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}

    def get(self, path: str) -> tuple[dict[str, Any], float]:
        started_at = time.perf_counter()
        self.connection.request("GET", f"/scim/v2{path}", headers=self.headers)
        response = self.connection.getresponse()
        body = json.loads(response.read())
        seconds = time.perf_counter() - started_at
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body}")
        return body, seconds

    def post(self, path: str, body: dict[str, Any]) -> None:
        self.connection.request("POST", f"/scim/v2{path}", body=json.dumps(body), headers=self.headers)
        self.connection.getresponse().read()


def walk(client: Client, count: int, by_cursor: bool) -> tuple[list[str], int]:
    """Every page in turn, as a client walks them: the path of each page and how many resources were listed."""
    paths: list[str] = []
    listed = 0
    path = f"/Users?count={count}&cursor=" if by_cursor else f"/Users?count={count}&startIndex=1"
    while True:
        body, _ = client.get(path)
        paths.append(path)
        listed += len(body["Resources"])
        if by_cursor:
            if "nextCursor" not in body:
                return paths, listed
            path = f"/Users?count={count}&cursor={quote(body['nextCursor'])}"
        else:
            if listed >= body["totalResults"] or not body["Resources"]:
                return paths, listed
            path = f"/Users?count={count}&startIndex={body['startIndex'] + len(body['Resources'])}"


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def in_turn(client: Client, firsts: list[str], lasts: list[str], runs: int = 1) -> tuple[float, float]:
    """Median times of the pages `firsts` and `lasts`, requested in pairs (first, last, first, ...) so that a busy
    moment of the shared machine weighs on both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for first, last in zip(firsts, lasts, strict=True):
            times[0].append(client.get(first)[1])
            times[1].append(client.get(last)[1])
    return median_ms(times[0]), median_ms(times[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--count", type=int, default=100, help="page size")
    parser.add_argument("--runs", type=int, default=15, help="repeated requests of the first and the last page")
    parser.add_argument("--server-root", type=Path, default=ROOT, help="the checkout to serve (default: this one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        db_path = Path(workdir) / "paging.db"
        began = time.perf_counter()
        token = asyncio.run(seed(db_path, args.users))
        print(f"seeded {args.users:,} users in {time.perf_counter() - began:.1f} s; serving {args.server_root}",
              flush=True)
        port = free_port()
        with serving(args.server_root, db_path, port, Path(workdir) / "server.log"):
            client = Client(port, token)
            config, _ = client.get("/ServiceProviderConfig")
            methods = ["startIndex"]
            if config.get("pagination", {}).get("cursor"):
                methods.insert(0, "cursor")
            rows = []
            for method in methods:
                began = time.perf_counter()
                paths, listed = walk(client, args.count, method == "cursor")
                if listed != args.users:
                    raise RuntimeError(f"the {method} walk listed {listed:,} users, not {args.users:,}")
                print(f"walked {len(paths):,} pages by {method} in {time.perf_counter() - began:.1f} s", flush=True)
                # Each page is asked for as the walk did (the cursor or startIndex the page before handed on).
                rows.append((f"{method}: the first and the last {EDGE_PAGES} pages of the walk",
                             *in_turn(client, paths[:EDGE_PAGES], paths[-EDGE_PAGES:])))
                rows.append((f"{method}: the first and the last page, {args.runs} times",
                             *in_turn(client, paths[:1], paths[-1:], args.runs)))
                if method == "startIndex":
                    jumps: tuple[list[float], list[float]] = ([], [])
                    for run in range(args.runs):
                        # A write forgets where pages ended, so the last page is found from the start.
                        for path, samples in zip((paths[0], paths[-1]), jumps, strict=True):
                            client.post("/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                                   "userName": f"jump{run}-{len(samples)}{path[-1]}@example.com"})
                            samples.append(client.get(path)[1])
                    rows.append((JUMP, median_ms(jumps[0]), median_ms(jumps[1])))

    print()
    print(f"{args.users:,} users, pages of {args.count}, median times:")
    print()
    print("| case | first page | last page | last/first |")
    print("|---|---|---|---|")
    for name, first, last in rows:
        print(f"| {name} | {first:.1f} ms | {last:.1f} ms | {last / first:.2f} |")
    print()
    ok = True
    for name, first, last in rows:
        if name == JUMP:
            continue
        passed = last / first <= RATIO_GOAL
        ok &= passed
        print(f"{'PASS' if passed else 'FAIL'} {name}: last/first {last / first:.2f} (goal <= {RATIO_GOAL})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
