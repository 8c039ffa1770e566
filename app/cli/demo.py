"""`rollcall demo`: rollcall on a scratch database, with JumpCloud played by the simulator, step by step.

It prints the SCIM Base URL with the simulator's token, the console's address with a one-time sign-in link and an
admin token, and opens the link in a browser: the audience watches the roster change in the console.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
import tempfile
import webbrowser
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import __version__
from app.cli.common import CommandError, fail, run_with_database
from app.config import SCIM_PREFIX, Settings
from app.domain import scopes, tokens
from app.domain.sessions import LINK_SECONDS, Sessions
from app.storage.errors import DatabaseError
from app.storage.factory import serve_lock, upgrade
from app.storage.interface import Storage

if TYPE_CHECKING:  # the simulator brings aiohttp, imported only when the demo runs, so other commands start fast
    from app.simulator.story import Story

DEMO_HOST = "127.0.0.1"
# Where the browser goes: the console, signed in by a one-time link (app/domain/sessions.py).
SIGN_IN_PATH = "/console/sign-in?once="
STARTUP_SECONDS = 15.0
SHUTDOWN_GRACE_SECONDS = 1.0
STORY_OVER = "demo: the story is over"


def register(commands: Any) -> None:
    demo = commands.add_parser(
        "demo", help="play a small company's story through a simulated JumpCloud, on a scratch rollcall",
        description="Start rollcall on a scratch database, then play a story through a simulated JumpCloud, "
                    "printing each step and the roster change it caused; keeps serving until Ctrl-C.")
    demo.add_argument("--port", type=int, default=8080, help="port to serve on (default 8080)")
    demo.add_argument("--db", metavar="PATH", help="database file (default: a new temporary one, removed at exit)")
    demo.add_argument("--speed", type=float, default=1.0, help="play faster (2) or slower (0.5) (default 1)")
    demo.add_argument("--no-browser", action="store_true", help="do not open a browser")
    demo.add_argument("--story", metavar="FILE", help="a TOML or JSON story to play instead of the built-in one")
    demo.add_argument("--request-log", action="store_true", help="also write rollcall's request log to stderr")
    demo.set_defaults(run=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    from app.simulator.story import StoryError, load_story

    if not args.speed > 0:
        return fail(f"--speed must be more than 0, not {args.speed}", code=2)
    try:
        story = load_story(args.story)
    except StoryError as error:
        return fail(str(error), code=2)
    with tempfile.TemporaryDirectory(prefix="rollcall-demo-") as scratch:
        db_path = args.db or str(Path(scratch) / "demo.db")
        try:
            settings = Settings(db_path=db_path, host=DEMO_HOST, port=args.port, group_prefix=story.prefix)
        except ValueError as error:
            raise CommandError(str(error)) from None
        lock = serve_lock(db_path)
        try:
            lock.acquire()
            asyncio.run(upgrade(db_path))
        except DatabaseError as error:
            return fail(str(error))
        try:
            minted: list[str] = []

            async def mint(db: Storage) -> int:
                suffix = secrets.token_hex(3)
                minted.append(await tokens.create_token(db, f"demo-{suffix}"))
                minted.append(await tokens.create_token(db, f"demo-admin-{suffix}", (scopes.ADMIN,)))
                minted.append(await Sessions(db).link(f"demo-admin-{suffix}"))
                return 0

            if run_with_database(db_path, mint):
                return 1
            return asyncio.run(_run(settings, story, Minted(*minted), args))
        finally:
            lock.release()


@dataclass(frozen=True)
class Minted:
    """What the demo prints once: the simulator's token (scim + roster), an admin token, a one-time sign-in code."""

    token: str
    admin_token: str
    sign_in_code: str


