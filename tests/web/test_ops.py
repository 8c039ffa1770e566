"""Health probes and Prometheus metrics."""

from __future__ import annotations

import http.client
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from app.config import Settings
from app.storage.schema_version import SCHEMA_VERSION
from tests.conftest import Scim, mint_token, serve_process


async def test_health_probes_answer_without_a_token(scim: Scim) -> None:
    health = await scim.get("/healthz", auth=False)
    assert health.status == 200 and health.body == {"status": "ok"}
    ready = await scim.get("/readyz", auth=False)
    assert ready.status == 200 and ready.body["status"] == "ready" and ready.body["schemaVersion"] == SCHEMA_VERSION


async def test_metrics_are_off_by_default(scim: Scim) -> None:
    assert (await scim.get("/metrics")).status == 404


async def test_metrics_count_by_route_template_without_personal_data(scim_with: Any, settings: Settings) -> None:
    scim = await scim_with(metrics=True)
    scraper = await mint_token(settings.db_path, "prometheus", ("admin",))  # /metrics needs the admin scope
    user = await scim.create_user("secret.name@acme.com")
    await scim.get(f"/Users/{user['id']}")
    await scim.get("/Users/nope")
    assert (await scim.get("/metrics", auth=False)).status == 401
    assert (await scim.get("/metrics")).status == 403  # a scim+roster token
    response = await scim.client.get("/metrics", headers={"Authorization": f"Bearer {scraper}"})
    text = await response.text()
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
    assert re.search(r'rollcall_requests_total\{method="GET",route="/scim/v2/Users/\{id\}",status="200"\} 1\.0', text)
    assert re.search(r'rollcall_requests_total\{method="GET",route="/scim/v2/Users/\{id\}",status="404"\} 1\.0', text)
    assert 'rollcall_request_duration_seconds_bucket{le="0.005",method="POST",route="/scim/v2/Users"}' in text
    assert user["id"] not in text and "secret.name" not in text and "nope" not in text


async def test_every_response_carries_a_request_id(scim: Scim) -> None:
    answer = await scim.get("/Users", headers={"X-Request-Id": "trace-42"})
    assert answer.headers["X-Request-Id"] == "trace-42"
    assert len((await scim.get("/Users")).headers["X-Request-Id"]) == 16


async def test_a_request_id_that_could_forge_a_log_line_is_replaced(scim: Scim) -> None:
    answer = await scim.get("/Users", headers={"X-Request-Id": "abc def\tINFO forged"})
    assert answer.headers["X-Request-Id"] != "abc def\tINFO forged"
    assert len(answer.headers["X-Request-Id"]) == 16


@pytest.mark.engines("sqlite", reason="request logging of /healthz, no storage")
def test_a_request_id_shaped_like_a_token_never_reaches_the_log(tmp_path: Path) -> None:
    # The request log is written directly, not through the log handler that redacts token-shaped text, and it
    # writes the client's X-Request-Id: a client (or a proxy) that sends its token there must not get it logged.
    with serve_process(tmp_path) as server:
        url = urlsplit(server.base_url)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        conn.request("GET", "/healthz", headers={"X-Request-Id": server.token})
        answer = conn.getresponse()
        answer.read()
        conn.close()
        assert answer.status == 200 and answer.getheader("X-Request-Id") != server.token
        time.sleep(0.2)  # the log line is written as the answer goes out
        log = server.log
    assert "route=/healthz" in log
    assert server.token not in log and server.token[3:] not in log
