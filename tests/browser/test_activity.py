"""The activity page in a real browser: a role change the identity provider makes arrives live, without a reload."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.browser.conftest import ADMINS, Session


def test_a_role_change_arrives_live_after_a_scim_patch(signed_in: Session) -> None:
    page = signed_in.page
    console = signed_in.console
    ben = console.users["ben"]
    # The stream's answer (its headers) comes once the server is ready to send: from then on nothing is missed.
    with page.expect_response(lambda answer: urlsplit(answer.url).path == "/console/events/stream") as stream:
        page.goto("/console/events")
    assert stream.value.status == 200
    assert stream.value.headers["content-type"].startswith("text/event-stream")
    before = page.locator("#events > li").count()
    newest = page.locator("#events > li").first.get_attribute("data-seq")
    page.evaluate("window.rollcallNotReloaded = true")  # a reload would forget it

    console.scim.add_to_group(console.groups[ADMINS]["id"], ben["id"])  # member → admin

    change = page.locator('#events > li[data-type="member.role_changed"]').first
    change.wait_for(state="visible")
    assert "Ben Okafor" in change.inner_text() or "ben@acme.example" in change.inner_text(), change.inner_text()
    assert "admin" in change.inner_text()
    assert page.locator("#events > li").count() > before
    assert int(page.locator("#events > li").first.get_attribute("data-seq") or 0) > int(newest or 0)
    assert page.evaluate("window.rollcallNotReloaded === true"), "the page reloaded instead of updating live"
