"""Webhooks over real HTTP: /api/webhooks, and deliveries to a real receiver on loopback that verifies each one
with the standardwebhooks package."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from app.config import Settings
from tests.conftest import USER_SCHEMA, Scim, WebhookReceiver, eventually, free_port, mint_token
from tests.domain.test_roster_lifecycles import ADMINS, GUESTS, MEMBERS, add, jumpcloud_user, remove

# Small backoff, so that a test sees several retries in a second; the defaults are the (1 s .. 1 h).
FAST = {"webhook_backoff_base": 0.05, "webhook_backoff_cap": 0.2}
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
async def token(settings: Settings) -> str:
    """/api/webhooks takes an admin token (README: Tokens and scopes); admin includes the SCIM and roster scopes."""
    return await mint_token(settings.db_path, scopes=("admin",))


@pytest.fixture
async def hooks(scim_with: Callable[..., Awaitable[Scim]]) -> Scim:
    return await scim_with(**FAST)


async def register(scim: Scim, receiver: WebhookReceiver, **fields: Any) -> dict[str, Any]:
    answer = await scim.post("/api/webhooks", {"url": receiver.url, **fields})
    assert answer.status == 201, answer.body
    receiver.secret = answer.body["secret"]
    return answer.body


async def jumpcloud_lifecycle(scim: Scim) -> None:
    """Provisioning, a promotion, a departure from a role group, a deactivation and a deletion, as JumpCloud
    sends them (the steps of tests/domain/test_roster_lifecycles.py)."""
    ann, bob, cat, dan = [await jumpcloud_user(scim, f"{n}@acme.com") for n in ("ann", "bob", "cat", "dan")]
    admins = await scim.create_group(ADMINS, [ann["id"]])
    members = await scim.create_group(MEMBERS, [bob["id"]])
    guests = await scim.create_group(GUESTS, [cat["id"]])
    await add(scim, members, dan)
    await add(scim, admins, bob)  # promoted
    await remove(scim, guests, cat)  # leaves the roster
    await add(scim, members, cat)  # and joins again
    assert (await scim.patch(f"/Users/{dan['id']}", [{"op": "replace", "path": "active", "value": False}])).status \
        == 200
    assert (await scim.delete(f"/Users/{ann['id']}")).status == 204
    await remove(scim, admins, bob, form="filter")  # demoted back to member


async def member_feed(scim: Scim) -> list[dict[str, Any]]:
    answer = await scim.get("/api/events?after=0&limit=1000")
    return [e for e in answer.body["events"] if e["type"].startswith("member.")]


def assert_exactly_the_feed(receiver: WebhookReceiver, feed: list[dict[str, Any]]) -> None:
    assert receiver.unverified == []
    unique = receiver.unique()
    assert [d.headers["webhook-id"] for d in unique] == [f"evt_{e['seq']}" for e in feed]
    for delivery, event in zip(unique, feed, strict=True):
        assert delivery.body == {"type": event["type"], "timestamp": event["time"], "data": event}


async def test_every_member_event_of_a_lifecycle_is_delivered_signed_once_in_order(
        hooks: Scim, receiver: WebhookReceiver) -> None:
    hook = await register(hooks, receiver)
    assert hook["events"] == ["member.*"] and hook["state"] == "active"
    await jumpcloud_lifecycle(hooks)
    feed = await member_feed(hooks)
    assert len(feed) >= 8

    async def all_in() -> bool:
        return len(receiver.unique()) >= len(feed)

    await eventually(all_in, what="every member.* event delivered")
    await asyncio.sleep(0.6)  # a poll more: nothing else (no group.* or user.* event) follows
    assert_exactly_the_feed(receiver, feed)
    assert len(receiver.received) == len(feed), "no repeats without a failure"
    headers = receiver.received[0].headers
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert headers["webhook-signature"].startswith("v1,")


async def test_deliveries_survive_a_receiver_that_fails_for_a_while(hooks: Scim, receiver: WebhookReceiver) -> None:
    receiver.fail_first = 6
    hook = await register(hooks, receiver)
    await jumpcloud_lifecycle(hooks)
    feed = await member_feed(hooks)

    async def all_in() -> bool:
        return len(receiver.unique()) >= len(feed)

    await eventually(all_in, what="every member.* event delivered after the receiver recovered")
    assert receiver.answered_500 == 6
    assert_exactly_the_feed(receiver, feed)
    attempts = (await hooks.get(f"/api/webhooks/{hook['id']}/deliveries")).body["deliveries"]
    assert [a["status"] for a in attempts].count(500) == 6
    assert all(a["latencyMs"] >= 0 and a["webhookId"] == f"evt_{a['seq']}" for a in attempts)
    # The 500s were all for the first event: nothing went out of order while it was retried.
    assert {a["seq"] for a in attempts if a["status"] == 500} == {feed[0]["seq"]}
    listed = (await hooks.get("/api/webhooks")).body["webhooks"]
    assert listed[0]["consecutiveFailures"] == 0 and listed[0]["lastDelivery"]["status"] == 204


async def test_an_endpoint_failing_past_the_retry_window_waits_for_redeliver(
        scim_with: Callable[..., Awaitable[Scim]], receiver: WebhookReceiver) -> None:
    scim = await scim_with(**FAST, webhook_retry_for=0.5)
    receiver.failing = True
    hook = await register(scim, receiver)
    await jumpcloud_lifecycle(scim)
    feed = await member_feed(scim)

    async def failing() -> bool:
        return (await scim.get(f"/api/webhooks/{hook['id']}")).body["state"] == "failing"

    await eventually(failing, what="the endpoint marked failing")
    tried = receiver.answered_500
    await asyncio.sleep(0.8)
    assert receiver.answered_500 == tried, "a failing endpoint is left alone"
    receiver.failing = False
    answer = await scim.post(f"/api/webhooks/{hook['id']}/redeliver", {"from": feed[0]["seq"]})
    assert answer.status == 200 and answer.body["state"] == "active", answer.body

    async def all_in() -> bool:
        return len(receiver.unique()) >= len(feed)

    await eventually(all_in, what="every event delivered after redeliver")
    assert_exactly_the_feed(receiver, feed)


async def test_redeliver_sends_history_again_from_a_seq(hooks: Scim, receiver: WebhookReceiver) -> None:
    await jumpcloud_lifecycle(hooks)  # before the endpoint exists: a new endpoint gets only what comes after
    hook = await register(hooks, receiver)
    await asyncio.sleep(0.8)
    assert receiver.received == []
    feed = await member_feed(hooks)
    assert (await hooks.post(f"/api/webhooks/{hook['id']}/redeliver", {"from": feed[3]["seq"]})).status == 200

    async def all_in() -> bool:
        return len(receiver.unique()) >= len(feed) - 3

    await eventually(all_in, what="events from the given seq sent again")
    assert_exactly_the_feed(receiver, feed[3:])


async def test_a_redirect_is_not_followed(hooks: Scim, aiohttp_server: Any) -> None:
    followed: list[str] = []

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/elsewhere")

    async def elsewhere(request: web.Request) -> web.Response:
        followed.append(request.path)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", moved)
    app.router.add_post("/elsewhere", elsewhere)
    server = await aiohttp_server(app)
    hook = (await hooks.post("/api/webhooks", {"url": str(server.make_url("/hook"))})).body
    await hooks.create_user("ann@acme.com")
    await hooks.create_group(MEMBERS, [(await hooks.get("/Users")).body["Resources"][0]["id"]])

    async def attempted() -> bool:
        return len((await hooks.get(f"/api/webhooks/{hook['id']}/deliveries")).body["deliveries"]) >= 2

    await eventually(attempted, what="two attempts")
    attempts = (await hooks.get(f"/api/webhooks/{hook['id']}/deliveries")).body["deliveries"]
    assert {a["status"] for a in attempts} == {307} and "redirects are not followed" in attempts[0]["error"]
    assert followed == []


async def test_a_hanging_endpoint_delays_neither_scim_nor_another_endpoint(
        scim_with: Callable[..., Awaitable[Scim]], receiver: WebhookReceiver, aiohttp_server: Any) -> None:
    scim = await scim_with(**FAST, webhook_timeout=30.0)
    hanging, released = asyncio.Event(), asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        hanging.set()
        await released.wait()  # far past the end of the test's checks
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hang)
    server = await aiohttp_server(app)
    assert (await scim.post("/api/webhooks", {"url": str(server.make_url("/hook"))})).status == 201
    await register(scim, receiver)
    await jumpcloud_lifecycle(scim)
    await asyncio.wait_for(hanging.wait(), 10)
    started = time.monotonic()
    user = await scim.create_user("late@acme.com")
    await scim.patch(f"/Groups/{(await scim.get('/Groups')).body['Resources'][1]['id']}",
                     [{"op": "add", "path": "members", "value": [{"value": user["id"]}]}])
    assert time.monotonic() - started < 5, "SCIM writes are not held up by a hanging receiver"
    feed = await member_feed(scim)

    async def all_in() -> bool:
        return len(receiver.unique()) >= len(feed)

    try:
        await eventually(all_in, seconds=20, what="the healthy endpoint's deliveries")
        assert_exactly_the_feed(receiver, feed)
    finally:
        released.set()


async def test_an_unreachable_endpoint_never_makes_scim_fail(hooks: Scim) -> None:
    hook = (await hooks.post("/api/webhooks", {"url": f"http://127.0.0.1:{free_port()}/nobody", "events": ["*"]}
                             )).body
    for i in range(5):
        answer = await hooks.post("/Users", {"schemas": [USER_SCHEMA], "userName": f"u{i}@acme.com"})
        assert answer.status == 201

    async def attempted() -> bool:
        return bool((await hooks.get(f"/api/webhooks/{hook['id']}/deliveries")).body["deliveries"])

    await eventually(attempted, what="a failed attempt")
    attempt = (await hooks.get(f"/api/webhooks/{hook['id']}/deliveries")).body["deliveries"][0]
    assert attempt["status"] is None and attempt["error"]


async def test_changes_take_effect_without_a_restart(hooks: Scim, receiver: WebhookReceiver) -> None:
    hook = await register(hooks, receiver, events=["user.created"])
    await hooks.create_user("first@acme.com")

    async def got(count: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return len(receiver.unique()) >= count
        return check

    await eventually(await got(1), what="the first delivery")
    old_secret = receiver.secret
    rotated = await hooks.post(f"/api/webhooks/{hook['id']}/rotate-secret", None)
    assert rotated.status == 200 and rotated.body["secret"] != old_secret
    receiver.secret = rotated.body["secret"]
    await hooks.create_user("second@acme.com")
    await eventually(await got(2), what="a delivery signed with the new secret")
    assert receiver.unverified == []
    assert (await hooks.delete(f"/api/webhooks/{hook['id']}")).status == 204
    await hooks.create_user("third@acme.com")
    await asyncio.sleep(1.2)
    assert [d.body["data"]["userName"] for d in receiver.unique()] == ["first@acme.com", "second@acme.com"]
    assert (await hooks.get("/api/webhooks")).body == {"webhooks": []}


# -- administration over /api/webhooks ----------------------------------------------------------------------------

async def test_the_secret_is_in_the_add_answer_only(hooks: Scim) -> None:
    added = await hooks.post("/api/webhooks", {"url": "https://app.example.com/hooks", "events": ["member.*", "*"],
                                               "description": "the wiki"})
    assert added.status == 201
    secret = added.body["secret"]
    assert secret.startswith("whsec_") and 24 <= len(base64.b64decode(secret[6:])) <= 32
    assert added.body["events"] == ["member.*", "*"] and added.body["description"] == "the wiki"
    for path in ("/api/webhooks", f"/api/webhooks/{added.body['id']}", f"/api/webhooks/{added.body['id']}/deliveries"):
        answer = await hooks.get(path)
        assert answer.status == 200 and secret[6:] not in str(answer.body) and "secret" not in str(answer.body)


@pytest.mark.parametrize(("body", "says"), [
    ({"url": "ftp://files.example.com/in"}, "http:// or https://"),
    ({"url": "javascript:alert(1)"}, "http:// or https://"),
    ({"url": "https://user:pass@app.example.com/hooks"}, "user name or password"),
    ({"url": "https://token@app.example.com/hooks"}, "user name or password"),
    ({"url": "https:///no-host"}, "no valid host"),
    ({"url": "https://app.example.com:99999/"}, "not a valid URL"),
    ({"url": "https://app.example.com/a b"}, "spaces"),
    ({}, "missing"),
    ({"url": 7}, "missing"),
    ({"url": "https://app.example.com/", "events": ["member"]}, "Invalid event pattern"),
    ({"url": "https://app.example.com/", "events": "member.*"}, "list"),
    ({"url": "https://app.example.com/", "events": []}, "list of 1 to"),
    ({"url": "https://app.example.com/", "secret": "mine"}, "Unknown field"),
])
async def test_bad_input_is_refused_with_a_clear_400(hooks: Scim, body: dict[str, Any], says: str) -> None:
    answer = await hooks.post("/api/webhooks", body)
    assert answer.status == 400, answer.body
    assert answer.body["schemas"] == [ERROR_SCHEMA] and answer.body["scimType"] == "invalidValue"
    assert says in answer.body["detail"]
    assert (await hooks.get("/api/webhooks")).body == {"webhooks": []}


async def test_unknown_ids_and_bad_bodies(hooks: Scim) -> None:
    for method, path in (("GET", "/api/webhooks/9"), ("DELETE", "/api/webhooks/9"),
                         ("GET", "/api/webhooks/9/deliveries"), ("POST", "/api/webhooks/9/rotate-secret"),
                         ("GET", "/api/webhooks/x"), ("DELETE", "/api/webhooks/99999999999999999999999")):
        answer = await hooks.request(method, path)
        assert answer.status == 404 and answer.body["schemas"] == [ERROR_SCHEMA], (method, path, answer.body)
    hook = (await hooks.post("/api/webhooks", {"url": "https://app.example.com/"})).body
    for body in ({}, {"from": 0}, {"from": "3"}, {"from": True}, {"from": 2**63}):
        answer = await hooks.post(f"/api/webhooks/{hook['id']}/redeliver", body)
        assert answer.status == 400 and "seq" in answer.body["detail"], (body, answer.body)
    answer = await hooks.request("POST", "/api/webhooks", raw=b"[1]")
    assert answer.status == 400 and answer.body["scimType"] == "invalidSyntax"


async def test_webhooks_need_a_live_token(hooks: Scim) -> None:
    for method, path in (("GET", "/api/webhooks"), ("POST", "/api/webhooks"), ("DELETE", "/api/webhooks/1"),
                         ("GET", "/api/webhooks/1/deliveries"), ("POST", "/api/webhooks/1/redeliver"),
                         ("POST", "/api/webhooks/1/rotate-secret")):
        answer = await hooks.request(method, path, {"url": "https://app.example.com/"}, auth=False)
        assert answer.status == 401, (method, path)


async def test_the_readme_receiver_verifies_and_deduplicates_real_deliveries(
        hooks: Scim, aiohttp_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    snippet = readme.split("**Verify a delivery**", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}

    async def hook(request: web.Request) -> web.Response:
        return await namespace["rollcall_hook"](request)

    app = web.Application()
    app.router.add_post("/hooks/rollcall", hook)
    server = await aiohttp_server(app)
    added = (await hooks.post("/api/webhooks", {"url": str(server.make_url("/hooks/rollcall"))})).body
    exec(snippet.replace('"whsec_..."', repr(added["secret"])), namespace)
    ann = await hooks.create_user("ann@acme.com")
    await hooks.create_group(MEMBERS, [ann["id"]])

    async def delivered() -> bool:
        attempts = (await hooks.get(f"/api/webhooks/{added['id']}/deliveries")).body["deliveries"]
        return any(a["status"] == 204 for a in attempts)

    await eventually(delivered, what="the README receiver's 204")
    assert (await hooks.post(f"/api/webhooks/{added['id']}/redeliver", {"from": 1})).status == 200

    async def twice() -> bool:
        attempts = (await hooks.get(f"/api/webhooks/{added['id']}/deliveries")).body["deliveries"]
        return [a["status"] for a in attempts] == [204, 204]

    await eventually(twice, what="the redelivery answered 204")
    assert capsys.readouterr().out.splitlines() == ["member.joined ann@acme.com"]  # the repeat was dropped


async def test_redeliver_cuts_a_long_backoff_short(scim_with: Callable[..., Awaitable[Scim]],
                                                   receiver: WebhookReceiver) -> None:
    scim = await scim_with(webhook_backoff_base=600.0, webhook_backoff_cap=600.0)  # the next try in 5-10 minutes
    receiver.fail_first = 1
    hook = await register(scim, receiver)
    ann = await scim.create_user("ann@acme.com")
    await scim.create_group(MEMBERS, [ann["id"]])

    async def failed_once() -> bool:
        return receiver.answered_500 == 1

    await eventually(failed_once, what="the first attempt answered 500")
    feed = await member_feed(scim)
    assert (await scim.post(f"/api/webhooks/{hook['id']}/redeliver", {"from": feed[0]["seq"]})).status == 200

    async def delivered() -> bool:
        return len(receiver.unique()) == 1

    await eventually(delivered, seconds=10, what="the redelivery, long before the backoff ends")
    assert_exactly_the_feed(receiver, feed)


async def test_two_instances_on_one_postgresql_database_deliver_each_event_once_in_order(
        aiohttp_client: Any, postgres_url: str, receiver: WebhookReceiver) -> None:
    # Both run a webhook worker on the same endpoints: one at a time may deliver an endpoint's events (its claim).
    from app.web.app import init_app

    settings = Settings(db_path=postgres_url, **FAST)  # type: ignore[arg-type]
    token = await mint_token(postgres_url, scopes=("admin",))
    one = Scim(await aiohttp_client(init_app(settings)), token)
    two = Scim(await aiohttp_client(init_app(settings)), token)
    await register(one, receiver)
    await jumpcloud_lifecycle(two)
    await jumpcloud_lifecycle_elsewhere(one)
    feed = await member_feed(one)

    async def all_in() -> bool:
        return len(receiver.unique()) >= len(feed)

    await eventually(all_in, what="every member.* event delivered")
    await asyncio.sleep(1.5)  # polls more on both: a second deliverer would repeat events now
    assert_exactly_the_feed(receiver, feed)
    assert len(receiver.received) == len(feed), "an event was delivered twice: two instances delivered at once"


async def jumpcloud_lifecycle_elsewhere(scim: Scim) -> None:
    """More changes, through the other instance, with names of their own."""
    eve = await jumpcloud_user(scim, "eve@acme.com")
    group = await scim.create_group("rollcall-members-2", [eve["id"]])
    assert (await scim.delete(f"/Groups/{group['id']}")).status == 204
