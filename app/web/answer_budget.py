"""A cap on the bytes of large answers waiting to be sent, across all connections.

A list page is bounded by --max-page-bytes, but a client that never reads its answer keeps that page in
the server's buffers for as long as the connection lives, so a few dozen such clients would hold gigabytes.
Every large answer (a list page, a Group with many members) reserves its size here and holds it until its
last byte has been handed to the kernel; when the reservations reach the cap, further large answers are
refused with a 503 and Retry-After instead of being kept, and small ones (a lookup, a single User) are
always sent.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.payload import Payload
from aiohttp.typedefs import Handler, Middleware

from app.protocol import errors

# Answers below this size are not counted: what they can hold in all is bounded by the number of connections
# (--max-connections) times this, and lookups must never be refused because large lists are stalled.
LARGE_ANSWER_BYTES = 64 * 1024
# The cap, in full pages of --max-page-bytes (64 MiB with the default 4 MiB).
PAGES_IN_FLIGHT = 16


class AnswerBudget:
    """Bytes of large answers being sent. The event loop is the only user, so no lock is needed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def try_hold(self, size: int) -> bool:
        # An answer larger than the whole cap (a Group with a million members) is sent when it is the only one.
        if self.held and self.held + size > self.limit:
            return False
        self.held += size
        return True

    def release(self, size: int) -> None:
        self.held -= size


# The bytes a request's answer holds reserved: 0 from `send` (outermost), the size once `reserve` (innermost) holds
# them. Always set, so that `send` reads it without `in`, which on aiohttp's Request raises and catches a KeyError.
_HELD = web.RequestKey("held_answer_bytes", int)


def answer_budget_middlewares(budget: AnswerBudget) -> tuple[Middleware, Middleware]:
    """(send, reserve): `send` goes first in the middleware list, `reserve` last.

    `reserve` sits next to the handler so that a refusal is an ordinary SCIM error that the other middlewares
    log and count; `send` sits outside them all so that it sends the answer only once every header is set."""

    @web.middleware
    async def send(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[_HELD] = 0
        try:
            response = await handler(request)
            if request[_HELD] and not response.prepared:
                # Sent here rather than after the middlewares return, so that the reservation lasts exactly as
                # long as the bytes wait in the server's buffers: write_eof returns once they are in the kernel's.
                try:
                    await response.prepare(request)
                    await response.write_eof()
                except ConnectionError:
                    pass  # the client went away; aiohttp finishes the request as for any closed connection
            return response
        finally:
            if request[_HELD]:
                budget.release(request[_HELD])

    @web.middleware
    async def reserve(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        body = response.body if isinstance(response, web.Response) else None
        # A payload of known size (app/web/spliced.py's parts) counts as what it would be in one piece.
        size = len(body) if isinstance(body, bytes) else body.size if isinstance(body, Payload) else None
        if size is None or size < LARGE_ANSWER_BYTES:
            return response
        if not budget.try_hold(size):
            raise errors.ScimError(
                503, f"The server is already holding {budget.held:,} bytes of large answers for clients that are "
                     f"slow to read them, its limit; retry shortly, or ask for smaller pages with count.",
                headers={"Retry-After": "1"})
        request[_HELD] = size
        return response

    return send, reserve
