"""The console: server-rendered HTML pages for an admin, beside the SCIM and API routes and over the same domain
calls (issue 14). Templates and assets are package data next to this file, so the wheel and the single-file
binary carry them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from app.domain.sessions import Sessions
from app.web.console import admin_views, auth_views, pages
from app.web.console.backoff import Backoff
from app.web.console.guard import STREAM_PATH, console_guard, security_headers
from app.web.console.keys import BACKOFF, CLOCK, SESSIONS
from app.web.console.paths import CONSOLE_PREFIX, SIGN_IN, STATIC_PREFIX
from app.web.keys import DATABASE

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

__all__ = ["console_guard", "setup_console"]


async def _sessions(app: web.Application) -> AsyncIterator[None]:
    """After the database opens (cleanup_ctx order): the sessions live in it. The clock is read here, at startup,
    so that a test may set app[CLOCK] after init_app."""
    app[SESSIONS] = Sessions(app[DATABASE], app[CLOCK])
    app[BACKOFF] = Backoff(app[CLOCK])
    yield


def setup_console(app: web.Application) -> None:
    """The console's templates, routes, assets, session store and headers. A test may set app[CLOCK] before startup."""
    app[CLOCK] = time.time
    # autoescape: every value from the identity provider (a displayName of `<script>`) is shown as text.
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    app.cleanup_ctx.append(_sessions)
    app.on_response_prepare.append(security_headers)
    router = app.router
    router.add_get("/", auth_views.index)
    router.add_get(CONSOLE_PREFIX, auth_views.index)
    router.add_get(SIGN_IN, auth_views.sign_in_link)
    router.add_post(SIGN_IN, auth_views.sign_in)
    router.add_post("/console/sign-out", auth_views.sign_out)
    router.add_get("/console/members", pages.members)
    router.add_get("/console/members/{id}", pages.member)
    router.add_get("/console/groups", pages.groups)
    router.add_get("/console/events", pages.events)
    router.add_get(STREAM_PATH, pages.stream)
    router.add_get("/console/tokens", admin_views.tokens_page)
    router.add_post("/console/tokens", admin_views.create_token)
    router.add_post("/console/tokens/{name}/revoke", admin_views.revoke_token)
    router.add_get("/console/webhooks", admin_views.webhooks_page)
    router.add_post("/console/webhooks", admin_views.add_webhook)
    router.add_get("/console/webhooks/{id}", admin_views.webhook)
    router.add_post("/console/webhooks/{id}/remove", admin_views.remove_webhook)
    router.add_get("/console/holds", admin_views.holds_page)
    router.add_post("/console/holds/{id}/approve", admin_views.approve_hold)
    router.add_static(STATIC_PREFIX, STATIC, append_version=False)
