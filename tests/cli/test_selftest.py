"""`rollcall selftest` against a real `rollcall serve`, directly and through a reverse proxy that reproduces each
misconfiguration: every run must name the right cause and leave the organization exactly as it was."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from app.cli.selftest import IDPS
from app.simulator.dialects import DIALECTS
from app.simulator.selftest import MARKER, Outcome, Selftest
from tests.conftest import REPO, RunningServer, serve_process
from tests.simulator.proxy import Switches, proxy_app, seed_organization, snapshot

THE_WAY_THERE = pytest.mark.engines("sqlite", reason=(
    "what selftest says about the way between it and rollcall (a proxy, TLS, the Host check): HTTP; selftest "
    "itself runs on each engine in test_every_provider_passes_against_a_fresh_rollcall_..."))


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One rollcall for the module, holding a small organization the selftests must not disturb."""
    with serve_process(tmp_path_factory.mktemp("backend")) as server:
        seed_organization(server.base_url, server.token)
        yield server


def selftest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", "selftest", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


async def through_proxy(aiohttp_server: Any, server: RunningServer, switches: Switches, *, suffix: str = "",
                        idps: tuple[str, ...] = IDPS) -> Outcome:
    proxy = await aiohttp_server(proxy_app(server.base_url.removesuffix("/scim/v2"), switches))
    base_url = f"http://127.0.0.1:{proxy.port}/scim/v2{suffix}"
    return await Selftest(base_url, server.token, list(idps)).run()


def failures(outcome: Outcome) -> list[tuple[str, str]]:
    return [(check.name, check.cause) for check in outcome.checks if not check.ok]


def test_the_command_knows_every_simulated_provider() -> None:
    assert tuple(DIALECTS) == IDPS


def test_every_provider_passes_against_a_fresh_rollcall_and_leaves_it_as_it_was(tmp_path: Path,
                                                                                db_location: str) -> None:
    with serve_process(tmp_path, db=db_location) as server:
        seed_organization(server.base_url, server.token)
        before = snapshot(server.base_url, server.token, server.db_path)
        done = selftest("--base-url", server.base_url, "--token", server.token, "--idp", "all")
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert lines[-1] == f"{len(lines) - 1} passed, 0 failed"
        for idp in IDPS:
            assert any(line.startswith("ok") and f" {idp} " in line for line in lines)
        assert "FAIL" not in done.stdout
        assert snapshot(server.base_url, server.token, server.db_path) == before
        assert len(before["members"]["members"]) == 2  # the seeded organization really was there


