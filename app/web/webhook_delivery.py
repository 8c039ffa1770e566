"""The webhook worker: one asyncio task per endpoint, each sending its events one at a time, in seq order.

Everything it knows comes from the database, re-read on every turn. A supervisor makes one small read per poll (the
endpoints' ids and revisions, the newest seq) and wakes the idle tasks when it changes, so an endpoint added,
removed, rewound or given a new secret by `rollcall webhook ...` (another process) or /api/webhooks, and a new
event, take effect within a poll interval, without a restart and without a query per endpoint per poll. A restart
carries on from each endpoint's cursor and retry time (app/domain/webhooks.py says why a cursor over the events
table is the outbox). A slow or failing endpoint holds up only its own task: a SCIM request never waits for a
delivery, and an unreachable receiver is only ever a failed attempt in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from app.domain import webhooks
from app.domain.clock import utc_now
from app.storage.interface import Storage
from app.storage.records import Attempt, Endpoint
from app.web.keys import DATABASE, SETTINGS

log = logging.getLogger("rollcall.webhooks")

# How often the supervisor looks for new events and for endpoints added, changed or removed.
POLL_INTERVAL = 0.5
# How long an idle task waits before it looks again by itself, when the supervisor has not woken it.
IDLE_RECHECK = 30.0
# How often an instance that another one's claim keeps from an endpoint looks again (to take over if it stops).
CLAIM_RECHECK = 2.0
# Events read per query while catching up; each is still sent alone.
EVENT_BATCH = 100
_USER_AGENT = "rollcall-webhooks"


class Worker:
    def __init__(self, db: Storage, session: aiohttp.ClientSession, policy: webhooks.RetryPolicy,
                 poll_interval: float = POLL_INTERVAL) -> None:
        self.db = db
        self.session = session
        self.policy = policy
        self.poll_interval = poll_interval
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self._changed = asyncio.Event()

    async def supervise(self) -> None:
        """On every poll, one small read: start a task for each new endpoint, stop those of removed ones, and wake
        the idle ones when anything they depend on changed (a new event, an admin's change to an endpoint)."""
        seen: tuple[int, int] | None = None
        news: tuple[int, int] | None
        try:
            while True:
                try:
                    present, news = await webhooks.survey(self.db)
                except Exception:
                    log.exception("could not read the webhook endpoints; trying again")
                    present, news = set(self.tasks), seen
                for webhook_id in present - set(self.tasks):
                    self.tasks[webhook_id] = asyncio.create_task(self._endpoint(webhook_id))
                for webhook_id in set(self.tasks) - present:
                    self.tasks.pop(webhook_id).cancel()
                for webhook_id, task in list(self.tasks.items()):
                    if task.done():  # it found its endpoint gone; a new one with the id gets a new task
                        del self.tasks[webhook_id]
                if news != seen:
                    seen = news
                    self._wake()
                await asyncio.sleep(self.poll_interval)
        finally:
            for task in self.tasks.values():
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    def _wake(self) -> None:
        woken, self._changed = self._changed, asyncio.Event()
        woken.set()

    async def _endpoint(self, webhook_id: int) -> None:
        try:
            await self._serve_endpoint(webhook_id)
        finally:
            # Let another instance on the same database take the endpoint over (PostgreSQL; a no-op on SQLite).
            with contextlib.suppress(Exception):
                await asyncio.shield(self.db.release_endpoint(webhook_id))

    async def _serve_endpoint(self, webhook_id: int) -> None:
        while True:
            changed = self._changed  # taken before the turn: a change seen during it is not missed
            try:
                wait = await self._turn(webhook_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook %d: unexpected error; trying again", webhook_id)
                wait = self.poll_interval
            if wait is None:
                return
            if wait > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), wait)

    async def _turn(self, webhook_id: int) -> float | None:
        """Deliver the next matching event, if one is due; the seconds to wait before the next turn (None: the
        endpoint is gone)."""
        endpoint = await webhooks.endpoint(self.db, webhook_id)
        if endpoint is None:
            return None
        if endpoint.state == "failing":
            return IDLE_RECHECK  # until an admin's redeliver makes it active (and wakes the task)
        if endpoint.retry_at is not None and endpoint.retry_at > time.time():
            # A redeliver or removal wakes the task: it need not wait out an hour's backoff.
            return min(IDLE_RECHECK, endpoint.retry_at - time.time())
        events = await webhooks.pending_events(self.db, endpoint, EVENT_BATCH)
        due = next((e for e in events if webhooks.matches(endpoint.patterns, e["type"])), None)
        if due is None:
            if events:
                await webhooks.skip_to(self.db, endpoint, events[-1]["seq"])
                return 0
            return IDLE_RECHECK
        # Several instances may share the database: one at a time delivers an endpoint's events, so they go in order.
        # Asked before every delivery, so that an instance that lost its claim stops, and the others take over.
        if not await self.db.claim_endpoint(webhook_id):
            return CLAIM_RECHECK
        await self._deliver(endpoint, due)
        return 0

    async def _deliver(self, endpoint: Endpoint, event: dict[str, Any]) -> None:
        seq = int(event["seq"])
        body = webhooks.payload(event)
        headers = webhooks.signed_headers(endpoint.secret, seq, body, int(time.time()))
        headers["User-Agent"] = _USER_AGENT
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            async with self.session.post(endpoint.url, data=body, headers=headers, allow_redirects=False) as answer:
                status = answer.status
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as failure:
            error = _describe(failure)
        latency_ms = round((time.monotonic() - started) * 1000)
        delivered = status is not None and 200 <= status < 300
        if status is not None and not delivered:
            error = f"answered {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
        attempt = Attempt(seq, utc_now(), status, latency_ms, error)
        now = time.time()
        failing_since = None if delivered else (endpoint.failing_since or now)
        failing = not delivered and now - (failing_since or now) >= self.policy.retry_for
        backoff = self.policy.delay(endpoint.consecutive_failures + 1)
        retry_at = None if delivered else now + backoff
        if not delivered:
            log.warning("webhook %d: delivery of event %d failed (%s); %s", endpoint.id, seq, error,
                        "marked failing: `rollcall webhook redeliver` resumes it" if failing
                        else f"retrying in {backoff:.1f} s")
        await webhooks.record_attempt(self.db, endpoint, attempt, delivered=delivered, retry_at=retry_at,
                                      failing_since=failing_since, failing=failing)


def _describe(failure: BaseException) -> str:
    if isinstance(failure, asyncio.TimeoutError):
        return "no answer within the timeout (--webhook-timeout)"
    return f"{type(failure).__name__}: {failure}"[:300]


async def webhook_worker(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: runs the worker for the life of the app (after the database opens, stopped before it closes)."""
    settings = app[SETTINGS]
    policy = webhooks.RetryPolicy(settings.webhook_backoff_base, settings.webhook_backoff_cap,
                                  settings.webhook_retry_for)
    timeout = aiohttp.ClientTimeout(total=settings.webhook_timeout)
    # trust_env=False: no proxy from the environment; cookies are never kept between deliveries.
    async with aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar(),
                                     trust_env=False) as session:
        supervisor = asyncio.create_task(Worker(app[DATABASE], session, policy).supervise())
        try:
            yield
        finally:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
