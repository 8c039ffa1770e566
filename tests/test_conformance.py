"""The third-party scim2-tester suite against `rollcall serve` as a separate process."""

from __future__ import annotations

from tests.conftest import RunningServer


def test_scim2_tester_reports_no_failures(running_server: RunningServer) -> None:
    from httpx2 import Client, Timeout
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import Status, check_server

    http = Client(base_url=running_server.base_url + "/", timeout=Timeout(15), trust_env=False,
                  headers={"Authorization": f"Bearer {running_server.token}", "Accept": "application/scim+json"})
    try:
        results = check_server(SyncSCIMClient(http), raise_exceptions=False)
    finally:
        http.close()
    failures = [f"{r.resource_type or '-'} {r.title}: {r.reason}" for r in results
                if r.status in (Status.ERROR, Status.CRITICAL)]
    assert len(results) >= 90
    assert any(r.resource_type for r in results), "no per-resource check ran"
    assert failures == []
