"""Request middleware: SCIM errors for every failure, and bearer-token authentication."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from app.domain import scopes
from app.protocol import errors
from app.storage.errors import Contended
from app.web.console.paths import is_console_path
from app.web.contention import busy_error
from app.web.http import error_response
from app.web.keys import AUTHENTICATOR, SETTINGS, TOKEN_NAME

log = logging.getLogger("rollcall.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Routes a load balancer or orchestrator probes without credentials.
UNAUTHENTICATED_PATHS = frozenset({"/healthz", "/readyz"})


@web.middleware
async def scim_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a SCIM Error body (RFC 7644 §3.12); never leak a traceback."""
    try:
        return await handler(request)
    except errors.ScimError as error:
        return error_response(error)
    except Contended as error:
        return error_response(busy_error(error))
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].max_body_bytes
        return error_response(errors.ScimError(413, f"The request body is larger than the limit of {limit} bytes."))
    except web.HTTPMethodNotAllowed as error:
        return error_response(errors.method_not_allowed(request.method, request.path, sorted(error.allowed_methods)))
    except web.HTTPNotFound:
        return error_response(errors.not_found(f"There is nothing at {request.path}."))
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return error_response(errors.ScimError(error.status, error.reason))
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(errors.ScimError(500, "rollcall hit an internal error; the server log has details."))


@web.middleware
async def trusted_host(request: web.Request, handler: Handler) -> web.StreamResponse:
    """With --trusted-hosts (init_app adds it only then), a request naming another Host is refused before it can
    reach meta.location."""
    trusted = request.app[SETTINGS].trusted_hosts
    if trusted and request.path not in UNAUTHENTICATED_PATHS:
        host = request.headers.get("Host", "").lower()  # not request.host: it may block on a DNS lookup
        if host not in trusted and host.rpartition(":")[0] not in trusted:
            raise errors.invalid_value("The Host header names a host this server does not answer for; "
                                       "use one of the names in --trusted-hosts.")
    return await handler(request)


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every route but the health probes needs `Authorization: Bearer <token>` of a live token, with the scope
    its path needs (app/domain/scopes.py): no live token is a 401, a live one without the scope a 403. The
    console's paths take its session cookie instead (app/web/console/guard.py), and never a bearer token."""
    if request.path in UNAUTHENTICATED_PATHS or is_console_path(request.path):
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if not scheme:
        raise errors.unauthorized("Authentication required: send 'Authorization: Bearer <token>'.")
    if scheme.lower() != "bearer" or not token:
        raise errors.unauthorized("Unsupported Authorization header: send 'Authorization: Bearer <token>'.")
    identity = await request.app[AUTHENTICATOR].authenticate(token)
    if identity is None:
        raise errors.unauthorized("The bearer token is not valid (unknown, expired or revoked).")
    request[TOKEN_NAME] = identity.name
    # A path no route answers is a 404 for any live token, whatever its scopes: no scope is needed to learn that.
    if request.match_info.http_exception is None:
        needed = scopes.required_scope(request.path)
        if not scopes.allows(identity.scopes, needed):
            raise errors.forbidden(f"This token lacks the {needed!r} scope that {request.path} needs; create one "
                                   f"with `rollcall token create --name NAME --scope {needed}`.")
    return await handler(request)
