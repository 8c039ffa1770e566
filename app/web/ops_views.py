"""Probes for orchestrators and Prometheus: /healthz, /readyz, /metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.storage.schema_version import SCHEMA_VERSION
from app.web.http import json_response
from app.web.keys import DATABASE, METRICS


async def healthz(request: web.Request) -> web.Response:
    """The process answers."""
    return json_response({"status": "ok"}, "application/json")


async def readyz(request: web.Request) -> web.Response:
    """The database answers and its schema is the one this rollcall expects."""
    try:
        version = await request.app[DATABASE].schema_version()
    except Exception as error:  # any failure here means "not ready", which is the answer
        return json_response({"status": "unavailable", "detail": type(error).__name__}, "application/json", 503)
    if version != SCHEMA_VERSION:
        detail = f"schema version {version}, expected {SCHEMA_VERSION}"
        return json_response({"status": "unavailable", "detail": detail}, "application/json", 503)
    return json_response({"status": "ready", "schemaVersion": version}, "application/json")


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
