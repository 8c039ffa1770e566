"""The console's sign-in and sessions over real HTTP: success and failure, cookie flags, no session on failure,
the slowdown, the idle and absolute limits (on a clock moved by hand), sign-out, revocation, login CSRF, and
the one-time sign-in link."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from app.config import Settings
from app.domain import tokens
from app.domain.clock import utc_now
from app.domain.sessions import ABSOLUTE_SECONDS, IDLE_SECONDS, LINK_SECONDS
from app.storage.factory import open_storage
from app.web.app import init_app
from app.web.console.backoff import FREE_FAILURES
from app.web.console.keys import CLOCK, SESSIONS
from tests.conftest import mint_token, read_database
from tests.web.conftest import Console, ManualClock


def _set_cookies(page: Any) -> list[str]:
    return page.headers.getall("Set-Cookie", [])


async def test_a_browser_asking_for_the_root_gets_the_sign_in_form(console: Console) -> None:
    page = await console.get("/")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<label for="token">Admin token</label>' in page.text
    assert '<input type="password" id="token" name="token"' in page.text
    assert 'id="sign-in-error"' not in page.text
    assert 'Admin token' in (await console.get("/console")).text  # the console's own root, too
    # The API still answers JSON to a client without a token.
    api = await console.client.get("/api/members")
    assert api.status == 401 and (await api.json(content_type=None))["status"] == "401"


async def test_an_admin_token_signs_in_with_a_strict_http_only_cookie(console: Console) -> None:
    answer = await console.sign_in()
    assert answer.status == 303 and answer.headers["Location"] == "/console/members"
    [cookie] = [c for c in _set_cookies(answer) if c.startswith("rollcall_session=")]
    flags = [flag.strip().lower() for flag in cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "secure" not in flags  # plain HTTP on loopback: a Secure cookie would never come back
    members = await console.get("/console/members")
    assert members.status == 200 and 'id="no-members"' in members.text  # nobody on the roster yet
    assert (await console.get("/")).headers.get("Location") == "/console/members"


async def test_the_cookie_is_secure_when_the_public_address_is_https(aiohttp_client: Any, settings: Settings
                                                                    ) -> None:
    admin = await mint_token(settings.db_path, "admin", ("admin",))
    client = await aiohttp_client(init_app(replace(settings, base_url="https://rollcall.example.com/scim/v2")))
    form = await client.get("/")
    assert "secure" in [f.strip().lower() for f in form.headers["Set-Cookie"].split(";")]  # the pre-session one
    text = await form.text()
    csrf = text.split('name="csrf" value="')[1].split('"')[0]
    answer = await client.post("/console/sign-in", data={"token": admin, "csrf": csrf}, allow_redirects=False,
                               cookies={"rollcall_sign_in": form.cookies["rollcall_sign_in"].value})
    assert answer.status == 303
    cookie = next(c for c in answer.headers.getall("Set-Cookie") if c.startswith("rollcall_session="))
    assert "secure" in [f.strip().lower() for f in cookie.split(";")]


async def test_the_cookie_is_secure_when_rollcall_serves_tls(aiohttp_client: Any, settings: Settings) -> None:
    # The app is spoken to over plain HTTP here; only the settings say TLS, and the flag follows the settings.
    client = await aiohttp_client(init_app(replace(settings, tls_cert="cert.pem", tls_key="key.pem")))
    form = await client.get("/")
    assert "secure" in [f.strip().lower() for f in form.headers["Set-Cookie"].split(";")]


async def test_a_wrong_token_gets_the_form_with_401_and_no_session(console: Console, caplog: Any) -> None:
    for wrong in ("rc_" + "x" * 43, "", "not a token at all", "é" * 10):
        answer = await console.sign_in(wrong)
        assert answer.status == 401, wrong
        assert '<p role="alert" id="sign-in-error"' in answer.text and "not valid" in answer.text
        assert not any(c.startswith("rollcall_session=") for c in _set_cookies(answer))
        assert console.session_cookie() is None
    assert (await console.get("/console/members")).headers["Location"] == "/"
    refusals = [r.getMessage() for r in caplog.records if "console sign-in" in r.getMessage()]
    assert len(refusals) == 4 and not any("rc_" in message for message in refusals)  # logged, never the token


async def test_a_token_without_the_admin_scope_gets_403_and_no_session(console: Console) -> None:
    answer = await console.sign_in(console.scim.token)  # scim + roster: the identity provider's token
    assert answer.status == 403 and 'id="sign-in-error"' in answer.text and "admin scope" in answer.text
    assert console.session_cookie() is None
    assert (await console.get("/console/members")).status == 303


async def test_sign_in_needs_the_login_csrf_token_of_its_own_form(console: Console) -> None:
    await console.get("/")
    for csrf in (None, "", "0" * 64):
        data = {"token": console.admin_token, **({"csrf": csrf} if csrf is not None else {})}
        answer = await console.post("/console/sign-in", data)
        assert answer.status == 403 and "expired" in answer.text, csrf
        assert console.session_cookie() is None
    # A form from another browser (its own pre-session cookie) does not fit this one's.
    other = await console.client.get("/", cookies={"rollcall_sign_in": "A" * 43})
    foreign = (await other.text()).split('name="csrf" value="')[1].split('"')[0]
    console.client.session.cookie_jar.update_cookies({"rollcall_sign_in": "B" * 43})
    answer = await console.post("/console/sign-in", {"token": console.admin_token, "csrf": foreign})
    assert answer.status == 403 and console.session_cookie() is None


async def test_repeated_failures_are_slowed_down_and_recover_with_time(console: Console) -> None:
    for _ in range(FREE_FAILURES):
        assert (await console.sign_in("rc_wrong")).status == 401
    assert (await console.sign_in("rc_wrong")).status == 401  # the first failure that costs a wait
    waited = await console.sign_in()  # even the right token is not checked while the client waits
    assert waited.status == 429 and int(waited.headers["Retry-After"]) >= 1 and "try again in" in waited.text
    assert console.session_cookie() is None
    console.clock.advance(int(waited.headers["Retry-After"]))
    assert (await console.sign_in("rc_wrong")).status == 401
    longer = await console.sign_in()
    assert longer.status == 429 and int(longer.headers["Retry-After"]) > int(waited.headers["Retry-After"])
    console.clock.advance(int(longer.headers["Retry-After"]))
    assert (await console.sign_in()).status == 303  # and success starts afresh
    assert (await console.get("/console/members")).status == 200


async def test_a_session_ends_after_eight_hours_idle(signed_in: Console) -> None:
    signed_in.clock.advance(IDLE_SECONDS - 60)
    assert (await signed_in.get("/console/members")).status == 200  # used: the idle limit starts again
    signed_in.clock.advance(IDLE_SECONDS - 60)
    assert (await signed_in.get("/console/members")).status == 200
    signed_in.clock.advance(IDLE_SECONDS)
    assert (await signed_in.get("/console/members")).headers["Location"] == "/"
    assert (await signed_in.get("/")).status == 200  # the sign-in form again


async def test_a_session_ends_after_twenty_four_hours_however_busy(signed_in: Console) -> None:
    step = ABSOLUTE_SECONDS / 4  # 6 h: each use well inside the idle limit
    for _ in range(3):
        signed_in.clock.advance(step)
        assert (await signed_in.get("/console/groups")).status == 200
    signed_in.clock.advance(step - 1)
    assert (await signed_in.get("/console/groups")).status == 200
    signed_in.clock.advance(2)
    assert (await signed_in.get("/console/groups")).status == 303


async def test_sign_out_ends_the_session_for_good(signed_in: Console) -> None:
    value = signed_in.session_cookie()
    assert value is not None
    out = await signed_in.post("/console/sign-out", {"csrf": await signed_in.csrf()})
    assert out.status == 303 and out.headers["Location"] == "/"
    assert signed_in.session_cookie() is None
    # The old value, replayed, opens nothing: the session is gone from the server, not only from the browser.
    replayed = await signed_in.client.get("/console/members", cookies={"rollcall_session": value},
                                          allow_redirects=False)
    assert replayed.status == 303


async def test_revoking_the_token_ends_its_sessions_on_the_next_request(signed_in: Console, settings: Settings
                                                                        ) -> None:
    assert (await signed_in.get("/console/members")).status == 200
    db = open_storage(settings.db_path)  # as `rollcall token revoke` would, from another process (or instance)
    await db.open()
    try:
        await tokens.revoke_token(db, "console-admin")
    finally:
        await db.close()
    assert (await signed_in.get("/console/members")).headers["Location"] == "/"


async def test_a_session_works_on_every_instance_and_a_revocation_through_one_ends_it_on_all(
        signed_in: Console, aiohttp_client: Any, settings: Settings) -> None:
    """Two instances on one database (as two `rollcall serve` behind a load balancer on PostgreSQL): the session
    opened through the first is the database's, so the second honours it, and ends it when the token is revoked
    through the second."""
    value = signed_in.session_cookie()
    assert value is not None
    other_app = init_app(settings)
    other_app[CLOCK] = signed_in.clock
    other = await aiohttp_client(other_app)
    cookies = {"rollcall_session": value}
    page = await other.get("/console/tokens", cookies=cookies, allow_redirects=False)
    assert page.status == 200 and '<tr data-token-name="console-admin">' in await page.text()
    csrf = (await page.text()).split('name="csrf" value="')[1].split('"')[0]
    revoked = await other.post("/console/tokens/console-admin/revoke", data={"csrf": csrf, "confirm": "yes"},
                               cookies=cookies, allow_redirects=False)
    assert revoked.status == 303
    first = await signed_in.get("/console/members")
    assert first.status == 303 and first.headers["Location"] == "/"
    second = await other.get("/console/members", cookies=cookies, allow_redirects=False)
    assert second.status == 303 and second.headers["Location"] == "/"


async def test_an_expired_token_ends_its_sessions(console: Console, settings: Settings) -> None:
    brief = await mint_token(settings.db_path, "brief", ("admin",), expires_in=3600)
    assert (await console.sign_in(brief)).status == 303
    assert (await console.get("/console/members")).status == 200
    console.clock.advance(3601)
    assert (await console.get("/console/members")).status == 303


async def test_the_session_cookie_is_no_api_credential_and_a_bearer_token_no_console_one(signed_in: Console
                                                                                        ) -> None:
    api = await signed_in.client.get("/api/members")
    assert api.status == 401 and "Bearer" in (await api.json(content_type=None))["detail"]
    signed_in.client.session.cookie_jar.clear()
    page = await signed_in.get("/console/members", headers={"Authorization": f"Bearer {signed_in.admin_token}"})
    assert page.status == 303 and page.headers["Location"] == "/"


async def test_only_a_hash_of_the_session_is_stored(signed_in: Console, settings: Settings, engine: str) -> None:
    value = signed_in.session_cookie()
    assert value is not None
    id_hash = hashlib.sha256(value.encode()).hexdigest()
    stored, by_value = await read_database(settings.db_path, lambda tx: (
        tx.sessions.find(id_hash, utc_now()), tx.sessions.find(value, utc_now())))
    assert stored is not None and stored.token_name == "console-admin" and by_value is None
    if engine == "sqlite":  # and the value is nowhere in the file
        for suffix in ("", "-wal"):
            with open(settings.db_path + suffix, "rb") as file:
                assert value.encode() not in file.read()


async def test_a_one_time_link_signs_in_once_and_only_while_fresh(console: Console) -> None:
    sessions = console.client.app[SESSIONS]
    code = await sessions.link("console-admin")
    first = await console.get(f"/console/sign-in?once={code}")
    assert first.status == 303 and first.headers["Location"] == "/console/members"
    assert console.session_cookie() is not None
    console.client.session.cookie_jar.clear()
    again = await console.get(f"/console/sign-in?once={code}")
    assert again.status == 401 and "used or has expired" in again.text and console.session_cookie() is None
    stale = await sessions.link("console-admin")
    console.clock.advance(LINK_SECONDS + 1)
    late = await console.get(f"/console/sign-in?once={stale}")
    assert late.status == 401 and console.session_cookie() is None
    assert (await console.get("/console/sign-in?once=nonsense")).status == 401


async def test_a_link_for_a_revoked_token_signs_nobody_in(aiohttp_client: Any, settings: Settings) -> None:
    await mint_token(settings.db_path, "gone", ("admin",))
    app = init_app(settings)
    app[CLOCK] = ManualClock()
    client = await aiohttp_client(app)
    code = await app[SESSIONS].link("gone")
    await tokens.revoke_token(app[SESSIONS].db, "gone")
    answer = await client.get(f"/console/sign-in?once={code}", allow_redirects=False)
    assert answer.status == 401 and "rollcall_session" not in {c.key for c in client.session.cookie_jar}


async def test_guessing_one_time_codes_is_slowed_down_too(console: Console) -> None:
    for n in range(FREE_FAILURES + 1):
        assert (await console.get(f"/console/sign-in?once=guess{n}")).status == 401
    code = await console.client.app[SESSIONS].link("console-admin")
    slowed = await console.get(f"/console/sign-in?once={code}")
    assert slowed.status == 429 and console.session_cookie() is None
    console.clock.advance(int(slowed.headers["Retry-After"]))
    assert (await console.get(f"/console/sign-in?once={code}")).status == 303  # not used up while slowed down
