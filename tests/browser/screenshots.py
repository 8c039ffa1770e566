"""`make screenshots`: one PNG per console page under docs/screenshots/, of a small company's rollcall.

    .venv/bin/python -m tests.browser.screenshots [--out docs/screenshots]

Serves a fresh database with `python -m app serve`, plays the built-in story of `rollcall demo`
(app/simulator/stories/company.toml: Acme, twenty people, through a simulated JumpCloud) at full speed, adds a
webhook, then signs in with the browser tests' chromium and photographs each page at a laptop's width. A console
error or page error on any page fails the run, as it fails the browser tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from app.simulator.client import ScimClient
from app.simulator.story import StoryRunner, load_story
from tests.browser import chromium
from tests.browser.conftest import BrowserLog
from tests.conftest import REPO, mint_token, serve_process

OUT = REPO / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}


async def play_story(base_url: str, token: str) -> str:
    """The company's story, played as JumpCloud sends it; returns a line that says how it ended."""
    story = load_story()
    async with ScimClient(base_url, token) as client:
        results = await StoryRunner(story, client).play(pace=0)
    ok = sum(result.ok for result in results)
    return f"{story.title}: {ok} of {len(story.steps)} steps as the story says"


def add_webhook(root: str, admin_token: str) -> None:
    """One webhook, so that the webhooks page shows one (its receiver is a port nobody listens on)."""
    body = json.dumps({"url": "https://hooks.acme.example/rollcall", "events": ["member.*"],
                       "description": "Acme's HR system"}).encode()
    request = urllib.request.Request(f"{root}/api/webhooks", data=body, method="POST", headers={
        "Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()


def photograph(root: str, admin_token: str, out: Path) -> list[str]:
    """Each page's PNG under `out`; returns the browser's errors."""
    playwright = chromium.start()
    written = []
    try:
        browser = chromium.launch(playwright)
        context = browser.new_context(base_url=root, viewport=VIEWPORT)
        log = BrowserLog()
        context.on("page", log.watch)
        page = context.new_page()

        def shoot(name: str, path: str | None = None, full_page: bool = True) -> None:
            if path is not None:
                page.goto(path)
            target = out / f"{name}.png"
            page.screenshot(path=str(target), full_page=full_page)
            written.append(str(target.relative_to(REPO) if target.is_relative_to(REPO) else target))

        shoot("sign-in", "/")
        page.get_by_label("Admin token").fill(admin_token)
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
        shoot("members")
        person = page.locator("#members tr[data-user-id] a").first
        shoot("member", person.get_attribute("href"))
        shoot("groups", "/console/groups")
        shoot("events", "/console/events", full_page=False)  # the newest changes: the whole feed is ~90 lines
        shoot("tokens", "/console/tokens")
        shoot("webhooks", "/console/webhooks")
        hook = page.locator('main a[href^="/console/webhooks/"]').first
        if hook.count():
            shoot("webhook", hook.get_attribute("href"))
        shoot("holds", "/console/holds")
        context.close()
        browser.close()
    finally:
        playwright.stop()
    print("\n".join(f"wrote {name}" for name in written))
    return log.unexpected()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where the PNGs go (default {OUT.relative_to(REPO)})")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rollcall-screenshots-") as workdir:
        db_path = str(Path(workdir) / "served.db")
        admin_token = asyncio.run(mint_token(db_path, "console", ("admin",)))
        idp_token = asyncio.run(mint_token(db_path, "jumpcloud", ("scim", "roster")))
        with serve_process(Path(workdir), token_name=None) as server:
            root = server.base_url.removesuffix("/scim/v2")
            print(asyncio.run(play_story(server.base_url, idp_token)))
            add_webhook(root, admin_token)
            try:
                errors: list[Any] = photograph(root, admin_token, args.out)
            except chromium.BrowserMissing as error:
                print(error, file=sys.stderr)
                return 1
            log = server.log
    if "Traceback" in log:
        print(f"the server logged an exception:\n{log}", file=sys.stderr)
        return 1
    if errors:
        print("the browser reported errors:\n" + "\n".join(errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