async def _run(settings: Settings, story: Story, minted: Minted, args: argparse.Namespace) -> int:
    from app.web import server
    from app.web.access_log import configure_logging
    from app.web.app import init_app
    from app.web.keys import ACCESS_LOG

    configure_logging("text")  # serve's handler, with its token redaction, for whatever rollcall logs

    root = f"http://{settings.host}:{settings.port}"
    print(f"rollcall {__version__} demo on {root} (database {settings.db_path})", flush=True)
    print(f"  SCIM Base URL: {root}{SCIM_PREFIX}", flush=True)
    print(f"  Token:         {minted.token}", flush=True)
    print(f"  Console:       {root}{SIGN_IN_PATH}{minted.sign_in_code}", flush=True)
    print(f"                 (a one-time sign-in link for {LINK_SECONDS // 60} minutes; later, open {root}/ and "
          "paste the admin token)", flush=True)
    print(f"  Admin token:   {minted.admin_token}", flush=True)
    print(f"  Roster:        curl -H 'Authorization: Bearer {minted.token}' {root}/api/members", flush=True)
    app = init_app(settings)
    if not args.request_log:
        del app[ACCESS_LOG]  # the story's lines say what each step sent; a line per request would bury them
    serving = asyncio.create_task(server.serve(
        app, settings.host, settings.port, None,
        server.Limits(100, settings.header_timeout, settings.keepalive_timeout), SHUTDOWN_GRACE_SECONDS))
    playing = asyncio.create_task(_play(story, f"{root}{SCIM_PREFIX}", minted, args, serving, settings.db_path))
    try:
        await serving  # until SIGTERM or SIGINT
    except OSError as error:
        playing.cancel()
        print(f"rollcall: cannot serve on {settings.host}:{settings.port}: {error.strerror or error}; "
              "pick another --port", file=sys.stderr)
        return 1
    finally:
        playing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await playing
    print("demo: stopped", flush=True)
    return 0


async def _play(story: Story, base_url: str, minted: Minted, args: argparse.Namespace, serving: asyncio.Task,
                db_path: str) -> None:
    from app.simulator.client import ScimClient
    from app.simulator.story import RosterError, StoryRunner, format_step

    async with ScimClient(base_url, minted.token) as client:
        if not await _wait_until_up(client, serving):
            return
        if not args.no_browser:
            # A launcher may take its time (or wait for the browser): not on the loop that serves rollcall.
            await asyncio.to_thread(_open_browser, base_url.removesuffix(SCIM_PREFIX) + SIGN_IN_PATH
                                    + minted.sign_in_code)
        print(f"demo: {story.title}, as JumpCloud would send it", flush=True)
        runner = StoryRunner(story, client)
        if present := await runner.roster():
            already = f"{len(present)} member{'s' if len(present) != 1 else ''}"
            print(f"demo: this database has {already} already; the story describes what it does to a fresh one, so "
                  "the rosters may differ from it (✗)", flush=True)
        try:
            results = await runner.play(pace=1 / args.speed, report=lambda result: print(
                format_step(result, len(story.steps)), flush=True))
        except RosterError as error:
            print(f"demo: the story stopped: {error}; rollcall keeps serving until Ctrl-C", flush=True)
            return
        members = sorted(results[-1].actual.items()) if results else []
        counts: dict[str, int] = {}
        for _, role in members:
            counts[role] = counts.get(role, 0) + 1
        summary = ", ".join(f"{count} {role}{'s' if count != 1 else ''}" for role, count in sorted(counts.items()))
        verdict = "as the story says" if all(result.ok for result in results) and \
            len(results) == len(story.steps) else "NOT as the story says (see ✗ above)"
        held = results[-1].held if results else ()
        waiting = (f"; {len(held)} more held for approval (the console's Holds page, or `rollcall holds --db "
                   f"{db_path}`, lists them; Approve there, or `rollcall holds approve ID --db {db_path}`, lets them "
                   "go)" if held else "")
        print(f"{STORY_OVER}: {len(members)} on the roster ({summary or 'nobody'}){waiting}, {verdict}. rollcall "
              "keeps serving until Ctrl-C.", flush=True)


async def _wait_until_up(client: Any, serving: asyncio.Task) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_SECONDS
    while loop.time() < deadline and not serving.done():
        if (await client.api("/healthz")).status == 200:
            return True
        await asyncio.sleep(0.05)
    return False


def _open_browser(url: str) -> None:
    """Open `url` if this machine has a browser; a machine without one (a server, CI) just goes on."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        # Without a display, webbrowser would start a text browser (www-browser) in this very terminal.
        return
    # webbrowser raises whatever its launcher raises; no browser is never an error here.
    with contextlib.suppress(Exception):
        webbrowser.open(url)
