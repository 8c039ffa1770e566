"""/api/tokens: managing tokens over the API, for `admin` tokens (app/domain/scopes.py). The same operations as
`rollcall token …`; a token's value appears once, in the answer that mints it, and never in a list."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.domain import scopes, tokens
from app.domain.clock import parse_duration
from app.protocol import errors
from app.storage.records import TokenRecord
from app.web.http import json_response, read_json
from app.web.keys import DATABASE

DEFAULT_GRACE = "24h"


def _described(record: TokenRecord) -> dict[str, Any]:
    return {"name": record.name, "scopes": list(scopes.decode(record.scopes)), "created": record.created,
            "expires": record.expires, "lastUsed": record.last_used, "revoked": record.revoked,
            "previousValueUntil": record.previous_until}


def _seconds(body: dict[str, Any], key: str, default: str | None) -> int | None:
    raw = body.get(key, default)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise errors.invalid_value(f"{key} is a duration such as \"90d\" or \"24h\", not {errors.describe(raw)}.")
    try:
        return parse_duration(raw)
    except ValueError as error:
        raise errors.invalid_value(f"{key}: {error}") from None


async def _object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request) if request.can_read_body else {}
    if not isinstance(body, dict):
        raise errors.invalid_syntax("The request body must be a JSON object.")
    return body


async def list_tokens(request: web.Request) -> web.Response:
    listed = await tokens.list_tokens(request.app[DATABASE])
    return json_response({"tokens": [_described(r) for r in listed]}, "application/json")


async def create(request: web.Request) -> web.Response:
    body = await _object(request)
    name = body.get("name")
    if not isinstance(name, str):
        raise errors.invalid_value("name is required: 1-64 letters, digits, '.', '_' or '-'.")
    named = body.get("scopes")
    if named is not None and not (isinstance(named, list) and all(isinstance(s, str) for s in named)):
        raise errors.invalid_value(f"scopes is a list of {', '.join(scopes.ALL_SCOPES)}.")
    try:
        chosen = scopes.parse_scopes(named)
        token = await tokens.create_token(request.app[DATABASE], name, chosen, _seconds(body, "expires", None))
    except (tokens.TokenError, scopes.ScopeError) as error:
        raise errors.invalid_value(str(error)) from None
    return json_response({"name": name, "scopes": list(chosen), "token": token}, "application/json", 201)


async def rotate(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    grace = _seconds(await _object(request), "grace", DEFAULT_GRACE)
    assert grace is not None
    try:
        token = await tokens.rotate_token(request.app[DATABASE], name, grace)
    except tokens.TokenError as error:
        raise errors.not_found(str(error)) from None
    return json_response({"name": name, "token": token}, "application/json")


async def revoke(request: web.Request) -> web.Response:
    try:
        await tokens.revoke_token(request.app[DATABASE], request.match_info["name"])
    except tokens.TokenError as error:
        raise errors.not_found(str(error)) from None
    return web.Response(status=204)
