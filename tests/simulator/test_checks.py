"""The selftest's diagnoses and naming rules that need no server."""

from __future__ import annotations

import pytest

from app.simulator.checks import Diagnoser, base_url_warnings, location_problem
from app.simulator.client import Reply, ScimClient, api_root, split_base_url
from app.simulator.selftest import MARKER, Selftest, could_be_role_group

BASE = "https://rollcall.example.com/scim/v2"


@pytest.mark.parametrize("name", ["rollcall-members", "Acme-Administrators-EMEA", "x-guests", "a-b-members-c"])
def test_names_that_some_prefix_makes_a_role_group_are_recognised(name: str) -> None:
    assert could_be_role_group(name)


def test_every_name_the_selftest_gives_is_its_own_and_no_role_group() -> None:
    run = Selftest(BASE, "rc_x", ["jumpcloud", "okta", "entra"])
    names = [run.name(idp, part) for idp in ("jumpcloud", "okta", "entra") for part in ("group", "1", "test")]
    names += [run.person(idp, n).user_name for idp in ("jumpcloud", "okta", "entra") for n in range(3)]
    assert all(name.startswith(f"{MARKER}-{run.run_id}-") and not could_be_role_group(name) for name in names)
    assert Selftest(BASE, "rc_x", []).run_id != run.run_id


def test_locations_must_be_under_the_base_url_used() -> None:
    def created(location: str) -> Reply:
        return Reply(201, {"Location": location}, "", {"id": "u1", "meta": {"location": location}})

    assert location_problem(created(f"{BASE}/Users/u1"), BASE) is None
    assert location_problem(created(f"{BASE}/Users/u1"), BASE + "/") is None
    assert "not under" in location_problem(created("http://127.0.0.1:8080/scim/v2/Users/u1"), BASE)
    assert "not under" in location_problem(created("http://rollcall.example.com/scim/v2/Users/u1"), BASE)


def test_warnings_for_the_base_url() -> None:
    assert base_url_warnings(BASE) == []
    assert base_url_warnings("http://localhost:8080/scim/v2") == []
    [slash] = base_url_warnings(BASE + "/")
    assert "ends with '/'" in slash and slash.endswith(BASE)
    [plain] = base_url_warnings("http://10.0.0.5:8080/scim/v2")
    assert "https://" in plain


def test_entra_flags_ride_on_every_request_and_the_roster_api_sits_beside_scim() -> None:
    assert split_base_url(f"{BASE}?aadOptscim062020") == (BASE, (("aadOptscim062020", None),))
    assert api_root(f"{BASE}/?aadOptscim062020") == "https://rollcall.example.com"


async def test_an_untrusted_certificate_is_not_called_unreachable() -> None:
    diagnoser = Diagnoser(ScimClient(BASE, "rc_x"), BASE)
    failed = Reply(0, {}, "", None, f"{BASE}/Users", "GET", error="ClientConnectorCertificateError: certificate "
                                                                     "verify failed: self-signed certificate")
    assert "TLS certificate" in await diagnoser.cause(failed)
    refused = Reply(0, {}, "", None, f"{BASE}/Users", "GET", error="ClientConnectorError: Connection refused")
    assert "nothing answered" in await diagnoser.cause(refused)


def test_the_simulator_is_a_client_and_imports_none_of_the_server() -> None:
    import ast
    from pathlib import Path

    import app.simulator

    for path in Path(app.simulator.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith("app.") or name.startswith("app.simulator"), f"{path.name} imports {name}"
