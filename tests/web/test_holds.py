"""/api/holds over real HTTP: list, show, approve, and the errors a person can act on."""

from __future__ import annotations

import pytest

from app.config import Settings
from tests.conftest import Scim, assert_invariant, mint_token


@pytest.fixture
async def token(settings: Settings) -> str:
    """The hold API takes an admin token (README: Tokens and scopes); admin includes the SCIM and roster scopes."""
    return await mint_token(settings.db_path, scopes=("admin",))


MEMBERS = "rollcall-members"


async def _held_group(scim: Scim, size: int = 5) -> tuple[list[dict], dict]:
    users = [await scim.create_user(f"w{n}@acme.com") for n in range(size)]
    group = await scim.create_group(MEMBERS, [u["id"] for u in users])
    assert (await scim.delete(f"/Groups/{group['id']}")).status == 204
    return users, group


async def test_holds_are_listed_shown_and_approved(scim: Scim, settings: Settings) -> None:
    users, group = await _held_group(scim)
    listed = await scim.get("/api/holds")
    assert listed.status == 200 and listed.headers["Content-Type"].startswith("application/json")
    [hold] = listed.body["holds"]
    assert hold == {"id": hold["id"], "opened": hold["opened"], "cause": "mass-removal", "token": "tests",
                    "change": {"type": "group.deleted", "groupId": group["id"], "displayName": MEMBERS},
                    "state": "open", "closed": None, "closedBy": None, "count": 5}
    shown = await scim.get(f"/api/holds/{hold['id']}")
    assert shown.status == 200
    assert sorted(p["userName"] for p in shown.body["people"]) == sorted(u["userName"] for u in users)
    assert {(p["role"], p["becomes"], p["reason"], p["outcome"]) for p in shown.body["people"]} == {
        ("member", None, "group-deleted", "held")}
    approved = await scim.post(f"/api/holds/{hold['id']}/approve", {})
    assert approved.status == 200 and approved.body == {"id": hold["id"], "state": "approved", "applied": 5,
                                                         "released": 0}
    assert (await scim.get("/api/holds")).body == {"holds": []}
    closed = (await scim.get(f"/api/holds/{hold['id']}")).body
    assert closed["state"] == "approved" and closed["closedBy"] == "tests" and closed["count"] == 5
    assert {p["outcome"] for p in closed["people"]} == {"applied"}
    events = (await scim.get("/api/events?limit=1000")).body["events"]
    assert events[-1]["type"] == "hold.approved" and events[-1]["token"] == "tests"
    again = await scim.post(f"/api/holds/{hold['id']}/approve", {})
    assert again.status == 409 and "approved already" in again.body["detail"]
    assert assert_invariant(settings.db_path) == {"roster": {}, "held": {}}


async def test_unknown_and_malformed_hold_ids_are_404(scim: Scim) -> None:
    for path in ("/api/holds/999", "/api/holds/abc", "/api/holds/1e3", "/api/holds/%C2%B2",
                 "/api/holds/99999999999999999999999"):
        answer = await scim.get(path)
        assert answer.status == 404 and "GET /api/holds" in answer.body["detail"], (path, answer.body)
        approve = await scim.post(f"{path}/approve", {})
        assert approve.status == 404, (path, approve.body)


async def test_holds_need_a_token(scim: Scim) -> None:
    for method, path in (("GET", "/api/holds"), ("GET", "/api/holds/1"), ("POST", "/api/holds/1/approve")):
        assert (await scim.request(method, path, auth=False)).status == 401


async def test_a_token_without_the_admin_scope_may_not_list_or_approve_holds(scim: Scim, settings: Settings) -> None:
    await _held_group(scim)
    roster_only = Scim(scim.client, await mint_token(settings.db_path, "app", scopes=("scim", "roster")))
    for answer in (await roster_only.get("/api/holds"), await roster_only.post("/api/holds/1/approve", {})):
        assert answer.status == 403 and "admin" in answer.body["detail"]
    assert len(assert_invariant(settings.db_path)["held"]) == 5
