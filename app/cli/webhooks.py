"""`rollcall webhook ...`: webhook endpoints, managed in the database file; a running server picks changes up by
itself (app/web/webhook_delivery.py)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.cli.common import fail, options, run_with_database
from app.cli.options import add_options
from app.domain import webhooks
from app.storage.interface import Storage


def register(commands: Any) -> None:
    webhook = commands.add_parser("webhook", help="manage webhook endpoints (signed pushes of the change feed)")
    actions = webhook.add_subparsers(dest="webhook_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="register an endpoint and print its signing secret, alone on the last "
                                         "line (once)")
    add.add_argument("--url", required=True, help="where deliveries are POSTed (http:// or https://)")
    add.add_argument("--event", action="append", dest="events", metavar="PATTERN",
                     help="event types to send: member.* (the default), group.*, user.*, * or one type such as "
                          "member.joined; repeat for several")
    add.add_argument("--description", help="a note for people, e.g. which app this is")
    add.set_defaults(run=add_command)
    listing = actions.add_parser("list", help="list endpoints: URL, patterns, state, last delivery, failures")
    listing.set_defaults(run=list_command)
    remove = actions.add_parser("remove", help="remove an endpoint; nothing more is sent to it")
    remove.add_argument("id", type=int)
    remove.set_defaults(run=remove_command)
    deliveries = actions.add_parser("deliveries", help="an endpoint's recent delivery attempts, newest first")
    deliveries.add_argument("id", type=int)
    deliveries.add_argument("--limit", type=int, default=50, help="how many attempts (default 50)")
    deliveries.set_defaults(run=deliveries_command)
    redeliver = actions.add_parser("redeliver", help="send every matching event from seq SEQ on again, in order "
                                                     "(and resume a failing endpoint)")
    redeliver.add_argument("id", type=int)
    redeliver.add_argument("--from", dest="from_seq", type=int, required=True, metavar="SEQ",
                           help="the first event to send again (its seq, see `rollcall events`)")
    redeliver.set_defaults(run=redeliver_command)
    rotate = actions.add_parser("rotate-secret", help="give an endpoint a new signing secret and print it, alone "
                                                      "on the last line (once)")
    rotate.add_argument("id", type=int)
    rotate.set_defaults(run=rotate_command)
    for action in (add, listing, remove, deliveries, redeliver, rotate):
        add_options(action, ("db",))


def _run(args: argparse.Namespace, action: Any, *, must_exist: bool = True) -> int:
    async def guarded(db: Storage) -> int:
        try:
            return await action(db)
        except webhooks.WebhookError as error:
            return fail(str(error))
    return run_with_database(options(args, ("db",))["db"], guarded, must_exist=must_exist)


def add_command(args: argparse.Namespace) -> int:
    try:  # before the database is opened (or created): a refusal leaves nothing behind
        webhooks.check_url(args.url)
        webhooks.check_patterns(args.events)
        webhooks.check_description(args.description)
    except webhooks.WebhookError as error:
        return fail(str(error))

    async def add(db: Storage) -> int:
        added, secret = await webhooks.add(db, args.url, args.events, args.description)
        print(f"Added webhook {added['id']} for {added['url']} ({', '.join(added['events'])}). Its signing secret "
              "is shown only once; give it to the receiver now:", file=sys.stderr)
        print(secret)
        return 0

    return _run(args, add, must_exist=False)


def _last(hook: dict[str, Any]) -> str:
    last = hook["lastDelivery"]
    if last is None:
        return "never"
    return f"{last['at']} seq {last['seq']} " + (str(last["status"]) if last["status"] is not None else "no answer")


def list_command(args: argparse.Namespace) -> int:
    async def show(db: Storage) -> int:
        for hook in await webhooks.listing(db):
            print(f"{hook['id']}\t{hook['url']}\t{','.join(hook['events'])}\t{hook['state']}\t"
                  f"last delivery {_last(hook)}\t{hook['consecutiveFailures']} consecutive failures"
                  + (f"\t{hook['description']}" if hook["description"] else ""))
        return 0

    return _run(args, show)


def remove_command(args: argparse.Namespace) -> int:
    async def remove(db: Storage) -> int:
        await webhooks.remove(db, args.id)
        print(f"Removed webhook {args.id}.")
        return 0

    return _run(args, remove)


def deliveries_command(args: argparse.Namespace) -> int:
    async def show(db: Storage) -> int:
        for attempt in await webhooks.deliveries(db, args.id, max(1, args.limit)):
            status = attempt["status"] if attempt["status"] is not None else "-"
            print(f"{attempt['at']}\tseq {attempt['seq']}\t{status}\t{attempt['latencyMs']} ms"
                  + (f"\t{attempt['error']}" if attempt["error"] else ""))
        return 0

    return _run(args, show)


def redeliver_command(args: argparse.Namespace) -> int:
    async def redeliver(db: Storage) -> int:
        await webhooks.redeliver(db, args.id, args.from_seq)
        print(f"Webhook {args.id} will be sent every matching event from seq {args.from_seq} on, in order.")
        return 0

    return _run(args, redeliver)


def rotate_command(args: argparse.Namespace) -> int:
    async def rotate(db: Storage) -> int:
        _, secret = await webhooks.rotate_secret(db, args.id)
        print(f"Webhook {args.id} has a new signing secret, used from the next delivery on. It is shown only once:",
              file=sys.stderr)
        print(secret)
        return 0

    return _run(args, rotate)
