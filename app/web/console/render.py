"""Rendering console pages: every page gets the session's CSRF token and the navigation."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from app.web.console.keys import SESSION

NAV = (("/console/members", "Members"), ("/console/groups", "Groups"), ("/console/events", "Activity"),
       ("/console/tokens", "Tokens"), ("/console/webhooks", "Webhooks"), ("/console/holds", "Holds"))


def render(request: web.Request, template: str, context: dict[str, Any] | None = None, status: int = 200
           ) -> web.Response:
    session = request.get(SESSION)
    shown = {"signed_in": session is not None, "csrf": session.csrf if session else "",
             "token_name": session.token_name if session else "", "nav": NAV, "path": request.path,
             **(context or {})}
    return aiohttp_jinja2.render_template(template, request, shown, status=status)


def error_page(request: web.Request, status: int, title: str, detail: str) -> web.Response:
    return render(request, "error.html", {"title": title, "detail": detail}, status=status)


def see_other(location: str) -> web.Response:
    """303 to `location`: after a form's POST, the browser GETs the page that shows the result."""
    return web.Response(status=303, headers={"Location": location})
