"""`rollcall members` and `rollcall events`: the roster and its feed, read from the database file."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from typing import Any

from app.cli.common import fail, options, rules_from, run_with_database
from app.cli.options import add_options
from app.domain.roles import ROLES, RoleRules
from app.domain.roster import RosterReader
from app.protocol.timestamps import parse_datetime
from app.storage.interface import Storage

_MEMBER_OPTIONS = ("db", "group-prefix", "default-role")
_EVENT_BATCH = 1000


def register(commands: Any) -> None:
    members = commands.add_parser("members", help="print the roster (reads the database directly)")
    add_options(members, _MEMBER_OPTIONS)
    output = members.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON")
    output.add_argument("--csv", action="store_true", help="print CSV (with --at: an access-review export)")
    members.add_argument("--at", metavar="DATETIME",
                         help="the roster as it was then, replayed from the change feed, e.g. 2026-10-01T00:00:00Z")
    members.add_argument("--role", choices=ROLES, help="only members with this role")
    members.set_defaults(run=members_command)

    events = commands.add_parser("events", help="print the change feed (reads the database directly)")
    add_options(events, ("db",))
    events.add_argument("--after", type=int, default=0, help="only events with a seq above this")
    events.add_argument("--follow", action="store_true", help="keep printing new events until interrupted")
    events.add_argument("--json", action="store_true", help="print one JSON object per line")
    events.set_defaults(run=events_command)


def members_command(args: argparse.Namespace) -> int:
    values = options(args, _MEMBER_OPTIONS)
    rules = rules_from(values)
    at = parse_datetime(args.at) if args.at is not None else None
    if args.at is not None and at is None:
        return fail(f"--at must be a date and time such as 2026-10-01T00:00:00Z, not {args.at!r}")

    async def show(db: Storage) -> int:
        listed, _ = await RosterReader(db, rules).members(at, args.role)
        if args.json:
            print(json.dumps({"members": listed}, indent=2, ensure_ascii=False))
            return 0
        columns = ("userName", "role", "email", "groups", "since", "id", "hold")
        # `hold`: the id of the hold that keeps a member on the roster (see `rollcall holds`), else empty.
        rows = [[", ".join(m[c]) if c == "groups" else str(m.get(c) or "") for c in columns] for m in listed]
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

    return run_with_database(values["db"], show, must_exist=True)


def format_event(event: dict[str, Any]) -> str:
    fields = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("seq", "time", "type", "token"))
    return f"{event['seq']:>6}  {event['time']}  {event['type']:<20}  by {event['token']}  {fields}"


def events_command(args: argparse.Namespace) -> int:
    values = options(args, ("db",))

    async def show(db: Storage) -> int:
        reader = RosterReader(db, RoleRules())
        after = args.after
        while True:
            batch = await reader.events(after, _EVENT_BATCH)
            for event in batch:
                print(json.dumps(event, ensure_ascii=False) if args.json else format_event(event), flush=True)
                after = event["seq"]
            if not args.follow:
                return 0
            if len(batch) < _EVENT_BATCH:
                await asyncio.sleep(1)

    try:
        return run_with_database(values["db"], show, must_exist=True)
    except KeyboardInterrupt:
        return 0
