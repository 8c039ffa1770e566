"""`rollcall holds`, `holds show ID` and `holds approve ID` against a database that `rollcall serve` is serving."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx2
import pytest

from tests.conftest import REPO, RunningServer, assert_invariant


def rollcall(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.fixture
def two_holds(running_server: RunningServer) -> RunningServer:
    """Hold 1: the members group of five deleted (mass-removal). Hold 2: the only admin removed (last-admin)."""
    headers = {"Authorization": f"Bearer {running_server.token}"}
    with httpx2.Client(base_url=running_server.base_url, headers=headers, trust_env=False) as http:
        boss = http.post("/Users", json={"userName": "boss@acme.com"}).json()
        admins = http.post("/Groups", json={"displayName": "rollcall-administrators",
                                            "members": [{"value": boss["id"]}]}).json()
        users = [http.post("/Users", json={"userName": f"m{n}@acme.com"}).json() for n in range(5)]
        members = http.post("/Groups", json={"displayName": "rollcall-members",
                                             "members": [{"value": u["id"]} for u in users]}).json()
        assert http.delete(f"/Groups/{members['id']}").status_code == 204
        removed = http.patch(f"/Groups/{admins['id']}", json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": "members", "value": [{"value": boss["id"]}]}]})
        assert removed.status_code == 200
    return running_server


def test_holds_lists_shows_and_approves(two_holds: RunningServer) -> None:
    db = two_holds.db_path
    listed = rollcall("holds", "--db", db)
    assert listed.returncode == 0 and listed.stderr == "2 open holds\n"
    first, second = listed.stdout.splitlines()
    assert first.split()[0] == "1" and "mass-removal" in first and "5 people" in first and "by served" in first
    assert second.split()[0] == "2" and "last-admin" in second and "1 person" in second
    as_json = json.loads(rollcall("holds", "--json", "--db", db).stdout)
    assert [(h["id"], h["cause"], h["count"]) for h in as_json["holds"]] == [(1, "mass-removal", 5),
                                                                             (2, "last-admin", 1)]
    table = rollcall("members", "--csv", "--db", db).stdout.splitlines()
    assert table[0].endswith(",id,hold") and sum(line.endswith(",1") for line in table) == 5
    assert sum(line.endswith(",2") for line in table) == 1
    shown = rollcall("holds", "show", "1", "--db", db)
    assert shown.returncode == 0 and shown.stdout.startswith("hold 1: open, mass-removal, opened ")
    assert shown.stdout.count("member -> leaves (group-deleted)  [held]") == 5

    refused = rollcall("holds", "approve", "2", "--db", db)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("rollcall: Approving hold 2 would leave the organization with no admin")

    approved = rollcall("holds", "approve", "1", "--db", db)
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout == "hold 1 approved: 5 change(s) applied, 0 person(s) released\n"
    state = assert_invariant(db)
    assert list(state["roster"].values()) == ["admin"] and len(state["held"]) == 1
    events = [json.loads(line) for line in rollcall("events", "--json", "--db", db).stdout.splitlines()]
    assert [e["token"] for e in events if e["type"] == "member.left"] == ["rollcall-cli"] * 5
    assert "closed " in rollcall("holds", "show", "1", "--db", db).stdout
    # A person may let the last admin go, by saying so.
    assert rollcall("holds", "approve", "2", "--leave-no-admin", "--db", db).returncode == 0
    assert assert_invariant(db) == {"roster": {}, "held": {}}


@pytest.mark.parametrize(("args", "message"), [
    (("show",), "`rollcall holds show` needs the hold's id"),
    (("approve",), "`rollcall holds approve` needs the hold's id"),
])
def test_holds_without_an_id_says_what_is_missing(running_server: RunningServer, args: tuple[str, ...],
                                                  message: str) -> None:
    result = rollcall("holds", *args, "--db", running_server.db_path)
    assert result.returncode == 2 and result.stderr.startswith(f"rollcall: {message}")


def test_an_unknown_hold_is_one_error_line(running_server: RunningServer) -> None:
    for action in ("show", "approve"):
        result = rollcall("holds", action, "7", "--db", running_server.db_path)
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.startswith("rollcall: ") and "7" in result.stderr and len(result.stderr.splitlines()) == 1
