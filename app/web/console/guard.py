"""The console's middleware: a session for every page but sign-in, a CSRF token on every POST, HTML errors, and
the security headers on every answer."""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from app.protocol import errors
from app.storage.errors import Contended
from app.web.console.keys import SESSION, SESSIONS
from app.web.console.paths import CONSOLE_PREFIX, SIGN_IN, STATIC_PREFIX, is_console_path
from app.web.console.render import error_page, see_other
from app.web.contention import busy_error
from app.web.keys import TOKEN_NAME
from app.web.middleware import Handler

log = logging.getLogger("rollcall.console")

SESSION_COOKIE = "rollcall_session"
SIGN_IN_COOKIE = "rollcall_sign_in"  # the pre-session cookie the login CSRF token is tied to
# No inline script or style anywhere: every script and style sheet is a file under /console/static/.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
STREAM_PATH = "/console/events/stream"
# Reachable without a session: the sign-in page itself, the form it posts to, and the style sheet it uses.
_OPEN = frozenset({("GET", "/"), ("HEAD", "/"), ("GET", CONSOLE_PREFIX), ("HEAD", CONSOLE_PREFIX), ("GET", SIGN_IN),
                   ("POST", SIGN_IN)})


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every console answer (pages, errors, assets, the event stream) gets the headers."""
    if is_console_path(request.path):
        response.headers.update(SECURITY_HEADERS)
        if not request.path.startswith(STATIC_PREFIX):
            # Pages show tokens, secrets and personal data: no cache keeps a copy.
            response.headers["Cache-Control"] = "no-store"


@web.middleware
async def console_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_console_path(request.path):
        return await handler(request)
    try:
        if request.path.startswith(STATIC_PREFIX) or (request.method, request.path) in _OPEN:
            return await handler(request)
        value = request.cookies.get(SESSION_COOKIE, "")
        session = await request.app[SESSIONS].check(value) if value else None
        if session is None:
            if request.path == STREAM_PATH:
                return web.Response(status=401, text="Sign in first.")
            return see_other("/")
        request[SESSION] = session
        request[TOKEN_NAME] = session.token_name  # the access log names who did it, as for the API
        if request.method == "POST":
            form = await request.post()
            presented = form.get("csrf")
            if not isinstance(presented, str) or not _csrf_ok(session.csrf, presented):
                return error_page(request, 403, "Form expired",
                                  "This form's security token is missing or wrong, so nothing was changed. "
                                  "Go back, reload the page and try again.")
        return await handler(request)
    except web.HTTPNotFound:
        return error_page(request, 404, "Not found", f"There is no console page at {request.path}.")
    except web.HTTPMethodNotAllowed as error:
        return error_page(request, 405, "Not allowed",
                          f"{request.method} is not how this page is used; it takes "
                          f"{', '.join(error.allowed_methods)}.")
    except web.HTTPRequestEntityTooLarge:
        return error_page(request, 413, "Too large", "That form was larger than rollcall accepts.")
    except Contended as error:  # the session check's own write, or a console page's
        return _scim_error_page(request, busy_error(error))
    except errors.ScimError as error:
        return _scim_error_page(request, error)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return error_page(request, error.status, error.reason, "rollcall could not answer that request as sent.")
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_page(request, 500, "Internal error", "rollcall hit an internal error; the server log has details.")


def _scim_error_page(request: web.Request, error: errors.ScimError) -> web.Response:
    page = error_page(request, error.status, "Could not do that", error.detail)
    page.headers.update(error.headers)  # a 503's Retry-After
    return page


def _csrf_ok(expected: str, presented: str) -> bool:
    return presented.isascii() and hmac.compare_digest(expected, presented)