@THE_WAY_THERE
def test_json_output_is_one_document(backend: RunningServer) -> None:
    done = selftest("--base-url", backend.base_url, "--token", backend.token, "--idp", "okta", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["failed"] == 0 and report["passed"] == len(report["checks"]) > 5
    assert {check["idp"] for check in report["checks"]} == {"setup", "okta", "cleanup"}
    assert report["leftBehind"] == []


@THE_WAY_THERE
async def test_all_pass_behind_a_well_configured_proxy(aiohttp_server: Any, backend: RunningServer) -> None:
    before = snapshot(backend.base_url, backend.token, backend.db_path)
    outcome = await through_proxy(aiohttp_server, backend, Switches())
    assert failures(outcome) == [] and outcome.passed > 30 and outcome.left_behind == []
    assert snapshot(backend.base_url, backend.token, backend.db_path) == before


@THE_WAY_THERE
async def test_a_proxy_that_strips_authorization_is_named(aiohttp_server: Any, backend: RunningServer) -> None:
    outcome = await through_proxy(aiohttp_server, backend, Switches(strip_authorization=True))
    [(_name, cause)] = failures(outcome)
    assert "strips the Authorization header" in cause
    [check] = [check for check in outcome.checks if not check.ok]
    assert "401" in check.seen


@THE_WAY_THERE
async def test_a_wrong_token_is_not_blamed_on_the_proxy(aiohttp_server: Any, backend: RunningServer) -> None:
    proxy = await aiohttp_server(proxy_app(backend.base_url.removesuffix("/scim/v2"), Switches()))
    outcome = await Selftest(f"http://127.0.0.1:{proxy.port}/scim/v2", "rc_wrong", list(IDPS)).run()
    [(_name, cause)] = failures(outcome)
    assert "not a live rollcall token" in cause


@THE_WAY_THERE
async def test_a_body_limit_at_the_proxy_is_named(aiohttp_server: Any, backend: RunningServer) -> None:
    before = snapshot(backend.base_url, backend.token, backend.db_path)
    outcome = await through_proxy(aiohttp_server, backend, Switches(max_body_bytes=16 * 1024))
    [(name, cause)] = failures(outcome)
    assert "large group update" in name and "a body limit at the proxy" in cause
    assert outcome.left_behind == []  # the group whose update was refused is removed all the same
    assert outcome.checks[-1].idp == "cleanup" and outcome.checks[-1].ok
    assert snapshot(backend.base_url, backend.token, backend.db_path) == before


@THE_WAY_THERE
async def test_a_proxy_that_rewrites_host_shows_as_a_base_url_mismatch(aiohttp_server: Any,
                                                                       backend: RunningServer) -> None:
    outcome = await through_proxy(aiohttp_server, backend, Switches(rewrite_host=True))
    [(name, cause)] = failures(outcome)
    assert "name the Base URL used" in name
    assert "--base-url" in cause and "Host" in cause
    [check] = [check for check in outcome.checks if not check.ok]
    assert backend.base_url.removesuffix("/scim/v2") in check.seen  # the address rollcall gave instead


@THE_WAY_THERE
async def test_a_trailing_slash_the_proxy_cannot_route_is_named(aiohttp_server: Any, backend: RunningServer) -> None:
    outcome = await through_proxy(aiohttp_server, backend, Switches(reject_double_slash=True), suffix="/")
    [(_name, cause)] = failures(outcome)
    assert "trailing slash" in cause
    assert any(check.warning and "ends with '/'" in check.name for check in outcome.checks)


@THE_WAY_THERE
async def test_a_trailing_slash_rollcall_accepts_is_only_a_warning(aiohttp_server: Any,
                                                                   backend: RunningServer) -> None:
    outcome = await through_proxy(aiohttp_server, backend, Switches(), suffix="/")
    assert failures(outcome) == []
    assert next(check.name for check in outcome.checks if check.warning).startswith("the Base URL ends with '/'")


@THE_WAY_THERE
async def test_a_firewall_refusing_the_scim_content_type_is_named(aiohttp_server: Any,
                                                                  backend: RunningServer) -> None:
    outcome = await through_proxy(aiohttp_server, backend, Switches(refuse_scim_json=True))
    [(_name, cause)] = failures(outcome)
    assert "refuses the content type application/scim+json" in cause


@THE_WAY_THERE
async def test_filters_lost_on_the_way_never_make_it_touch_anyone_else(aiohttp_server: Any,
                                                                       backend: RunningServer) -> None:
    # Every lookup then answers with the whole organization: the selftest must not take anyone in it for its own.
    before = snapshot(backend.base_url, backend.token, backend.db_path)
    outcome = await through_proxy(aiohttp_server, backend, Switches(drop_query=True))
    assert {cause for _name, cause in failures(outcome)} == {
        "the userName filter does not match exactly (does a proxy drop the query string?)"}
    assert outcome.left_behind == []
    assert snapshot(backend.base_url, backend.token, backend.db_path) == before


@pytest.mark.parametrize("path", ["", "/scim", "/scim/v1"])
@THE_WAY_THERE
async def test_a_base_url_without_the_scim_root_is_named(backend: RunningServer, path: str) -> None:
    outcome = await Selftest(backend.base_url.removesuffix("/scim/v2") + path, backend.token, list(IDPS)).run()
    [(_name, cause)] = failures(outcome)
    assert "the Base URL must end in /scim/v2" in cause


@THE_WAY_THERE
async def test_a_403_is_reported_as_a_token_scope(aiohttp_server: Any, backend: RunningServer) -> None:
    # rollcall has no scopes yet: the proxy answers 403 to Okta's PUT of a group as a scoped token would get.
    before = snapshot(backend.base_url, backend.token, backend.db_path)
    outcome = await through_proxy(aiohttp_server, backend, Switches(forbid=(("PUT", "/Groups/"),)))
    [(name, cause)] = failures(outcome)
    assert "(PUT)" in name and "wrong scope" in cause
    assert [check.idp for check in outcome.checks if not check.ok] == ["okta"]
    assert snapshot(backend.base_url, backend.token, backend.db_path) == before


@pytest.mark.parametrize("kind", ["user", "group"])
async def test_it_refuses_to_run_when_the_token_cannot_delete(aiohttp_server: Any, running_server: RunningServer,
                                                              kind: str) -> None:
    server = running_server
    endpoint = "/Users/" if kind == "user" else "/Groups/"
    outcome = await through_proxy(aiohttp_server, server, Switches(forbid=(("DELETE", endpoint),)))
    assert outcome.refused is not None and f"can create a {kind} but not delete it" in outcome.refused
    assert not any(check.idp in IDPS for check in outcome.checks)  # no provider check ran
    [refusal, cleanup] = [check for check in outcome.checks if not check.ok]
    assert (refusal.idp, cleanup.idp) == ("setup", "cleanup") and "403" in refusal.seen
    # What it could not delete is named (a user is deactivated, so that it is on nobody's roster).
    [left] = outcome.left_behind
    assert left.kind == kind and left.name.startswith(MARKER) and left.name in cleanup.seen
    after = snapshot(server.base_url, server.token, server.db_path)
    assert after["members"]["members"] == []
    if kind == "user":
        [user] = after["users"]["Resources"]
        assert user["id"] == left.id and user["active"] is False
        assert after["groups"]["totalResults"] == 0
    else:
        [group] = after["groups"]["Resources"]
        assert group["id"] == left.id and after["users"]["totalResults"] == 0


@THE_WAY_THERE
def test_a_certificate_no_provider_trusts_is_named(tmp_path: Path) -> None:
    authority = trustme.CA()  # a private CA: what a self-signed deployment looks like to JumpCloud
    certificate = authority.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.private_key_pem.write_to_path(key)
    certificate.cert_chain_pems[0].write_to_path(cert)
    with serve_process(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key), scheme="https") as server:
        done = selftest("--base-url", server.base_url, "--token", server.token, "--idp", "jumpcloud")
    assert done.returncode == 1
    assert "usual cause: the TLS certificate is not one a provider trusts" in done.stdout
    assert done.stdout.splitlines()[-1] == "1 passed, 1 failed"  # the failed reach, and the cleanup (nothing)


