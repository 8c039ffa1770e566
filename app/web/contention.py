"""A write that storage gave up on under contention (storage.errors.Contended) answers 503 with Retry-After."""

from __future__ import annotations

from aiohttp import web

from app.protocol import errors
from app.storage.errors import Contended
from app.web.middleware import Handler

RETRY_AFTER_S = 1


@web.middleware
async def contended_is_busy(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Innermost but for authentication's, so that both the SCIM error middleware and the console's guard see a
    ScimError (a SCIM body, or the console's error page) rather than an unknown exception (a 500)."""
    try:
        return await handler(request)
    except Contended as error:
        raise busy_error(error) from None


def busy_error(error: Contended) -> errors.ScimError:
    """The 503 for a write given up under contention; also what the console's guard shows when its own session
    check is given up, before this middleware runs."""
    return errors.busy(
        f"The server is too busy to make this change now: it waited {error.seconds:.1f} seconds for concurrent "
        f"changes to the same data ({error.attempts} attempt(s)) and was not made. Send it again after "
        f"{RETRY_AFTER_S} second(s), or send fewer changes at once to one group or user.",
        RETRY_AFTER_S)
