"""Creating users in one Bulk request against one POST /Users each (RFC 7644 §3.7), on a real `rollcall serve`.

    .venv/bin/python bench/bulk.py               # 1,000 users each way
    .venv/bin/python bench/bulk.py --users 500

Each way runs against its own `rollcall serve` subprocess on a fresh database (a temporary directory, a free
loopback port). The single POSTs are sent one after another over one keep-alive connection, each waiting for its
answer (so each is committed before the next is sent); the Bulk request carries the same users in one body.
It prints both times and exits 1 unless the Bulk request was faster. See bench/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def user(number: int) -> dict[str, Any]:
    """A User as an identity provider sends one (about 400 bytes)."""
    name = f"user{number:05d}"
    return {"schemas": [USER_SCHEMA], "userName": f"{name}@example.com", "active": True, "displayName": name,
            "name": {"givenName": "User", "familyName": f"{number:05d}"}, "externalId": f"ext-{number}",
            "emails": [{"value": f"{name}@example.com", "type": "work", "primary": True}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def rollcall(directory: Path, *extra: str) -> Iterator[tuple[int, str]]:
    """`rollcall serve` on a fresh database in `directory`: yields (port, token)."""
    db = directory / "bench.db"
    created = subprocess.run([PYTHON, "-m", "app", "token", "create", "--name", "bench", "--db", str(db)],
                             cwd=ROOT, capture_output=True, text=True, check=True)
    token = created.stdout.strip().splitlines()[-1]
    port = free_port()
    with open(directory / "rollcall.log", "wb") as log:
        process = subprocess.Popen([PYTHON, "-m", "app", "serve", "--db", str(db), "--port", str(port), *extra],
                                   cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log_text = (directory / 'rollcall.log').read_text()
                    raise RuntimeError(f"rollcall serve did not start: {log_text}") from None
                time.sleep(0.05)
        yield port, token
    finally:
        process.terminate()
        process.wait(timeout=10)


def send(conn: http.client.HTTPConnection, token: str, path: str, body: Any) -> tuple[int, Any]:
    conn.request("POST", f"/scim/v2{path}", body=json.dumps(body).encode(),
                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"})
    answer = conn.getresponse()
    return answer.status, json.loads(answer.read() or b"null")


def count_users(conn: http.client.HTTPConnection, token: str) -> int:
    conn.request("GET", "/scim/v2/Users?count=0", headers={"Authorization": f"Bearer {token}"})
    return json.loads(conn.getresponse().read())["totalResults"]


def single_posts(users: list[dict[str, Any]], port: int, token: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port)  # one connection, kept alive for every request
    started = time.perf_counter()
    for body in users:
        status, answer = send(conn, token, "/Users", body)
        if status != 201:
            raise RuntimeError(f"POST /Users answered {status}: {answer}")
    seconds = time.perf_counter() - started
    assert count_users(conn, token) == len(users)
    conn.close()
    return seconds


def one_bulk(users: list[dict[str, Any]], port: int, token: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    body = {"schemas": [BULK_REQUEST], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": data} for i, data in enumerate(users)]}
    started = time.perf_counter()
    status, answer = send(conn, token, "/Bulk", body)
    seconds = time.perf_counter() - started
    if status != 200 or {op["status"] for op in answer["Operations"]} != {"201"}:
        raise RuntimeError(f"POST /Bulk answered {status}: {str(answer)[:500]}")
    assert count_users(conn, token) == len(users)
    conn.close()
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1000, help="users to create each way (default 1000)")
    args = parser.parse_args(argv)
    users = [user(i) for i in range(args.users)]
    payload = len(json.dumps({"Operations": users}))
    # The Bulk body must fit maxPayloadSize; give the server room for it whatever --users is.
    room = ("--bulk-max-payload-bytes", str(max(1024 * 1024, 2 * payload)),
            "--bulk-max-operations", str(max(1000, args.users)))
    with tempfile.TemporaryDirectory(prefix="rollcall-bulk-") as tmp:
        (Path(tmp) / "single").mkdir()
        (Path(tmp) / "bulk").mkdir()
        with rollcall(Path(tmp) / "single", *room) as (port, token):
            single = single_posts(users, port, token)
        with rollcall(Path(tmp) / "bulk", *room) as (port, token):
            bulk = one_bulk(users, port, token)
    load = os.getloadavg()[0]
    print(f"{args.users:,} users, fresh database each way, rollcall serve on loopback (load average {load:.2f})")
    print("| way | seconds | users/s |")
    print("|---|---:|---:|")
    print(f"| {args.users:,} single POST /Users, sequential over one keep-alive connection | {single:.2f} | "
          f"{args.users / single:,.0f} |")
    print(f"| one POST /Bulk with {args.users:,} POST operations ({payload / 1024:,.0f} KiB) | {bulk:.2f} | "
          f"{args.users / bulk:,.0f} |")
    faster = bulk < single
    print(f"{'PASS' if faster else 'FAIL'}: Bulk is {single / bulk:.1f}x as fast as single POSTs")
    return 0 if faster else 1


if __name__ == "__main__":
    sys.exit(main())
