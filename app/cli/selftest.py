"""`rollcall selftest`: replay JumpCloud's, Okta's and Entra's requests against a running rollcall, through
whatever proxy stands in front of it, and say what each provider would see."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the simulator brings aiohttp, imported only when the selftest runs
    from app.simulator.selftest import Check, Outcome, Selftest

# The providers of app/simulator/dialects.py (DIALECTS), named here so that parsing the command line needs no aiohttp.
IDPS = ("jumpcloud", "okta", "entra")
INTERRUPTED = 130


def register(commands: Any) -> None:
    selftest = commands.add_parser(
        "selftest", help="check a deployment as JumpCloud, Okta and Entra would use it",
        description="Replay each identity provider's requests against a running rollcall (through its proxy), one "
                    "line per check. Safe on a live organization: it only touches resources it creates, named "
                    "rollcall-selftest-<run>-..., uses no role group, and removes all it created, even when "
                    "interrupted.")
    selftest.add_argument("--base-url", required=True, metavar="URL",
                          help="the SCIM Base URL as the identity provider has it, e.g. https://rollcall.example.com"
                               "/scim/v2")
    selftest.add_argument("--token", metavar="TOKEN", default=os.environ.get("ROLLCALL_TOKEN"),
                          help="the bearer token the identity provider uses (env ROLLCALL_TOKEN)")
    selftest.add_argument("--idp", choices=(*IDPS, "all"), default="all", help="which provider (default all)")
    selftest.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    selftest.set_defaults(run=selftest_command)


def selftest_command(args: argparse.Namespace) -> int:
    if not args.token:
        print("rollcall: selftest needs --token (or ROLLCALL_TOKEN)", file=sys.stderr)
        return 2
    if not args.base_url.startswith(("http://", "https://")):
        print(f"rollcall: --base-url must start with http:// or https://, not {args.base_url!r}", file=sys.stderr)
        return 2
    from app.simulator.selftest import Selftest

    idps = list(IDPS) if args.idp == "all" else [args.idp]
    report = (lambda check: None) if args.json else _print_check
    outcome = asyncio.run(_run(Selftest(args.base_url, args.token, idps, report)))
    if args.json:
        print(json.dumps(outcome.as_json(), indent=2, ensure_ascii=False))
    else:
        _print_end(outcome)
    if outcome.interrupted:
        return INTERRUPTED
    return 1 if outcome.failed or outcome.refused or outcome.left_behind else 0


async def _run(selftest: Selftest) -> Outcome:
    loop = asyncio.get_running_loop()
    interrupts = 0

    def interrupt() -> None:
        # The first signal stops the checks and starts the cleanup; later ones must not cut the cleanup short.
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            running.cancel()
        print("rollcall: interrupted; removing what the selftest created (this takes a moment)", file=sys.stderr,
              flush=True)

    running = asyncio.ensure_future(selftest.run())
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    try:
        # Cancelling `running` interrupts the checks; Selftest.run catches that and cleans up before it returns.
        return await running
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _print_check(check: Check) -> None:
    label = "warn" if check.warning else "ok" if check.ok else "FAIL"
    print(f"{label:<5} {check.idp:<9} {check.name}", flush=True)
    if not check.ok:
        print(f"        {check.seen}", flush=True)
        print(f"        usual cause: {check.cause}", flush=True)


def _print_end(outcome: Outcome) -> None:
    if outcome.refused:
        print(f"rollcall: {outcome.refused}", flush=True)
    if outcome.interrupted:
        print("rollcall: interrupted before the checks were done", flush=True)
    print(f"{outcome.passed} passed, {outcome.failed} failed", flush=True)
