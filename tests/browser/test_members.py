"""The members page in a real browser: the seeded people with their role badges, search and the role filter, a
phone-sized screen, and values from the identity provider shown as text."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import MEMBERS, Session


def row(session: Session, handle: str) -> Any:
    return session.page.locator(f'#members tr[data-user-id="{session.console.users[handle]["id"]}"]')


def test_a_seeded_member_is_listed_with_their_role_badge(signed_in: Session) -> None:
    ada = row(signed_in, "ada")
    assert ada.is_visible()
    assert ada.get_by_role("link", name="Ada Lovelace").get_attribute("href") == \
        f"/console/members/{signed_in.console.users['ada']['id']}"
    assert "ada@acme.example" in ada.inner_text()
    badge = ada.locator("span.role")
    assert badge.inner_text().strip() == "admin" and "role-admin" in (badge.get_attribute("class") or "")
    assert "rollcall-administrators" in ada.inner_text()
    assert row(signed_in, "cleo").locator("span.role.role-guest").inner_text().strip() == "guest"
    assert signed_in.page.locator('#members tr[data-user-id]').count() == 3
    counts = signed_in.page.locator("#role-counts").inner_text()
    assert "admin" in counts and "member" in counts and "guest" in counts


def test_search_and_the_role_filter_narrow_the_table(signed_in: Session) -> None:
    page = signed_in.page
    search = page.locator('form[role="search"]')
    search.get_by_label("Search").fill("okafor")
    with page.expect_navigation():
        search.get_by_label("Search").press("Enter")
    assert page.locator('#members tr[data-user-id]').count() == 1 and row(signed_in, "ben").is_visible()
    search = page.locator('form[role="search"]')
    search.get_by_label("Search").fill("")
    search.locator('select[name="role"]').select_option("guest")
    with page.expect_navigation():
        search.get_by_label("Search").press("Enter")
    assert page.locator('#members tr[data-user-id]').count() == 1 and row(signed_in, "cleo").is_visible()


def test_the_members_page_fits_a_phone_without_scrolling_sideways(open_session: Any) -> None:
    phone = open_session(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True,
                         has_touch=True)
    phone.sign_in()
    assert row(phone, "ada").is_visible()
    widths = phone.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide on a {widths[1]} px screen"


def test_a_display_name_with_markup_shows_as_text_and_runs_nothing(signed_in: Session) -> None:
    console = signed_in.console
    markup = "<script>alert(1)</script>"
    mallory = console.scim.create_user("mallory", markup)
    console.scim.add_to_group(console.groups[MEMBERS]["id"], mallory["id"])
    page = signed_in.page
    page.goto("/console/members")
    link = page.locator(f'#members tr[data-user-id="{mallory["id"]}"] a')
    assert link.inner_text().strip() == markup
    with page.expect_navigation():
        link.click()
    assert page.locator("h1").inner_text().strip() == markup
    page.goto("/console/events")
    assert markup in page.locator("#events").inner_text() or "mallory@acme.example" in page.locator(
        "#events").inner_text()
    assert signed_in.log.dialogs == [], "a script from the identity provider's data ran"
    assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
