"""Signing in to the console in a real browser: the admin token opens a session; a wrong one, or one without the
admin scope, shows the error and opens none; the form works with the keyboard alone."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Session

SESSION_COOKIE = "rollcall_session"


def test_an_admin_token_signs_in_to_the_members_page(session: Session) -> None:
    session.sign_in()
    assert SESSION_COOKIE in session.cookie_names()
    assert session.page.locator("h1").count() == 1
    assert session.page.locator("nav").get_by_role("link", name="Members").is_visible()
    session.page.goto("/")  # with a session, the sign-in page sends you on to the members
    assert session.page.url.endswith("/console/members")


@pytest.mark.parametrize(("which", "status"), [("wrong", 401), ("not-admin", 403)])
def test_a_wrong_or_non_admin_token_shows_the_error_and_opens_no_session(session: Session, which: str,
                                                                        status: int) -> None:
    page = session.page
    page.goto("/")
    token = "rc_" + "x" * 40 if which == "wrong" else session.console.idp_token
    page.get_by_label("Admin token").fill(token)
    # Chromium logs the sign-in's own answer as an error: expected here, and only here.
    session.log.expect_error(f"status of {status} (", "/console/sign-in)")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Sign in").click()
    answer = navigation.value
    assert answer is not None and answer.status == status
    error = page.locator("#sign-in-error")
    assert error.get_attribute("role") == "alert"
    assert error.is_visible() and error.inner_text().strip()
    assert token not in page.content()  # the token is never echoed back
    assert SESSION_COOKIE not in session.cookie_names()
    page.goto("/console/members")  # and the console's pages stay closed
    assert page.get_by_label("Admin token").is_visible()


def test_the_sign_in_form_works_with_the_keyboard_alone(session: Session) -> None:
    page = session.page
    page.goto("/")
    for _ in range(20):  # Tab from the top of the page to the token field, as a keyboard user would
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == "token":
            break
    else:
        raise AssertionError("Tab never reached the token field")
    page.keyboard.type(session.console.admin_token)
    page.keyboard.press("Tab")
    focused = page.evaluate("[document.activeElement.tagName, document.activeElement.textContent.trim()]")
    assert focused[0] == "BUTTON" and "Sign in" in focused[1], focused
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/console/members")
    assert SESSION_COOKIE in session.cookie_names()
