"""Nothing is lost: `rollcall serve` killed with SIGKILL in the middle of a burst of role changes, and restarted,
still sends a real receiver (which verifies every delivery with the standardwebhooks package) every member.*
event exactly once after de-duplication by webhook-id, in seq order; also when the receiver fails for a while first.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.conftest import GROUP_SCHEMA, PATCH_OP, USER_SCHEMA, WebhookReceiver, eventually
from tests.reliability.conftest import ServedDatabase, cli

FAST = ("--webhook-backoff-base", "0.05", "--webhook-backoff-cap", "0.5")
WRITERS = 6
# A bound on the burst; it is normally stopped by the kill long before.
MAX_USERS_PER_WRITER = 60
USERS_AFTER_RESTART = 6
ROLE_GROUPS = ("rollcall-administrators", "rollcall-members", "rollcall-guests")


async def _json(session: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    async with session.request(method, url, json=body) as answer:
        text = await answer.text()
        return answer.status, (None if not text else await answer.json(content_type=None))


async def _writer(session: aiohttp.ClientSession, base: str, groups: dict[str, str], number: int,
                  acknowledged: list[int], users: int, stop: asyncio.Event | None = None) -> None:
    """Each user joins as a guest, is promoted to member, then to administrator: three member.* events each."""
    for i in range(users):
        if stop is not None and stop.is_set():
            return
        status, user = await _json(session, "POST", f"{base}/Users",
                                   {"schemas": [USER_SCHEMA], "userName": f"w{number}-{i}@acme.com"})
        assert status == 201, user
        acknowledged.append(1)
        for name in ROLE_GROUPS[::-1]:
            status, body = await _json(session, "PATCH", f"{base}/Groups/{groups[name]}", {
                "schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members",
                                                       "value": [{"value": user["id"]}]}]})
            assert status == 200, body
            acknowledged.append(1)


async def _member_feed(session: aiohttp.ClientSession, origin: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        status, page = await _json(session, "GET", f"{origin}/api/events?after={after}&limit=1000")
        assert status == 200
        events += page["events"]
        if not page["events"]:
            return [e for e in events if e["type"].startswith("member.")]
        after = page["next"]


@pytest.mark.parametrize("fail_first", [0, 15], ids=["receiver-up", "receiver-fails-first"])
async def test_every_member_event_arrives_once_in_order_across_a_sigkill(
        served_database: ServedDatabase, receiver: WebhookReceiver, fail_first: int) -> None:
    served = served_database
    served.server.extra = FAST
    receiver.fail_first = fail_first
    receiver.delay = 0.01  # a receiver slower than the burst: deliveries are still pending at the kill
    served.server.start()
    # Added by another process while the server runs: it takes effect without a restart.
    added = await asyncio.to_thread(cli, "webhook", "add", "--url", receiver.url, "--db", str(served.db_path))
    receiver.secret = added.stdout.strip().splitlines()[-1]
    assert receiver.secret.startswith("whsec_")

    # The burst and the reads of /api/webhooks with one token: admin covers the SCIM side too.
    admin = await asyncio.to_thread(cli, "token", "create", "--name", "hooks-admin", "--scope", "admin", "--db",
                                    str(served.db_path))
    headers = {"Authorization": f"Bearer {admin.stdout.strip().splitlines()[-1]}"}
    base = served.server.base_url
    acknowledged: list[int] = []
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as session:
        groups = {}
        for name in ROLE_GROUPS:
            status, body = await _json(session, "POST", f"{base}/Groups", {"schemas": [GROUP_SCHEMA],
                                                                           "displayName": name})
            assert status == 201, body
            groups[name] = body["id"]
        stop = asyncio.Event()
        writers = [asyncio.create_task(_writer(session, base, groups, n, acknowledged, MAX_USERS_PER_WRITER, stop))
                   for n in range(WRITERS)]
        deadline = time.monotonic() + 60

        def mid_delivery() -> bool:  # some attempts made (delivered, or answered 500), and the burst not over
            return (receiver.answered_500 if fail_first else len(receiver.received)) >= 3 and len(acknowledged) >= 100

        while not mid_delivery() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        delivered_at_kill = len(receiver.unique())
        burst_running = not all(w.done() for w in writers)
        served.server.kill()  # mid-burst: writers are still sending, deliveries still pending
        stop.set()
        await asyncio.gather(*writers, return_exceptions=True)
    assert burst_running, "the kill came in the middle of the burst"
    assert not any(not w.cancelled() and isinstance(w.exception(), AssertionError) for w in writers)

    served.server.start()  # the same file
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as session:
        # The burst goes on after the restart; then the feed is what the receiver must end up with.
        await asyncio.gather(*(_writer(session, base, groups, WRITERS + n, acknowledged, USERS_AFTER_RESTART)
                               for n in range(2)))
        feed = await _member_feed(session, served.server.origin)

        async def all_in() -> bool:
            return len(receiver.unique()) >= len(feed)

        await eventually(all_in, seconds=90, what="every member.* event delivered after the restart")
        await asyncio.sleep(1)  # a poll or two more: no stray event follows
        status, listed = await _json(session, "GET", f"{served.server.origin}/api/webhooks")
    assert status == 200 and listed["webhooks"][0]["consecutiveFailures"] == 0

    assert receiver.unverified == []
    assert delivered_at_kill < len(feed), "the kill came while deliveries were pending"
    unique = receiver.unique()
    assert [d.headers["webhook-id"] for d in unique] == [f"evt_{e['seq']}" for e in feed]
    for delivery, event in zip(unique, feed, strict=True):
        assert delivery.body == {"type": event["type"], "timestamp": event["time"], "data": event}
    if fail_first:
        assert receiver.answered_500 == fail_first
    print(f"\n[webhooks] {len(feed)} member.* events, {delivered_at_kill} delivered at SIGKILL, "
          f"{len(receiver.received)} deliveries in all ({len(receiver.received) - len(unique)} repeats), "
          f"{receiver.answered_500} answered 500 first: every event once after de-duplication, in seq order")
