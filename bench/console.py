"""The console's members page at 100,000 members, timed server-side (issue 14: "answers within 100 ms").

    .venv/bin/python bench/console.py [--members 100000] [--runs 30] [--db postgresql://...]
    (or: make bench-console)

Seeds a fresh SQLite file in a temporary directory (or the empty PostgreSQL database that --db names) through the
storage layer, in one transaction and with no HTTP (as bench/paging.py does): N users, three role groups (1%
administrators, 89% members, 10% guests) and the roster those imply, settled by the domain's own roster.settle.
Then it serves the database with a real
`python -m app serve --log-format json`, signs in to the console as a browser would (GET /, then the form's
POST with its csrf field), and asks, one request at a time on one keep-alive connection, in turn:

- the first page:  GET /console/members
- a middle page:   the page halfway through the roster, reached by following the pages' own "next" links
                   (the link is what is timed, as a person clicking through would send it)
- searches:        GET /console/members?q=...   a term that matches one person, none, a few hundred, thousands
                   (and that one's next page), each also with ?role=
- a role filter:   GET /console/members?role=admin, and ?role=guest

Each request carries its own X-Request-Id; its time is the server's own measure, the duration_ms of its line in
the request log (from the request's arrival to the answer's being ready, rendering included). The client's round
trip is shown beside it. Reports the median and p95 of each against the 100 ms goal; exits 1 if a median misses it.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import html
import http.client
import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from pathlib import Path

from app.domain import roster
from app.domain.clock import utc_now
from app.domain.directory import new_id
from app.domain.roles import RoleRules
from app.domain.tokens import create_token
from app.protocol.resource_loading import load_resource
from app.protocol.schema_defs import GROUP_RESOURCE, USER_RESOURCE
from app.storage.factory import open_storage
from app.storage.interface import Transaction

ROOT = Path(__file__).resolve().parent.parent
GOAL_MS = 100.0
ROLE_GROUPS = (("rollcall-administrators", 0.01), ("rollcall-guests", 0.10), ("rollcall-members", 1.0))
GIVEN = ("Ada", "Ben", "Cleo", "Dana", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jo", "Kai", "Lea", "Milo", "Nils")
FAMILY = ("Lovelace", "Okafor", "Martin", "Scott", "Novak", "Wong", "Berg", "Sato", "Petrov", "Adams", "Rossi")
SEARCH = "Petrov-04"  # one family-name variant below: 1 in 11 x 100 people, a few hundred of 100,000
COMMON = "petrov"  # 1 in 11: thousands
RARE = "077777"  # one person's number in their userName and e-mail (of 100,000 or more)
NOBODY = "nobody-at-all"  # matches no one: the whole roster is looked through


async def seed(db_path: Path | str, users: int) -> str:
    """N users, the three role groups and the roster in one transaction; returns an admin token."""
    template = load_resource(USER_RESOURCE, {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "template",
        "name": {"givenName": "Bench", "familyName": "User"}, "displayName": "Bench User", "active": True,
        "emails": [{"value": "template@example.com", "type": "work", "primary": True}],
    })

    def insert_all(tx: Transaction) -> None:
        now = utc_now()
        ids = []
        for i in range(users):
            document = copy.deepcopy(template)
            given, family = GIVEN[i % len(GIVEN)], f"{FAMILY[i % len(FAMILY)]}-{i % 100:02d}"
            document["userName"] = f"{given.lower()}.{family.lower()}.{i:06d}@example.com"
            document["name"] = {"givenName": given, "familyName": family}
            document["displayName"] = f"{given} {family}"
            document["emails"][0]["value"] = document["userName"]
            ids.append(tx.resources.insert(USER_RESOURCE, new_id(), document, now).id)
        start = 0
        for name, share in ROLE_GROUPS:
            end = users if share == 1.0 else start + max(1, int(users * share))
            group_id = new_id()
            tx.resources.insert(GROUP_RESOURCE, group_id, load_resource(GROUP_RESOURCE, {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name}), now)
            tx.members.add(group_id, ids[start:end], now)
            start = end
        roster.settle(tx, RoleRules(), ids, actor="bench", now=now)

    db = open_storage(str(db_path))
    await db.open()
    try:
        await db.write(insert_all)
        return await create_token(db, "bench", ("admin",))
    finally:
        await db.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(db_path: Path | str, port: int, log: Path) -> Iterator[None]:
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "app", "serve", "--db", str(db_path), "--host",
                                    "127.0.0.1", "--port", str(port), "--log-format", "json"],
                                   cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120  # a first start may reconcile the whole roster
            while True:
                try:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    connection.request("GET", "/healthz")
                    if connection.getresponse().status == 200:
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the server did not start; its log:\n{log.read_text()[-2000:]}") from None
                    time.sleep(0.1)
            yield
        finally:
            process.terminate()
            process.wait(timeout=30)


class Browser:
    """One keep-alive connection with a cookie jar: the console as a browser (with no JavaScript) asks for it."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.cookies: dict[str, str] = {}
        self.asked = 0

    def request(self, method: str, path: str, body: dict[str, str] | None = None,
                request_id: str | None = None) -> tuple[int, str, dict[str, str], float]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        if request_id:
            headers["X-Request-Id"] = request_id
        data = urllib.parse.urlencode(body).encode() if body is not None else None
        if data is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        began = time.perf_counter()
        self.connection.request(method, path, body=data, headers=headers)
        answer = self.connection.getresponse()
        text = answer.read().decode()
        elapsed = (time.perf_counter() - began) * 1000
        for value in answer.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(value).items():
                self.cookies[name] = morsel.value
        return answer.status, text, dict(answer.headers), elapsed

    def sign_in(self, token: str) -> None:
        status, page, _, _ = self.request("GET", "/")
        csrf = hidden(page, "csrf")
        status, page, _, _ = self.request("POST", "/console/sign-in", {"token": token, "csrf": csrf})
        if status != 303 or "rollcall_session" not in self.cookies:
            raise RuntimeError(f"signing in failed: {status} {page[:500]}")

    def members(self, path: str, label: str) -> tuple[str, str, float]:
        """The page's HTML, the X-Request-Id it was asked with, and the client's round trip in ms."""
        self.asked += 1
        request_id = f"bench-{label}-{self.asked}"
        status, page, _, elapsed = self.request("GET", path, request_id=request_id)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {page[:500]}")
        return page, request_id, elapsed


