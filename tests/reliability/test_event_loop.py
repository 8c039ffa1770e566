"""Issue 9, finding 7: scans and heavy validation never run on the event loop.

While 8 clients keep a real `rollcall serve` busy with requests that are expensive to answer (a filter that
walks 20,000 users, User bodies of ~60 KB made of many small values), /healthz keeps answering quickly:
the work runs on reader or worker threads, and the loop only hands it over.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import itertools
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from app.domain.clock import utc_now
from app.domain.directory import new_id
from app.protocol.schema_defs import USER_RESOURCE
from app.storage.factory import open_storage
from tests.conftest import USER_SCHEMA, RunningServer, serve_process

pytestmark = pytest.mark.engines("sqlite", reason="the HTTP layer's event loop under load, timed on one engine")

CLIENTS = 8
SEEDED_USERS = 20_000
LOAD_SECONDS = 4
# Generous: an idle server answers /healthz in about a millisecond; the unfixed one stalled for 0.65-3.3 s.
# Held by the 95th percentile of the probes, not the slowest: on two cores shared with the eight clients, the
# scheduler alone can delay one probe by a couple of hundred milliseconds now and then, while a loop that does
# the work itself delays most of them. Between the two: with compressed Bulk bodies the validator thread holds
# the GIL for a switch interval at a time, and on a slow moment of this host the fixed code's 95th percentile
# reached 220-360 ms (4 runs of the same commit, 2026-12-02), where it had been well under 200.
HEALTHZ_LIMIT_S = 0.45
PERCENTILE = 0.95


async def seed_users(db_path: str, count: int) -> None:
    """Users written straight through the storage layer (20,000 POSTs would take most of a minute)."""
    db = open_storage(db_path)
    await db.open()
    now = utc_now()

    def insert_all(tx):  # type: ignore[no-untyped-def]
        for i in range(count):
            # Every user has the same externalId (an import batch's, say): `externalId eq null` matches none and
            # must walk them all, and `externalId eq "imported"` is indexed but matches every one of them.
            document = {"userName": f"seeded{i:05d}@acme.com", "externalId": "imported", "title": "t" * 400,
                        "emails": [{"value": f"seeded{i:05d}@acme.com", "type": "work"}]}
            tx.resources.insert(USER_RESOURCE, new_id(), document, now)

    try:
        await db.write(insert_all)
    finally:
        await db.close()


def connection(server: RunningServer) -> tuple[http.client.HTTPConnection, str]:
    url = urlsplit(server.base_url)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=30), url.path


def hammer(server: RunningServer, stop: threading.Event, send: Callable[[http.client.HTTPConnection, str], None],
           errors: list[str]) -> None:
    conn, prefix = connection(server)
    try:
        while not stop.is_set():
            send(conn, prefix)
            response = conn.getresponse()
            response.read()
            if response.status >= 500:
                errors.append(f"{response.status}")
    except OSError as error:  # pragma: no cover - reported by the assertion below
        errors.append(repr(error))
    finally:
        conn.close()


def healthz_under(server: RunningServer, send: Callable[[http.client.HTTPConnection, str], None]) -> list[float]:
    """The times of the /healthz answers asked for while CLIENTS clients run `send` in a loop, fastest first."""
    stop = threading.Event()
    errors: list[str] = []
    workers = [threading.Thread(target=hammer, args=(server, stop, send, errors)) for _ in range(CLIENTS)]
    for worker in workers:
        worker.start()
    url = urlsplit(server.base_url)
    times: list[float] = []
    try:
        time.sleep(0.5)  # let every client get a request in flight
        deadline = time.monotonic() + LOAD_SECONDS
        while time.monotonic() < deadline:
            probe = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
            started = time.monotonic()
            probe.request("GET", "/healthz")
            response = probe.getresponse()
            response.read()
            times.append(time.monotonic() - started)
            probe.close()
            assert response.status == 200
            time.sleep(0.02)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
    assert not errors, errors[:5]
    return sorted(times)


def assert_loop_free(times: list[float], load: str) -> None:
    typical = times[int(PERCENTILE * (len(times) - 1))]
    print(f"/healthz under {load}: {len(times)} probes, 95th percentile {typical * 1000:.0f} ms, "
          f"slowest {times[-1] * 1000:.0f} ms")
    assert typical < HEALTHZ_LIMIT_S, f"/healthz took {typical * 1000:.0f} ms (95th percentile) under {load}"


def test_healthz_answers_while_clients_send_filters_that_scan(tmp_path: Path) -> None:
    asyncio.run(seed_users(str(tmp_path / "served.db"), SEEDED_USERS))
    with serve_process(tmp_path) as server:
        # The review's filter, and an equality on an index that is not unique (the unfixed code answered both
        # on the loop, taking any `eq` on externalId for a point read).
        paths = itertools.cycle(["/Users?filter=" + quote(text) for text in
                                 ("externalId eq null", 'externalId eq "imported" and title co "nomatch"')])

        def send(conn: http.client.HTTPConnection, prefix: str) -> None:
            conn.request("GET", prefix + next(paths), headers={"Authorization": f"Bearer {server.token}"})

        times = healthz_under(server, send)
    assert_loop_free(times, f"{CLIENTS} clients scanning")


def test_healthz_answers_while_clients_post_large_user_bodies(tmp_path: Path) -> None:
    with serve_process(tmp_path) as server:
        counter = iter(range(10**9))

        def send(conn: http.client.HTTPConnection, prefix: str) -> None:
            # ~60 KB of small values, under the 64 KiB resource limit: validation is the expensive part.
            n = next(counter)
            body = {"schemas": [USER_SCHEMA], "userName": f"big{n}",
                    "emails": [{"value": f"e{i}@acme.com", "type": "work"} for i in range(700)],
                    "phoneNumbers": [{"value": f"+1 555 {i:04d}", "type": "work"} for i in range(700)]}
            conn.request("POST", prefix + "/Users", body=json.dumps(body).encode(),
                         headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/scim+json"})

        times = healthz_under(server, send)
    assert_loop_free(times, f"{CLIENTS} clients posting large bodies")


def test_healthz_answers_while_clients_post_compressed_bulk_requests(tmp_path: Path) -> None:
    # A Bulk body is validated off the loop by its size once decoded: gzip turns ~700 KB of User bodies made
    # of repeated values into under 4 KiB on the wire, which the unfixed code took for a small body (its
    # compressed length) and validated on the loop, stalling /healthz for most of a second per request.
    user = {"schemas": [USER_SCHEMA], "userName": "bulk-user",
            "emails": [{"value": "e@acme.com", "type": "work"}] * 700,
            "phoneNumbers": [{"value": "+1 555 0000", "type": "work"}] * 700}
    bulk = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [{"method": "POST", "path": "/Users", "data": user}] * 12}
    compressed = gzip.compress(json.dumps(bulk, separators=(",", ":")).encode(), 9)
    assert len(compressed) < 4096  # small on the wire: only the decoded size shows the work
    with serve_process(tmp_path) as server:
        def send(conn: http.client.HTTPConnection, prefix: str) -> None:
            conn.request("POST", prefix + "/Bulk", body=compressed,
                         headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/scim+json",
                                  "Content-Encoding": "gzip"})

        times = healthz_under(server, send)
    assert_loop_free(times, f"{CLIENTS} clients posting compressed Bulk requests")


def test_healthz_answers_while_clients_read_one_user_through_heavy_value_filters(tmp_path: Path) -> None:
    # A value filter in attributes may cost up to 1,000,000 comparisons per resource answered (about half a
    # second): the unfixed code projected a resource read by id (or by a point read) on the loop, so 8 such
    # clients left /healthz 2 answers in 4 seconds (slowest 6.4 s).
    with serve_process(tmp_path) as server:
        conn, prefix = connection(server)
        headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/scim+json"}
        user = {"schemas": [USER_SCHEMA], "userName": "many-emails",
                "emails": [{"value": f"e{i}@acme.com", "type": "work"} for i in range(1000)]}
        conn.request("POST", prefix + "/Users", body=json.dumps(user).encode(), headers=headers)
        created = conn.getresponse()
        user_id = json.loads(created.read())["id"]
        conn.close()
        heavy = quote("emails[" + " or ".join(['value eq "z"'] * 235) + "]")
        by_name = quote('userName eq "many-emails"')
        paths = itertools.cycle([f"/Users/{user_id}?attributes={heavy}", f"/Users?filter={by_name}&attributes={heavy}"])

        def send(conn: http.client.HTTPConnection, prefix: str) -> None:
            conn.request("GET", prefix + next(paths), headers={"Authorization": f"Bearer {server.token}"})

        times = healthz_under(server, send)
    assert_loop_free(times, f"{CLIENTS} clients reading through heavy value filters")
