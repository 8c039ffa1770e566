"""A person's page in a real browser: reached from the members table, it says why they have their role."""

from __future__ import annotations

from tests.browser.conftest import Session


def test_a_persons_page_says_why_they_have_their_role(signed_in: Session) -> None:
    page = signed_in.page
    ada = signed_in.console.users["ada"]
    with page.expect_navigation():
        page.locator(f'#members tr[data-user-id="{ada["id"]}"]').get_by_role("link", name="Ada Lovelace").click()
    assert page.url.endswith(f"/console/members/{ada['id']}")
    assert page.locator("h1").inner_text().strip() == "Ada Lovelace"
    why = page.locator("#why").inner_text()
    assert why.startswith("admin because") and "rollcall-administrators" in why, why
    assert page.locator("#timeline li").count() >= 1
    assert "joined" in page.locator("#timeline").inner_text().lower()