def hidden(page: str, name: str) -> str:
    for tag in re.findall(r"<input\b[^>]*>", page):
        if re.search(rf'\bname="{name}"', tag) and (value := re.search(r'\bvalue="([^"]*)"', tag)):
            return html.unescape(value.group(1))
    raise RuntimeError(f"no hidden field {name!r} in the sign-in page")


def next_link(page: str) -> str | None:
    """The href of the page's link to the next page (rel="next"), as the browser would follow it."""
    for tag in re.findall(r"<a\b[^>]*>", page):
        if re.search(r'\brel="[^"]*\bnext\b', tag) and (href := re.search(r'\bhref="([^"]*)"', tag)):
            return html.unescape(href.group(1))
    return None


def rows(page: str) -> int:
    return len(re.findall(r"<tr\b[^>]*\bdata-user-id=", page))


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def server_times(log: Path) -> dict[str, float]:
    """request id → duration_ms, from the JSON request log."""
    times = {}
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "duration_ms" in entry:
            times[entry["request_id"]] = float(entry["duration_ms"])
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=100_000, help="members to seed (default 100,000)")
    parser.add_argument("--runs", type=int, default=30, help="requests of each kind (default 30)")
    parser.add_argument("--db", help="an empty PostgreSQL database's URL to seed and serve (default: a SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rollcall-bench-console-") as workdir:
        log = Path(workdir) / "server.log"
        db_path: Path | str = args.db or Path(workdir) / "bench.db"
        began = time.perf_counter()
        token = asyncio.run(seed(db_path, args.members))
        print(f"seeded {args.members:,} users, 3 role groups and their roster in {time.perf_counter() - began:.1f} s",
              flush=True)
        port = free_port()
        with serving(db_path, port, log):
            browser = Browser(port)
            browser.sign_in(token)
            first, _, _ = browser.members("/console/members", "walk")
            per_page = rows(first)
            if per_page == 0:
                raise RuntimeError("the members page lists nobody")
            middle, page, walked = "/console/members", first, 0
            walk_began = time.perf_counter()
            while walked < args.members // per_page // 2 and (link := next_link(page)):
                middle = link
                page, _, _ = browser.members(link, "walk")
                walked += 1
            print(f"{per_page} members a page; walked {walked} pages by their next links to the middle in "
                  f"{time.perf_counter() - walk_began:.1f} s", flush=True)
            common = f"/console/members?q={COMMON}"
            common_next = next_link(browser.members(common, "walk")[0])
            if common_next is None:
                raise RuntimeError(f"the search for {COMMON} has no next page")
            kinds = {
                "first page": "/console/members",
                f"middle page (page {walked + 1})": middle,
                f"search q={SEARCH}": f"/console/members?q={urllib.parse.quote(SEARCH)}",
                f"search q={COMMON}": common,
                f"search q={COMMON}, next page": common_next,
                f"search q={RARE}": f"/console/members?q={RARE}",
                f"search q={NOBODY}": f"/console/members?q={NOBODY}",
                f"q={SEARCH}&role=guest": f"/console/members?q={urllib.parse.quote(SEARCH)}&role=guest",
                f"q={COMMON}&role=member": f"/console/members?q={COMMON}&role=member",
                f"q={RARE}&role=admin": f"/console/members?q={RARE}&role=admin",
                "role filter role=admin": "/console/members?role=admin",
                "role filter role=guest": "/console/members?role=guest",
            }
            asked: dict[str, list[tuple[str, float]]] = {kind: [] for kind in kinds}
            found: dict[str, int] = {}
            for run in range(args.runs):  # in turn, so a busy moment of the shared machine weighs on all alike
                for number, (kind, path) in enumerate(kinds.items()):
                    page, request_id, elapsed = browser.members(path, f"k{number}")
                    asked[kind].append((request_id, elapsed))
                    if run == 0:
                        found[kind] = rows(page)
        measured = server_times(log)
    print(f"\nthe members page at {args.members:,} members, {args.runs} requests each; "
          f"goal: {GOAL_MS:.0f} ms server-side")
    print(f"{'request':36} {'rows':>5} {'server median':>14} {'server p95':>11} {'round trip median':>18}")
    missed = False
    for kind, requests in asked.items():
        server = [measured[request_id] for request_id, _ in requests if request_id in measured]
        if len(server) != len(requests):
            raise RuntimeError(f"the request log lacks {len(requests) - len(server)} of the {kind} requests")
        median = statistics.median(server)
        missed = missed or median > GOAL_MS
        print(f"{kind:36} {found[kind]:>5} {median:>11.1f} ms {p95(server):>8.1f} ms "
              f"{statistics.median(t for _, t in requests):>15.1f} ms {'ok' if median <= GOAL_MS else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
