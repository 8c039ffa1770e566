"""Holds in a real browser: a mass removal the identity provider makes waits on the holds page, and is approved
only through the confirmation step."""

from __future__ import annotations

from tests.browser.conftest import Session


def test_a_hold_is_approved_through_the_confirmation_step(signed_in: Session) -> None:
    console = signed_in.console
    # Five people of one role group, then the group deleted: more than 3 departures and more than 10% of the
    # members at once, so rollcall holds them (app/domain/holds.py's defaults) until a person approves.
    team = [console.scim.create_user(f"w{n}", f"Worker {n}") for n in range(5)]
    group = console.scim.create_group("rollcall-members-warehouse", [u["id"] for u in team])
    assert console.scim.request("DELETE", f"/Groups/{group['id']}")[0] == 204
    status, listed = console.admin_api.request("GET", "/api/holds")
    assert status == 200 and len(listed["holds"]) == 1, listed
    hold_id = listed["holds"][0]["id"]

    page = signed_in.page
    page.locator("nav").get_by_role("link", name="Holds", exact=True).click()
    page.wait_for_url("**/console/holds")
    hold = page.locator(f'[data-hold-id="{hold_id}"]')
    assert hold.is_visible()
    with page.expect_navigation():
        hold.get_by_role("button", name="Approve").click()
    # The first POST only asks: the hold is still open until Confirm.
    assert console.admin_api.request("GET", "/api/holds")[1]["holds"] != []
    assert page.locator('input[name="csrf"]').count() >= 1
    with page.expect_navigation():
        page.get_by_role("button", name="Confirm").click()
    assert console.admin_api.request("GET", "/api/holds")[1] == {"holds": []}
    status, shown = console.admin_api.request("GET", f"/api/holds/{hold_id}")
    assert shown["state"] == "approved" and "console" in (shown["closedBy"] or ""), shown  # the token's name
    page.goto("/console/holds")
    assert page.locator(f'[data-hold-id="{hold_id}"]').count() == 0
    page.goto("/console/members")
    assert page.locator('#members tr[data-user-id]').count() == 3  # the five left the roster
