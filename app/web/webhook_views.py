"""/api/webhooks: the same administration as `rollcall webhook ...`, over HTTP, with SCIM-style error bodies."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.domain import webhooks
from app.protocol import errors
from app.web.http import json_response, read_json
from app.web.keys import DATABASE

_ADD_FIELDS = frozenset({"url", "events", "description"})


def _json(body: Any, status: int = 200) -> web.Response:
    return json_response(body, "application/json", status)


def _scim_error(error: webhooks.WebhookError) -> errors.ScimError:
    if isinstance(error, webhooks.WebhookNotFound):
        return errors.not_found(str(error))
    return errors.invalid_value(str(error))


def _webhook_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise errors.not_found(f"No webhook has the id {raw!r}; ids are whole numbers (GET /api/webhooks).")
    return int(raw)


async def _object_body(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise errors.invalid_syntax("The body must be a JSON object.")
    return body


async def listing(request: web.Request) -> web.Response:
    return _json({"webhooks": await webhooks.listing(request.app[DATABASE])})


async def add(request: web.Request) -> web.Response:
    body = await _object_body(request)
    unknown = sorted(set(body) - _ADD_FIELDS)
    if unknown:
        raise errors.invalid_value(f"Unknown field(s) {', '.join(unknown)}; a webhook takes url, events and "
                                   "description.")
    try:
        added, secret = await webhooks.add(request.app[DATABASE], body.get("url"), body.get("events"),
                                           body.get("description"))
    except webhooks.WebhookError as error:
        raise _scim_error(error) from None
    # The only answer that carries the secret; nothing stores it anywhere a later answer could read it from.
    return _json({**added, "secret": secret}, status=201)


async def one(request: web.Request) -> web.Response:
    try:
        return _json(await webhooks.one(request.app[DATABASE], _webhook_id(request)))
    except webhooks.WebhookError as error:
        raise _scim_error(error) from None


async def remove(request: web.Request) -> web.Response:
    try:
        await webhooks.remove(request.app[DATABASE], _webhook_id(request))
    except webhooks.WebhookError as error:
        raise _scim_error(error) from None
    return web.Response(status=204)


async def deliveries(request: web.Request) -> web.Response:
    try:
        found = await webhooks.deliveries(request.app[DATABASE], _webhook_id(request))
    except webhooks.WebhookError as error:
        raise _scim_error(error) from None
    return _json({"deliveries": found})


async def redeliver(request: web.Request) -> web.Response:
    webhook_id = _webhook_id(request)
    body = await _object_body(request)
    try:
        return _json(await webhooks.redeliver(request.app[DATABASE], webhook_id, body.get("from")))
    except webhooks.WebhookError as error:
        raise _scim_error(error) from None


async def rotate_secret(request: web.Request) -> web.Response:
    try:
        rotated, secret = await webhooks.rotate_secret(request.app[DATABASE], _webhook_id(request))
    except webhooks.WebhookError as error:
        raise _scim_error(error) from None
    return _json({**rotated, "secret": secret})
