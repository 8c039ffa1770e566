"""Administration: tokens, backup, schema upgrades, and `check` of the runtime."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from app import diagnostics
from app.cli.common import describe, fail, options, run_with_database
from app.cli.options import add_options
from app.domain import scopes, tokens
from app.domain.clock import parse_duration, utc_now
from app.storage.errors import DatabaseError
from app.storage.factory import backup, is_postgres, shown, upgrade
from app.storage.interface import Storage
from app.storage.records import TokenRecord


def register(commands: Any) -> None:
    token = commands.add_parser("token", help="manage API tokens")
    actions = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a token and print it, alone on the last line (once)")
    create.add_argument("--name", required=True, help="a name for the token, e.g. jumpcloud")
    create.add_argument("--scope", action="append", choices=scopes.ALL_SCOPES, dest="scopes",
                        help="what the token may do; repeat for more than one (default: scim and roster)")
    create.add_argument("--expires", metavar="DURATION", help="stop working after this long, e.g. 90d, 12h")
    add_options(create, ("db",))
    create.set_defaults(run=token_create)
    listing = actions.add_parser("list", help="list tokens (never their values)")
    add_options(listing, ("db",))
    listing.set_defaults(run=token_list)
    revoke = actions.add_parser("revoke", help="revoke a token; it stops working at once")
    revoke.add_argument("name")
    add_options(revoke, ("db",))
    revoke.set_defaults(run=token_revoke)
    rotate = actions.add_parser("rotate", help="give a token a new value (printed alone on the last line, once); "
                                               "the old value keeps working for --grace")
    rotate.add_argument("name")
    rotate.add_argument("--grace", metavar="DURATION", default="24h",
                        help="how long the old value keeps working, e.g. 24h, 30m (default: 24h)")
    add_options(rotate, ("db",))
    rotate.set_defaults(run=token_rotate)

    backup_parser = commands.add_parser("backup", help="write a consistent copy of the database, even while served")
    backup_parser.add_argument("out", help="the backup file to create (must not exist)")
    add_options(backup_parser, ("db",))
    backup_parser.set_defaults(run=backup_command)

    migrate = commands.add_parser("migrate", help="upgrade the database schema, after backing it up")
    add_options(migrate, ("db",))
    migrate.set_defaults(run=migrate_command)

    check = commands.add_parser("check", help="report versions, SQLite, and whether the C speedups loaded")
    check.set_defaults(run=check_command)


def token_create(args: argparse.Namespace) -> int:
    path = options(args, ("db",))["db"]
    try:
        # Before the database is opened (or created): a refusal leaves nothing behind.
        tokens.check_name(args.name)
        chosen = scopes.parse_scopes(args.scopes)
        expires_in = parse_duration(args.expires) if args.expires is not None else None
    except (tokens.TokenError, ValueError) as error:
        return fail(str(error))

    async def create(db: Storage) -> int:
        token = await tokens.create_token(db, args.name, chosen, expires_in)  # say "Created" only once it is
        ending = f", expires in {args.expires}" if args.expires else ""
        print(f"Created token {args.name!r} (scopes: {' '.join(chosen)}{ending}). It is shown only once; "
              "store it now:", file=sys.stderr)
        print(token)
        return 0

    return run_with_database(path, create)


def token_list(args: argparse.Namespace) -> int:
    async def show(db: Storage) -> int:
        now = utc_now()
        columns = ("NAME", "SCOPES", "CREATED", "EXPIRES", "LAST USED", "STATE")
        rows = [[r.name, ",".join(scopes.decode(r.scopes)), r.created, r.expires or "never", r.last_used or "never",
                 _state(r, now)] for r in await tokens.list_tokens(db)]
        print_table(columns, rows)
        return 0

    return run_with_database(options(args, ("db",))["db"], show, must_exist=True)


def _state(record: TokenRecord, now: str) -> str:
    if record.revoked:
        return f"revoked {record.revoked}"
    if record.expires and record.expires <= now:
        return "expired"
    if record.previous_until and record.previous_until > now:
        return f"live (old value works until {record.previous_until})"
    return "live"


def print_table(columns: tuple[str, ...], rows: list[list[str]]) -> None:
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    for row in [list(columns), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def token_rotate(args: argparse.Namespace) -> int:
    try:
        grace = parse_duration(args.grace)
    except ValueError as error:
        return fail(f"--grace: {error}")

    async def rotate(db: Storage) -> int:
        token = await tokens.rotate_token(db, args.name, grace)
        print(f"Rotated token {args.name!r}: the old value works for {args.grace} more. The new one is shown "
              "only once; store it now:", file=sys.stderr)
        print(token)
        return 0

    return run_with_database(options(args, ("db",))["db"], rotate, must_exist=True)


def token_revoke(args: argparse.Namespace) -> int:
    async def revoke(db: Storage) -> int:
        await tokens.revoke_token(db, args.name)
        print(f"Revoked token {args.name!r}.")
        return 0

    return run_with_database(options(args, ("db",))["db"], revoke, must_exist=True)


def backup_command(args: argparse.Namespace) -> int:
    source = options(args, ("db",))["db"]
    try:
        backup(source, args.out)
    except DatabaseError as error:
        return fail(describe(error))
    print(f"Backed up {source} to {args.out} (integrity check ok).")
    return 0


def migrate_command(args: argparse.Namespace) -> int:
    path = options(args, ("db",))["db"]
    if not is_postgres(path) and not os.path.exists(path):
        print(f"There is no database at {path} yet; nothing to migrate (`rollcall serve` creates it at the "
              "current schema).")
        return 0
    try:
        done = asyncio.run(upgrade(path))
    except DatabaseError as error:
        return fail(describe(error))
    if done is None:
        print(f"{shown(path)} is up to date; nothing to do.")
    else:
        before, after, copy = done
        # PostgreSQL keeps no copy of its own: its operators take one with pg_dump first (README).
        saved = f"; the old file is saved as {copy}" if copy is not None else ""
        print(f"Upgraded {shown(path)} from schema version {before} to {after}{saved}.")
    return 0


def check_command(args: argparse.Namespace) -> int:
    lines, healthy = diagnostics.report()
    print("\n".join(lines))
    if not healthy:
        return fail("something rollcall needs is missing (see above); this build would be slow or broken.")
    return 0
