"""Reading SCIM request bodies and writing SCIM responses."""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import orjson
from aiohttp import web

from app.protocol import errors
from app.web.keys import SETTINGS

SCIM_CONTENT_TYPE = "application/scim+json"
_ACCEPTED_BODY_TYPES = frozenset({"application/scim+json", "application/json"})
# Content-Encoding name -> zlib window bits (47: gzip or zlib framing, told apart by its header).
_CODINGS = {"gzip": 47, "x-gzip": 47, "deflate": 15}


def json_response(body: Any, content_type: str, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    # orjson: one encoder for every answer, several times faster than json.dumps on SCIM-sized bodies.
    return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                        content_type=content_type, charset="utf-8")


def scim_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(body, SCIM_CONTENT_TYPE, status, headers)


def error_response(error: errors.ScimError) -> web.Response:
    return scim_response(error.body(), status=error.status, headers=error.headers)


async def read_json(request: web.Request, limit: int | None = None) -> Any:
    """The request's JSON body; every way it can be wrong becomes a SCIM error. `limit` is the most bytes it may
    decode to (the request's client_max_size bounds what is read): --max-body-bytes unless the route says."""
    content_type = request.content_type  # aiohttp defaults a missing header to application/octet-stream
    if "Content-Type" in request.headers and content_type not in _ACCEPTED_BODY_TYPES:
        raise errors.ScimError(415, f"Send the body as application/scim+json or application/json, "
                                    f"not {content_type}.", "invalidSyntax")
    settings = request.app[SETTINGS]
    try:
        if request.content.is_eof():
            # The whole body came with the headers (as a small write's does): reading it cannot wait, and a
            # timeout's set-up and cancel was a fifth of a PATCH's time in its view.
            raw = await request.read()
        else:
            # A body trickled in a byte at a time would hold its connection (a busy one, which the connection cap
            # never reclaims) for as long as the client likes.
            async with asyncio.timeout(settings.body_timeout):
                raw = await request.read()
    except TimeoutError:
        raise errors.ScimError(408, f"The request body did not arrive within {settings.body_timeout:g} seconds "
                                    "(the server's --body-timeout); send it at once.") from None
    except web.RequestPayloadError:
        # aiohttp's message quotes the bytes it choked on; the client needs to know what was wrong, not see them.
        raise errors.invalid_syntax("The request body's framing is malformed (chunked encoding or "
                                    "Content-Length); rollcall could not read it.") from None
    except ConnectionResetError:
        # The client hung up before its body was complete (aiohttp: "Connection lost"): its fault, not ours, so
        # a 4xx in the request log rather than an unhandled error, though nobody is left to read the answer.
        raise errors.invalid_syntax("The connection closed before the request body was complete.") from None
    limit = settings.max_body_bytes if limit is None else limit
    raw = decode_body(raw, request.headers.get("Content-Encoding", ""), limit)
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


def decode_body(raw: bytes, content_encoding: str, limit: int) -> bytes:
    """The body with its Content-Encoding (gzip or deflate, RFC 9110 §8.4) undone, at most `limit` bytes of it."""
    codings = [coding.strip().lower() for coding in content_encoding.split(",") if coding.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding not in _CODINGS:
            raise errors.ScimError(415, f"Content-Encoding {coding!r} is not supported; send the body as is, "
                                        f"or with gzip or deflate.", "invalidSyntax")
        raw = _inflate(raw, coding, limit)
    return raw


def _inflate(raw: bytes, coding: str, limit: int) -> bytes:
    try:
        return _inflate_with(raw, _CODINGS[coding], limit)
    except zlib.error:
        if coding == "deflate":
            # Some clients send raw deflate, without the zlib header RFC 9110 asks for.
            try:
                return _inflate_with(raw, -15, limit)
            except zlib.error:
                pass
        raise errors.invalid_syntax(f"The body is not valid {coding} data, as its Content-Encoding says.") from None


def _inflate_with(raw: bytes, window_bits: int, limit: int) -> bytes:
    decompressor = zlib.decompressobj(window_bits)
    # Stop one byte past the limit: a small body may not expand into an unbounded one.
    inflated = decompressor.decompress(raw, limit + 1)
    if len(inflated) > limit:
        raise errors.ScimError(413, f"The request body, decompressed, is larger than the limit of {limit} bytes.")
    if not decompressor.eof or decompressor.unused_data:
        raise zlib.error("truncated, or followed by other data")
    return inflated
