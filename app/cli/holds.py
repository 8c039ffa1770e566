"""`rollcall holds`: the changes waiting for a person (list, show, approve), on the database file directly."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.cli.common import CommandError, fail, options, rules_from, run_with_database
from app.cli.options import add_options
from app.domain.holds import HoldPolicy, Holds
from app.protocol.errors import ScimError
from app.storage.interface import Storage

# The role rules and --no-hold decide what an approval does: the same options (and config file) as `serve`.
_HOLD_OPTIONS = ("db", "group-prefix", "default-role", "hold")
APPROVER = "rollcall-cli"


def register(commands: Any) -> None:
    holds = commands.add_parser("holds", help="list the open holds; `holds show ID`, `holds approve ID`")
    add_options(holds, _HOLD_OPTIONS)
    holds.add_argument("--json", action="store_true", help="print JSON")
    holds.add_argument("action", nargs="?", choices=("show", "approve"), help="show or approve one hold")
    holds.add_argument("id", nargs="?", type=int, help="the hold's id, as `rollcall holds` lists it")
    holds.add_argument("--leave-no-admin", action="store_true",
                       help="with approve: approve even though the organization is then left with no admin")
    holds.set_defaults(run=holds_command)


def _holds(db: Storage, values: dict[str, Any]) -> Holds:
    return Holds(db, rules_from(values), HoldPolicy(enabled=values["hold"]))


def holds_command(args: argparse.Namespace) -> int:
    values = options(args, _HOLD_OPTIONS)
    if args.action is not None and args.id is None:
        raise CommandError(f"`rollcall holds {args.action}` needs the hold's id, e.g. `rollcall holds {args.action} 3`")

    async def run(db: Storage) -> int:
        holds = _holds(db, values)
        if args.action is None:
            listed = await holds.open_holds()
            if args.json:
                print(json.dumps({"holds": listed}, indent=2, ensure_ascii=False))
                return 0
            for hold in listed:
                print(f"{hold['id']:>5}  {hold['opened']}  {hold['cause']:<12}  {hold['count']:>5} "
                      f"{'person' if hold['count'] == 1 else 'people'}  by {hold['token']}  {_change(hold['change'])}")
            print(f"{len(listed)} open hold{'s' if len(listed) != 1 else ''}", file=sys.stderr)
            return 0
        if args.action == "show":
            shown = await holds.show(args.id)
            if shown is None:
                return fail(f"no hold has the id {args.id}; `rollcall holds` lists the open ones")
            if args.json:
                print(json.dumps(shown, indent=2, ensure_ascii=False))
                return 0
            print(f"hold {shown['id']}: {shown['state']}, {shown['cause']}, opened {shown['opened']} by "
                  f"{shown['token']}: {_change(shown['change'])}")
            if shown["closed"]:
                print(f"closed {shown['closed']} by {shown['closedBy']}")
            for person in shown["people"]:
                becomes = person["becomes"] or f"leaves ({person['reason']})"
                print(f"  {person['userName']}  {person['role']} -> {becomes}  [{person['outcome']}]  {person['id']}")
            return 0
        try:
            done = await holds.approve(args.id, APPROVER, leave_no_admin=args.leave_no_admin)
        except ScimError as error:
            return fail(error.detail)
        if args.json:
            print(json.dumps(done, ensure_ascii=False))
        else:
            print(f"hold {done['id']} {done['state']}: {done['applied']} change(s) applied, "
                  f"{done['released']} person(s) released")
        return 0

    return run_with_database(values["db"], run, must_exist=True)


def _change(change: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in change.items())
