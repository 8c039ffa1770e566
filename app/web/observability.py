"""One log line per request, and Prometheus metrics by route template (never by URL: no personal data)."""

from __future__ import annotations

import random
import re
import time

from aiohttp import web

from app.web import route_paths
from app.web.keys import ACCESS_LOG, METRICS, TOKEN_NAME
from app.web.log_filters import redact
from app.web.middleware import Handler

# A client's X-Request-Id is echoed into the log, so only a plain token is taken: no newline can forge a line.
# Nor one shaped like a bearer token: the request log is written directly, past the log handler's redaction.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _request_id(offered: str | None) -> str:
    if offered and _REQUEST_ID.fullmatch(offered) and redact(offered) == offered:
        return offered
    # A correlation id, not a secret: no os.urandom syscall per request for it.
    return f"{random.getrandbits(64):016x}"


_templates: dict[object, str] = {}


def route_template(request: web.Request) -> str:
    """The route's pattern, e.g. /scim/v2/Users/{id}: ids and filters never reach logs or metric labels."""
    resource = getattr(request.match_info.route, "resource", None)
    if resource is None:
        return "unmatched"
    template = _templates.get(resource)
    if template is None:
        template = route_paths.template(resource.canonical)
        _templates[resource] = template
    return template


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware: sees the final status of every request, errors included."""
    request_id = _request_id(request.headers.get("X-Request-Id"))
    started = time.perf_counter()
    response = await handler(request)
    elapsed = time.perf_counter() - started
    response.headers["X-Request-Id"] = request_id
    route = route_template(request)
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.requests.labels(request.method, route, str(response.status)).inc()
        metrics.latency.labels(request.method, route).observe(elapsed)
    log = request.app.get(ACCESS_LOG)
    if log is not None:
        log.write(request_id, request.method, route, response.status, round(elapsed * 1000, 2),
                  request.get(TOKEN_NAME, "-"))
    return response
