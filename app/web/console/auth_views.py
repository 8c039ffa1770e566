"""Signing in and out: `/` (the sign-in form), POST /console/sign-in, a one-time sign-in link, POST sign-out."""

from __future__ import annotations

import logging
import math

from aiohttp import web

from app.domain import scopes
from app.domain.sessions import ABSOLUTE_SECONDS, csrf_for, csrf_matches, new_secret
from app.web.console.guard import SESSION_COOKIE, SIGN_IN_COOKIE
from app.web.console.keys import BACKOFF, SESSIONS
from app.web.console.paths import HOME
from app.web.console.render import render, see_other
from app.web.keys import AUTHENTICATOR, SETTINGS

log = logging.getLogger("rollcall.console")

_SIGN_IN_PURPOSE = "sign-in"


def _secure(request: web.Request) -> bool:
    """Cookies are Secure when rollcall serves TLS or its public address is https (TLS ended at a proxy)."""
    settings = request.app[SETTINGS]
    return bool(settings.tls_cert) or (settings.base_url or "").startswith("https://")


def _set_cookie(request: web.Request, response: web.Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="Strict",
                        secure=_secure(request))


def _sign_in_form(request: web.Request, status: int = 200, error: str = "", retry_after: int = 0) -> web.Response:
    """The form, tied to a pre-session cookie: its hidden csrf field is derived from the cookie, so a form posted
    from another site (which cannot read or set our cookie) is refused: login CSRF."""
    pre = request.cookies.get(SIGN_IN_COOKIE, "")
    fresh = not (16 <= len(pre) <= 128 and pre.isascii())
    if fresh:
        pre = new_secret()
    response = render(request, "sign_in.html", {"sign_in_csrf": csrf_for(pre, _SIGN_IN_PURPOSE), "error": error},
                      status=status)
    if fresh:
        _set_cookie(request, response, SIGN_IN_COOKIE, pre, 3600)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _slowed_down(request: web.Request, wait: float) -> web.Response:
    seconds = math.ceil(wait)
    return _sign_in_form(request, 429, f"Too many failed sign-ins from your address: try again in {seconds} "
                                       f"second{'s' if seconds != 1 else ''}.", retry_after=seconds)


async def index(request: web.Request) -> web.Response:
    """`/`: the sign-in form, or the members page for someone signed in."""
    value = request.cookies.get(SESSION_COOKIE, "")
    if value and await request.app[SESSIONS].check(value) is not None:
        return see_other(HOME)
    return _sign_in_form(request)


async def sign_in(request: web.Request) -> web.Response:
    form = await request.post()
    client = request.remote or "unknown"
    backoff = request.app[BACKOFF]
    if (wait := backoff.wait(client)) > 0:
        return _slowed_down(request, wait)
    pre = request.cookies.get(SIGN_IN_COOKIE, "")
    presented = form.get("csrf")
    if not pre or not isinstance(presented, str) or not csrf_matches(pre, _SIGN_IN_PURPOSE, presented):
        return _sign_in_form(request, 403, "The sign-in form had expired (or cookies are off): it is fresh now, "
                                           "paste the token again.")
    token = form.get("token")
    identity = await request.app[AUTHENTICATOR].authenticate(token.strip()) if isinstance(token, str) else None
    if identity is None:
        backoff.failed(client)
        log.warning("console sign-in from %s refused: not a live token", client)  # never the token itself
        return _sign_in_form(request, 401, "That token is not valid: it is unknown, expired or revoked. Paste the "
                                           "admin token `rollcall serve` printed on first start.")
    if scopes.ADMIN not in identity.scopes:
        backoff.failed(client)
        log.warning("console sign-in from %s refused: token %r lacks the admin scope", client, identity.name)
        return _sign_in_form(request, 403, f"The token {identity.name!r} lacks the admin scope the console needs; "
                                           "create one with `rollcall token create --name NAME --scope admin`.")
    backoff.succeeded(client)
    log.info("console sign-in from %s with token %r", client, identity.name)
    return await _signed_in(request, await request.app[SESSIONS].open(identity.name))


async def _signed_in(request: web.Request, value: str) -> web.Response:
    response = see_other(HOME)
    _set_cookie(request, response, SESSION_COOKIE, value, ABSOLUTE_SECONDS)
    response.del_cookie(SIGN_IN_COOKIE, path="/")
    return response


async def sign_in_link(request: web.Request) -> web.Response:
    """GET /console/sign-in?once=CODE: a one-time link (`rollcall demo` prints one) only opens a session and
    redirects; a used, expired or unknown code gets the form."""
    code = request.query.get("once", "")
    client = request.remote or "unknown"
    if code and (wait := request.app[BACKOFF].wait(client)) > 0:
        return _slowed_down(request, wait)
    value = await request.app[SESSIONS].redeem(code) if code else None
    if value is None:
        if code:
            request.app[BACKOFF].failed(client)
        return _sign_in_form(request, 401 if code else 200,
                             "That sign-in link has been used or has expired; paste an admin token instead."
                             if code else "")
    return await _signed_in(request, value)


async def sign_out(request: web.Request) -> web.Response:
    await request.app[SESSIONS].end(request.cookies.get(SESSION_COOKIE, ""))
    response = see_other("/")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response
