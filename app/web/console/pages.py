"""The console's reading pages: members, a person, groups, activity and its live stream. Each is a thin view
over RosterReader (app/domain/roster.py)."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web
from aiohttp_sse import sse_response

from app.domain.roles import ROLES
from app.web.console import wording
from app.web.console.guard import SESSION_COOKIE
from app.web.console.keys import SESSIONS
from app.web.console.render import error_page, render
from app.web.keys import ROSTER

MEMBERS_PER_PAGE = 50
EVENTS_PER_PAGE = 100
TIMELINE_LENGTH = 100
# How often the live stream looks for new events, and how many it sends at once.
STREAM_POLL_SECONDS = 0.5
STREAM_BATCH = 100
# The activity page's filter: a family (every type in it) or one type.
EVENT_KINDS = ("member", "member.joined", "member.role_changed", "member.left", "user", "group", "hold")
_KIND = re.compile(r"[a-z_]{1,20}(\.[a-z_]{1,30})?")
_SEQ = re.compile(r"[0-9]{1,18}")


def _kind(request: web.Request) -> str | None:
    kind = request.query.get("type", "").strip()
    if not kind:
        return None
    if not _KIND.fullmatch(kind):
        raise web.HTTPBadRequest()
    return kind


def _seq(raw: str | None) -> int | None:
    return int(raw) if raw and _SEQ.fullmatch(raw) else None


def shown_event(event: dict[str, Any]) -> dict[str, Any]:
    """An event as the activity page (and its stream) shows it."""
    return {"seq": event["seq"], "type": event["type"], "time": event["time"], "when": wording.when(event["time"]),
            "text": wording.describe_event(event), "token": event.get("token"),
            "userId": event.get("userId")}


async def members(request: web.Request) -> web.Response:
    q = request.query.get("q", "").strip()
    role = request.query.get("role", "").strip()
    page = request.query.get("page", "").strip()
    if role and role not in ROLES:
        return error_page(request, 400, "No such role", f"role is one of {', '.join(ROLES)}.")
    roster = request.app[ROSTER]
    try:
        listed, cursor = await roster.members(None, role or None, q or None, page or None, MEMBERS_PER_PAGE)
    except ValueError:  # a cursor this server did not give
        return error_page(request, 400, "No such page", "That page link is not one rollcall made; start from the "
                                                        "first page.")
    narrowed = {k: v for k, v in (("q", q), ("role", role)) if v}
    return render(request, "members.html", {
        "members": listed, "counts": await roster.role_counts(), "roles": ROLES, "q": q, "role": role,
        "next_page": f"?{urlencode({**narrowed, 'page': cursor})}" if cursor else None,
        "first_page": f"?{urlencode(narrowed)}" if page else None, "day": wording.day})


async def member(request: web.Request) -> web.Response:
    user_id = request.match_info["id"]
    roster = request.app[ROSTER]
    person = await roster.explain(user_id)
    if person is None:
        return error_page(request, 404, "No such person", f"No user has the id {user_id!r}.")
    timeline = [shown_event(e) for e in await roster.named(await roster.timeline(user_id, TIMELINE_LENGTH))]
    joined = await roster.membership_times(user_id)
    return render(request, "member.html", {"person": person, "why": wording.why(person, joined), "timeline": timeline,
                                           "day": wording.day, "when": wording.when})


async def groups(request: web.Request) -> web.Response:
    return render(request, "groups.html", {"groups": await request.app[ROSTER].groups()})


async def events(request: web.Request) -> web.Response:
    kind = _kind(request)
    before = _seq(request.query.get("before"))
    roster = request.app[ROSTER]
    found = [shown_event(e) for e in await roster.named(await roster.recent_events(before, kind, EVENTS_PER_PAGE))]
    newest = found[0]["seq"] if found and before is None else None
    if before is None and not found:
        latest = await request.app[ROSTER].recent_events(None, None, 1)
        newest = latest[0]["seq"] if latest else 0
    older = (f"?{urlencode({**({'type': kind} if kind else {}), 'before': found[-1]['seq']})}"
             if len(found) == EVENTS_PER_PAGE else None)
    stream = None
    if before is None:  # only the newest page updates live
        stream = f"/console/events/stream?{urlencode({**({'type': kind} if kind else {}), 'after': newest})}"
    return render(request, "events.html", {"events": found, "kinds": EVENT_KINDS, "kind": kind or "",
                                           "older": older, "stream": stream})


def _matches(kind: str | None, event_type: str) -> bool:
    return kind is None or event_type == kind or event_type.startswith(kind + ".")


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: each new change-feed event (of ?type=, after ?after= or the Last-Event-ID the browser
    resends on reconnecting) as JSON; ends when the session does."""
    kind = _kind(request)
    roster = request.app[ROSTER]
    after = _seq(request.headers.get("Last-Event-ID")) or _seq(request.query.get("after"))
    if after is None:
        latest = await roster.recent_events(None, None, 1)
        after = latest[0]["seq"] if latest else 0
    cookie = request.cookies.get(SESSION_COOKIE, "")
    async with sse_response(request) as response:
        while response.is_connected():
            for event in await roster.named(await roster.events(after, STREAM_BATCH)):
                after = event["seq"]
                if _matches(kind, event["type"]):
                    await response.send(orjson.dumps(shown_event(event)).decode(), id=str(after), event="change")
            if await request.app[SESSIONS].check(cookie, touch=False) is None:
                break  # signed out, idle, expired or revoked: the page stops updating
            await asyncio.sleep(STREAM_POLL_SECONDS)
    return response
