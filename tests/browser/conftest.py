"""The browser tests' world: a real `rollcall serve` on loopback with a real SQLite file, seeded over SCIM as an
identity provider would, and Debian's chromium driven by Playwright.

The server is a subprocess (tests/conftest.py's serve_process), not the app on a thread of the test process:
Playwright's sync API runs its own event loop in this thread, which rules out asyncio.run and pytest-aiohttp's
loop here; a subprocess is also the server exactly as `make serve` starts it, and its log is checked for
tracebacks after each test. One server per test: each test sees only its own seeded people (and holds).

Every page of every test has its console messages and page errors collected: any error fails the test.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser import chromium
from tests.conftest import GROUP_SCHEMA, PATCH_OP, SCIM_JSON, USER_SCHEMA, RunningServer, mint_token, serve_process

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright

ADMINS = "rollcall-administrators"
MEMBERS = "rollcall-members"
GUESTS = "rollcall-guests"
# handle → (displayName, role group): one person of each role, as a small company's identity provider sends them.
PEOPLE = {
    "ada": ("Ada Lovelace", ADMINS),
    "ben": ("Ben Okafor", MEMBERS),
    "cleo": ("Cleo Martin", GUESTS),
}
DOMAIN = "acme.example"


def mint(db_path: str, name: str, scopes: tuple[str, ...]) -> str:
    """tests/conftest.py's mint_token, on a thread of its own: Playwright's sync API keeps an event loop running on
    this one, where asyncio.run refuses to start another."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, mint_token(db_path, name, scopes)).result()


class ScimHttp:
    """A small synchronous SCIM client (the standard library's urllib) for seeding and changing the data while the
    browser looks: real HTTP to the served rollcall, as the identity provider sends it."""

    def __init__(self, root: str, token: str) -> None:
        self.root = root
        self.token = token

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        url = path if path.startswith("/api") else f"/scim/v2{path}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.root}{url}", data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", **({"Content-Type": SCIM_JSON} if data else {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, text = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read()
        return status, json.loads(text) if text else None

    def create_user(self, handle: str, display_name: str, **attributes: Any) -> dict[str, Any]:
        given, _, family = display_name.partition(" ")
        status, body = self.request("POST", "/Users", {
            "schemas": [USER_SCHEMA], "userName": f"{handle}@{DOMAIN}", "displayName": display_name,
            "name": {"givenName": given, "familyName": family or given}, "active": True,
            "emails": [{"value": f"{handle}@{DOMAIN}", "type": "work", "primary": True}], **attributes})
        assert status == 201, body
        return body

    def create_group(self, display_name: str, member_ids: list[str]) -> dict[str, Any]:
        status, body = self.request("POST", "/Groups", {
            "schemas": [GROUP_SCHEMA], "displayName": display_name, "members": [{"value": m} for m in member_ids]})
        assert status == 201, body
        return body

    def patch(self, path: str, operations: list[dict[str, Any]]) -> tuple[int, Any]:
        return self.request("PATCH", path, {"schemas": [PATCH_OP], "Operations": operations})

    def add_to_group(self, group_id: str, user_id: str) -> None:
        status, body = self.patch(f"/Groups/{group_id}", [{"op": "add", "path": "members",
                                                            "value": [{"value": user_id}]}])
        assert status in (200, 204), body


@dataclass
class Console:
    """A served rollcall with one seeded person of each role."""

    url: str                   # http://127.0.0.1:PORT, the address `serve` prints for the console
    admin_token: str           # signs in to the console
    idp_token: str             # scim + roster: what the identity provider has, and no admin scope
    server: RunningServer
    scim: ScimHttp             # speaks as the identity provider
    admin_api: ScimHttp        # /api/... with the admin token, to check what the console did
    users: dict[str, dict[str, Any]] = field(default_factory=dict)   # handle → the SCIM user
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # displayName → the SCIM group


@pytest.fixture
def console(tmp_path: Path, db_location: str) -> Iterator[Console]:
    """On each engine (tests/conftest.py's db_location): a SQLite file, or a fresh PostgreSQL database."""
    admin_token = mint(db_location, "console", ("admin",))
    idp_token = mint(db_location, "jumpcloud", ("scim", "roster"))
    with serve_process(tmp_path, token_name=None, db=db_location) as server:
        root = server.base_url.removesuffix("/scim/v2")
        scim = ScimHttp(root, idp_token)
        seeded = Console(root, admin_token, idp_token, server, scim, ScimHttp(root, admin_token))
        for handle, (name, _) in PEOPLE.items():
            seeded.users[handle] = scim.create_user(handle, name)
        for group in (ADMINS, MEMBERS, GUESTS):
            members = [seeded.users[h]["id"] for h, (_, g) in PEOPLE.items() if g == group]
            seeded.groups[group] = scim.create_group(group, members)
        yield seeded
        log = server.log
    assert "Traceback" not in log, f"the server logged an exception:\n{log}"


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One chromium for the browser tests, stopped after the last of them: Playwright's sync API keeps an event loop
    running on this thread while it is started, and the rest of the suite needs asyncio.run and its own loops."""
    missing = None
    try:
        playwright: Playwright = chromium.start()
    except chromium.BrowserMissing as error:
        missing = str(error)
    if missing is not None:  # fail, never skip: CI must run these tests
        pytest.fail(missing, pytrace=False)
    try:
        launched = chromium.launch(playwright)
        yield launched
        launched.close()
    finally:
        playwright.stop()


class BrowserLog:
    """What the browser reported on every page of a context: console errors and uncaught page errors."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.expected: list[tuple[str, ...]] = []

    def expect_error(self, *parts: str) -> None:
        """An error this test provokes on purpose (e.g. the 401 of a wrong token, which Chromium logs): one whose
        text has all of `parts`."""
        self.expected.append(parts)

    def unexpected(self) -> list[str]:
        return [error for error in self.errors
                if not any(all(part in error for part in parts) for parts in self.expected)]

    def watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error on {page.url}: {error}"))
        page.on("dialog", self._dialog)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console error: {message.text} (at {message.location.get('url')})")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


@dataclass
class Session:
    """A browser context (its own cookies) aimed at the console, and what its pages logged."""

    context: BrowserContext
    page: Page
    log: BrowserLog
    console: Console

    def sign_in(self, token: str | None = None) -> None:
        self.page.goto("/")
        self.page.get_by_label("Admin token").fill(token or self.console.admin_token)
        with self.page.expect_navigation():
            self.page.get_by_role("button", name="Sign in").click()
        assert self.page.url.endswith("/console/members"), self.page.url

    def cookie_names(self) -> set[str]:
        return {cookie["name"] for cookie in self.context.cookies()}


@pytest.fixture
def open_session(browser: Browser, console: Console) -> Iterator[Any]:
    """open_session(**context_options) → a Session; every page's errors fail the test when it ends."""
    opened: list[Session] = []

    def start(**options: Any) -> Session:
        context = browser.new_context(base_url=console.url, **options)
        context.set_default_timeout(10_000)
        log = BrowserLog()
        context.on("page", log.watch)
        session = Session(context, context.new_page(), log, console)
        opened.append(session)
        return session

    yield start
    errors = [error for session in opened for error in session.log.unexpected()]
    for session in opened:
        session.context.close()
    if errors:
        pytest.fail("the browser reported errors:\n" + "\n".join(errors), pytrace=False)


@pytest.fixture
def session(open_session: Any) -> Session:
    return open_session()


@pytest.fixture
def signed_in(session: Session) -> Session:
    session.sign_in()
    return session
