"""Reading SCIM request bodies and writing SCIM responses."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from app.protocol import errors

SCIM_CONTENT_TYPE = "application/scim+json"
_ACCEPTED_BODY_TYPES = frozenset({"application/scim+json", "application/json"})


def json_response(body: Any, content_type: str, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    # orjson: one encoder for every answer, several times faster than json.dumps on SCIM-sized bodies.
    return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                        content_type=content_type, charset="utf-8")


def scim_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(body, SCIM_CONTENT_TYPE, status, headers)


def error_response(error: errors.ScimError) -> web.Response:
    return scim_response(error.body(), status=error.status, headers=error.headers)


async def read_json(request: web.Request) -> Any:
    """The request's JSON body; every way it can be wrong becomes a SCIM error."""
    content_type = request.content_type  # aiohttp defaults a missing header to application/octet-stream
    if "Content-Type" in request.headers and content_type not in _ACCEPTED_BODY_TYPES:
        raise errors.ScimError(415, f"Send the body as application/scim+json or application/json, "
                                    f"not {content_type}.", "invalidSyntax")
    raw = await request.read()
    if not raw.strip():
        raise errors.invalid_syntax("The request needs a JSON body, and this one is empty.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise errors.invalid_syntax(f"The body is not valid UTF-8 (byte {error.start + 1}).") from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        if "recursion" in error.msg:
            raise errors.invalid_syntax("The body's JSON is nested too deeply.") from None
        raise errors.invalid_syntax(
            f"The body is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}."
        ) from None