@THE_WAY_THERE
def test_a_refusal_by_rollcall_itself_passes_on_what_rollcall_says(tmp_path: Path) -> None:
    # --trusted-hosts names the public address, and the selftest uses another: rollcall's 400 says what to fix.
    with serve_process(tmp_path, "--trusted-hosts", "rollcall.example.com") as server:
        done = selftest("--base-url", server.base_url, "--token", server.token)
    assert done.returncode == 1
    assert "usual cause: rollcall itself refused it, and says why: The Host header names a host" in done.stdout
    assert "--trusted-hosts" in done.stdout


def test_http_to_a_public_address_is_warned_about() -> None:
    from app.simulator.checks import base_url_warnings

    assert base_url_warnings("http://127.0.0.1:8080/scim/v2") == []
    assert base_url_warnings("https://rollcall.example.com/scim/v2") == []
    [warning] = base_url_warnings("http://rollcall.example.com/scim/v2")
    assert "https://" in warning and "HTTPS" in warning


@THE_WAY_THERE
async def test_an_interrupted_selftest_still_cleans_up(aiohttp_server: Any, backend: RunningServer) -> None:
    before = snapshot(backend.base_url, backend.token, backend.db_path)
    # Slow enough that the run is surely mid-way through a provider when the signal comes.
    proxy = await aiohttp_server(proxy_app(backend.base_url.removesuffix("/scim/v2"), Switches(delay=0.02)))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "selftest", "--base-url", f"http://127.0.0.1:{proxy.port}/scim/v2",
        "--token", backend.token, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    seen = []
    while not any(" okta " in line for line in seen):
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line, "the selftest ended before it reached Okta"
        seen.append(line)
    process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 130, out.decode() + err.decode()
    assert "ok    cleanup   removed all" in out.decode() and b"interrupted" in err
    assert snapshot(backend.base_url, backend.token, backend.db_path) == before
