"""The console's test client: real HTTP on loopback to the real app, a browser's cookie jar, and a clock the test
moves by hand (app/web/console/keys.py CLOCK)."""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from app.config import Settings
from app.web.app import init_app
from app.web.console.keys import CLOCK
from tests.conftest import Scim, mint_token

_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


class ManualClock:
    """Unix time that moves only when the test says."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Page:
    status: int
    text: str
    headers: Any

    @property
    def csrf(self) -> str:
        found = _CSRF.search(self.text)
        assert found, "no csrf field on the page"
        return html.unescape(found.group(1))


class Console:
    """A browser for the console: keeps cookies, follows no redirect unless asked, reads CSRF fields."""

    def __init__(self, client: TestClient, admin_token: str, scim: Scim, clock: ManualClock) -> None:
        self.client = client
        self.admin_token = admin_token
        self.scim = scim
        self.clock = clock

    @staticmethod
    async def _page(response: ClientResponse) -> Page:
        return Page(response.status, await response.text(), response.headers)

    async def get(self, path: str, **kw: Any) -> Page:
        return await self._page(await self.client.get(path, allow_redirects=False, **kw))

    async def post(self, path: str, data: dict[str, Any], **kw: Any) -> Page:
        return await self._page(await self.client.post(path, data=data, allow_redirects=False, **kw))

    async def sign_in(self, token: str | None = None) -> Page:
        form = await self.get("/")
        return await self.post("/console/sign-in", {"token": self.admin_token if token is None else token,
                                                    "csrf": form.csrf})

    async def csrf(self, path: str = "/console/members") -> str:
        return (await self.get(path)).csrf

    def session_cookie(self) -> str | None:
        for cookie in self.client.session.cookie_jar:
            if cookie.key == "rollcall_session":
                return cookie.value
        return None


@pytest.fixture
async def console(aiohttp_client: Any, settings: Settings, token: str) -> Console:
    """The app with an admin token minted, not yet signed in; `console.scim` writes as the identity provider."""
    admin = await mint_token(settings.db_path, "console-admin", ("admin",))
    clock = ManualClock()
    app = init_app(settings)
    app[CLOCK] = clock
    client = await aiohttp_client(app)
    return Console(client, admin, Scim(client, token), clock)


@pytest.fixture
async def signed_in(console: Console) -> Console:
    answer = await console.sign_in()
    assert answer.status == 303, answer.text
    return console
