"""One log line per request, and Prometheus metrics by route template (never by URL: no personal data)."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time

from aiohttp import web

from app.web.keys import METRICS, SETTINGS, TOKEN_NAME
from app.web.middleware import Handler

access_log = logging.getLogger("rollcall.access")

_ROUTE_VARIABLE = re.compile(r"\{_lead\}|\{_trail\}")


def route_template(request: web.Request) -> str:
    """The route's pattern, e.g. /scim/v2/Users/{id}: ids and filters never reach logs or metric labels."""
    route = request.match_info.route
    resource = getattr(route, "resource", None)
    if resource is None:
        return "unmatched"
    return _ROUTE_VARIABLE.sub(lambda m: "/" if m.group() == "{_lead}" else "", resource.canonical)


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware: sees the final status of every request, errors included."""
    request_id = request.headers.get("X-Request-Id", "")[:64] or secrets.token_hex(8)
    started = time.perf_counter()
    response = await handler(request)
    elapsed = time.perf_counter() - started
    response.headers["X-Request-Id"] = request_id
    route = route_template(request)
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.requests.labels(request.method, route, str(response.status)).inc()
        metrics.latency.labels(request.method, route).observe(elapsed)
    if access_log.isEnabledFor(logging.INFO):
        fields = {"request_id": request_id, "method": request.method, "route": route, "status": response.status,
                  "duration_ms": round(elapsed * 1000, 2), "token": request.get(TOKEN_NAME, "-")}
        if request.app[SETTINGS].log_format == "json":
            access_log.info(json.dumps(fields))
        else:
            access_log.info(" ".join(f"{key}={value}" for key, value in fields.items()))
    return response


class _CachedTimeFormatter(logging.Formatter):
    """formatTime runs strftime for every line; at thousands of lines a second the second repeats."""

    _second = -1
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int(record.msecs):03d}Z"


class JsonFormatter(_CachedTimeFormatter):
    """Log records as JSON lines; an access line's fields are merged in, not nested."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name}
        message = record.getMessage()
        if record.name == access_log.name:
            line.update(json.loads(message))
        else:
            line["message"] = message
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


def configure_logging(log_format: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json"
                         else _CachedTimeFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
