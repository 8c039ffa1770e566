"""The roster API: who is a member, why, and what changed (JSON, bearer token like SCIM)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.domain.roles import ROLES
from app.protocol import errors
from app.protocol.timestamps import parse_datetime
from app.web.http import json_response
from app.web.keys import HOLDS, ROSTER, TOKEN_NAME

MAX_EVENTS = 1000
# The most members on one page of ?limit=; without ?limit= the whole roster is one answer, as before paging existed.
MAX_MEMBERS = 1000
# The largest integer SQLite binds; a larger `after` would raise OverflowError (a 500) in the query.
# No seq can exceed it, so clamping changes no answer.
_SQLITE_MAX_INT = 2**63 - 1


def _json(body: Any) -> web.Response:
    return json_response(body, "application/json")


def _non_negative_int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.invalid_value(f"{name} must be a whole number, not {raw!r}.") from None
    if value < 0:
        raise errors.invalid_value(f"{name} must not be negative.")
    return min(value, _SQLITE_MAX_INT)


async def members(request: web.Request) -> web.Response:
    """The roster, or with ?at= the roster as it was then; ?role=, ?q= narrow it; ?limit= and ?after= page it."""
    query = request.query
    at = None
    if query.get("at"):
        at = parse_datetime(query["at"])
        if at is None:
            raise errors.invalid_value(f"at must be a dateTime such as 2026-10-01T00:00:00Z, not {query['at']!r}.")
    role = query.get("role") or None
    if role is not None and role not in ROLES:
        raise errors.invalid_value(f"role must be one of {', '.join(ROLES)}, not {role!r}.")
    limit = None
    if query.get("limit"):
        limit = _non_negative_int(request, "limit", MAX_MEMBERS)
        if limit == 0:
            raise errors.invalid_value("limit must be at least 1.")
        limit = min(limit, MAX_MEMBERS)
    try:
        listed, cursor = await request.app[ROSTER].members(at, role, query.get("q") or None,
                                                           query.get("after") or None, limit)
    except ValueError as error:  # a cursor this server did not give
        raise errors.invalid_value(str(error)) from None
    return _json({"members": listed, "next": cursor})


async def member(request: web.Request) -> web.Response:
    user_id = request.match_info["id"]
    explained = await request.app[ROSTER].explain(user_id)
    if explained is None:
        raise errors.not_found(f"No User has the id {user_id!r}.")
    return _json(explained)


async def events(request: web.Request) -> web.Response:
    after = _non_negative_int(request, "after", 0)
    limit = min(_non_negative_int(request, "limit", 100), MAX_EVENTS)
    found = await request.app[ROSTER].events(after, limit)
    return _json({"events": found, "next": found[-1]["seq"] if found else after})


# Holds (app/domain/holds.py). Any live token may list and approve them for now: tokens have no scopes yet, and
# once they do (a later issue), approving takes an `admin` one.
async def holds(request: web.Request) -> web.Response:
    return _json({"holds": await request.app[HOLDS].open_holds()})


def _hold_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise errors.not_found(f"No hold has the id {errors.describe(raw)}; GET /api/holds lists the open ones.")
    return int(raw)


async def hold(request: web.Request) -> web.Response:
    hold_id = _hold_id(request)
    shown = await request.app[HOLDS].show(hold_id)
    if shown is None:
        raise errors.not_found(f"No hold has the id {hold_id}; GET /api/holds lists the open ones.")
    return _json(shown)


async def approve_hold(request: web.Request) -> web.Response:
    leave_no_admin = request.query.get("leave_no_admin", "false").lower()
    if leave_no_admin not in ("true", "false"):
        raise errors.invalid_value(f"leave_no_admin must be true or false, not {leave_no_admin!r}.")
    return _json(await request.app[HOLDS].approve(_hold_id(request), request[TOKEN_NAME],
                                                  leave_no_admin=leave_no_admin == "true"))
