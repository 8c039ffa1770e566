"""GET /auth/forward: a reverse proxy's question "may this person in, and as what?" (Caddy forward_auth, nginx
auth_request, Traefik ForwardAuth). The answer is in the status and the X-Rollcall-* headers the proxy copies."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from app.domain import forward_auth
from app.protocol import errors
from app.web.http import json_response
from app.web.keys import DATABASE, SETTINGS

# A proxy's subrequest carries the original request's method (nginx auth_request does), so every one is answered.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
MAX_IDENTITY_CHARS = 512


async def forward(request: web.Request) -> web.Response:
    header = request.app[SETTINGS].forward_auth_header
    identity = (request.headers.get(header) or request.query.get("user") or "").strip()
    if not identity:
        raise errors.invalid_value(f"Name the person: the proxy sends them in the {header} header "
                                   "(--forward-auth-header), or ask with ?user=<userName or e-mail>.")
    if len(identity) > MAX_IDENTITY_CHARS:
        raise errors.invalid_value(f"The identity is longer than {MAX_IDENTITY_CHARS} characters; no user has it.")
    try:
        min_role = forward_auth.parse_min_role(request.query.get("min_role"))
    except ValueError as error:
        raise errors.invalid_value(str(error)) from None
    verdict = await forward_auth.decide(request.app[DATABASE], identity, min_role)
    if verdict.refusal is not None:
        raise errors.forbidden(verdict.refusal)
    assert verdict.user_id is not None and verdict.user_name is not None and verdict.role is not None
    response = json_response({"id": verdict.user_id, "userName": verdict.user_name, "role": verdict.role},
                             "application/json")
    # Header values are Latin-1 on the wire; a userName beyond it is sent percent-encoded (RFC 3986) so the
    # answer never fails. X-Rollcall-User-Id is the stable one to key on.
    response.headers["X-Rollcall-Role"] = verdict.role
    response.headers["X-Rollcall-User"] = _header_safe(verdict.user_name)
    response.headers["X-Rollcall-User-Id"] = verdict.user_id
    return response


def _header_safe(value: str) -> str:
    if value.isascii() and value.isprintable():
        return value
    return quote(value, safe="@.+-_~!$&'()*,;=:")
