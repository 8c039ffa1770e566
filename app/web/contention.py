"""A write that storage gave up on under contention (storage.errors.Contended) answers 503 with Retry-After.

scim_errors (app/web/middleware.py) answers it on the API's routes and the console's guard
(app/web/console/guard.py) on the console's, each with this one error."""

from __future__ import annotations

from app.protocol import errors
from app.storage.errors import Contended

RETRY_AFTER_S = 1


def busy_error(error: Contended) -> errors.ScimError:
    """The 503 for a write given up under contention."""
    return errors.busy(
        f"The server is too busy to make this change now: it waited {error.seconds:.1f} seconds for concurrent "
        f"changes to the same data ({error.attempts} attempt(s)) and was not made. Send it again after "
        f"{RETRY_AFTER_S} second(s), or send fewer changes at once to one group or user.",
        RETRY_AFTER_S)
