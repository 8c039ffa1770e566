"""Probes for orchestrators and Prometheus: /healthz, /readyz, /metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.storage.database import SCHEMA_VERSION
from app.web.keys import DATABASE, METRICS


async def healthz(request: web.Request) -> web.Response:
    """The process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """The database answers and its schema is the one this rollcall expects."""
    try:
        version = await request.app[DATABASE].current_schema_version()
    except Exception as error:  # any failure here means "not ready", which is the answer
        return web.json_response({"status": "unavailable", "detail": type(error).__name__}, status=503)
    if version != SCHEMA_VERSION:
        return web.json_response({"status": "unavailable",
                                  "detail": f"schema version {version}, expected {SCHEMA_VERSION}"}, status=503)
    return web.json_response({"status": "ready", "schemaVersion": version})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
