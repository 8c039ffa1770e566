"""The browser tests' own machinery: Debian's chromium starts offline, reaches the served rollcall, and every
console error or page error it reports is caught (so that the console tests' "no error on any page" can fail)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.browser.conftest import BrowserLog, Session

if TYPE_CHECKING:
    from playwright.sync_api import Browser


def test_chromium_reaches_the_served_rollcall(session: Session) -> None:
    # /healthz is JSON, not a console page: the icon Chromium asks for beside it is none of this test's business.
    session.page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    answer = session.page.goto("/healthz")
    assert answer is not None and answer.status == 200
    assert "Chrome/" in session.page.evaluate("navigator.userAgent")
    assert session.log.errors == []


def test_console_errors_and_page_errors_are_caught(browser: Browser) -> None:
    context = browser.new_context()
    try:
        log = BrowserLog()
        context.on("page", log.watch)  # as open_session watches every page of its context
        page = context.new_page()
        page.set_content("<title>errors on purpose</title>")
        page.evaluate("console.error('seen by the log')")
        page.evaluate("setTimeout(() => { throw new Error('uncaught on purpose') })")
        page.wait_for_timeout(200)
    finally:
        context.close()
    assert any("seen by the log" in error for error in log.errors), log.errors
    assert any("uncaught on purpose" in error for error in log.errors), log.errors
    log.expect_error("seen", "by the log")
    assert log.unexpected() == [next(error for error in log.errors if "uncaught on purpose" in error)]
