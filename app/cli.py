"""The `rollcall` command line. Every flag can also come from the environment as ROLLCALL_<FLAG>."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from app import __version__
from app.config import DEFAULT_DB, DEFAULT_HOST, DEFAULT_PORT, SCIM_PREFIX, Settings
from app.domain import tokens
from app.domain.roles import DEFAULT_PREFIX, DEFAULT_ROLE_CHOICES, RoleRules
from app.domain.roster import RosterReader
from app.storage.database import Database, DatabaseError


def _env(flag: str, fallback: Any) -> Any:
    return os.environ.get("ROLLCALL_" + flag.upper().replace("-", "_"), fallback)


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=_env("db", DEFAULT_DB),
                        help=f"SQLite database file (env ROLLCALL_DB; default {DEFAULT_DB})")


def _role_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--group-prefix", default=_env("group-prefix", DEFAULT_PREFIX),
                        help="role groups are named <prefix>-administrators, <prefix>-members and <prefix>-guests, "
                             f"any suffix allowed (env ROLLCALL_GROUP_PREFIX; default {DEFAULT_PREFIX})")
    parser.add_argument("--default-role", default=_env("default-role", "none"), choices=DEFAULT_ROLE_CHOICES,
                        help="the role of an active user in no role group; none keeps them off the roster "
                             "(env ROLLCALL_DEFAULT_ROLE; default none)")


def _rules(args: argparse.Namespace) -> RoleRules:
    return RoleRules(args.group_prefix, None if args.default_role == "none" else args.default_role)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rollcall", description="A SCIM 2.0 endpoint that keeps an organization's members and roles.")
    parser.add_argument("--version", action="version", version=f"rollcall {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the SCIM server")
    _db_option(serve)
    serve.add_argument("--host", default=_env("host", DEFAULT_HOST),
                       help=f"address to listen on (env ROLLCALL_HOST; default {DEFAULT_HOST})")
    serve.add_argument("--port", type=int, default=_env("port", DEFAULT_PORT),
                       help=f"port to listen on (env ROLLCALL_PORT; default {DEFAULT_PORT})")
    serve.add_argument("--base-url", default=_env("base-url", None),
                       help="public SCIM Base URL, e.g. https://rollcall.example.com/scim/v2 "
                            "(env ROLLCALL_BASE_URL; default: derived from each request)")
    _role_options(serve)

    members = commands.add_parser("members", help="print the roster (reads the database directly)")
    _db_option(members)
    _role_options(members)
    output = members.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON")
    output.add_argument("--csv", action="store_true", help="print CSV")

    events = commands.add_parser("events", help="print the change feed (reads the database directly)")
    _db_option(events)
    events.add_argument("--after", type=int, default=0, help="only events with a seq above this")
    events.add_argument("--follow", action="store_true", help="keep printing new events until interrupted")
    events.add_argument("--json", action="store_true", help="print one JSON object per line")

    token = commands.add_parser("token", help="manage API tokens")
    token_commands = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = token_commands.add_parser("create", help="create a token and print it (once)")
    create.add_argument("--name", required=_env("name", None) is None, default=_env("name", None),
                        help="a name for the token, e.g. jumpcloud (env ROLLCALL_NAME)")
    _db_option(create)
    listing = token_commands.add_parser("list", help="list tokens (never their values)")
    _db_option(listing)
    revoke = token_commands.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("name")
    _db_option(revoke)
    return parser


async def _with_database(path: str, action: Callable[[Database], Awaitable[int]]) -> int:
    db = Database(path)
    await db.open()
    try:
        return await action(db)
    finally:
        await db.close()


def _run(path: str, action: Callable[[Database], Awaitable[int]]) -> int:
    try:
        return asyncio.run(_with_database(path, action))
    except (DatabaseError, tokens.TokenError) as error:
        print(f"rollcall: {error}", file=sys.stderr)
        return 1


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from app.web.app import init_app

    try:
        rules = _rules(args)
        settings = Settings(db_path=args.db, host=args.host, port=int(args.port), base_url=args.base_url,
                            group_prefix=rules.prefix, default_role=rules.default_role)
    except ValueError as error:
        print(f"rollcall: {error}", file=sys.stderr)
        return 2
    public = settings.base_url or f"http://{settings.host}:{settings.port}{SCIM_PREFIX}"

    async def first_token(db: Database) -> int:
        if not await tokens.has_live_token(db):
            token = await tokens.create_token(db, "default")
            print("rollcall: this database had no API token, so one was created. It is shown only once:")
            print(f"  Token:    {token}")
            print(f"  Base URL: {public}")
            print("Paste both into your identity provider (JumpCloud: Identity Management > SCIM 2.0).", flush=True)
        return 0

    if _run(settings.db_path, first_token):
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    print(f"rollcall {__version__} serving {public} (database {settings.db_path})", flush=True)
    web.run_app(init_app(settings), host=settings.host, port=settings.port, print=None, access_log=None)
    return 0


def _token(args: argparse.Namespace) -> int:
    if args.token_command == "create":
        async def create(db: Database) -> int:
            print(f"Created token {args.name!r}. It is shown only once; store it now:", file=sys.stderr)
            print(await tokens.create_token(db, args.name))
            return 0
        return _run(args.db, create)
    if args.token_command == "list":
        async def show(db: Database) -> int:
            for record in await tokens.list_tokens(db):
                state = f"revoked {record.revoked}" if record.revoked else "live"
                print(f"{record.name}\tcreated {record.created}\t{state}")
            return 0
        return _run(args.db, show)

    async def revoke(db: Database) -> int:
        await tokens.revoke_token(db, args.name)
        print(f"Revoked token {args.name!r}.")
        return 0
    return _run(args.db, revoke)


def _members(args: argparse.Namespace) -> int:
    async def show(db: Database) -> int:
        listed = await RosterReader(db, _rules(args)).members()
        if args.json:
            print(json.dumps({"members": listed}, indent=2, ensure_ascii=False))
            return 0
        columns = ("userName", "role", "email", "groups", "since", "id")
        rows = [[", ".join(m[c]) if c == "groups" else str(m[c] or "") for c in columns] for m in listed]
        if args.csv:
            writer = csv.writer(sys.stdout)
            writer.writerow(columns)
            writer.writerows(rows)
            return 0
        widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
        for row in [list(columns), *rows]:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        print(f"{len(rows)} member{'s' if len(rows) != 1 else ''}", file=sys.stderr)
        return 0
    return _run(args.db, show)


def _format_event(event: dict[str, Any]) -> str:
    fields = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("seq", "time", "type", "token"))
    return f"{event['seq']:>6}  {event['time']}  {event['type']:<20}  by {event['token']}  {fields}"


def _events(args: argparse.Namespace) -> int:
    async def show(db: Database) -> int:
        reader = RosterReader(db, RoleRules())
        after = args.after
        while True:
            batch = await reader.events(after, 1000)
            for event in batch:
                print(json.dumps(event, ensure_ascii=False) if args.json else _format_event(event), flush=True)
                after = event["seq"]
            if not args.follow:
                return 0
            if len(batch) < 1000:
                await asyncio.sleep(1)
    try:
        return _run(args.db, show)
    except KeyboardInterrupt:
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "token":
        return _token(args)
    if args.command == "members":
        return _members(args)
    if args.command == "events":
        return _events(args)
    parser.print_help()
    return 2
