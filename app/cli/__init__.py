"""The `rollcall` command line. Every option can also come from the environment (ROLLCALL_<FLAG>) or a
TOML config file; see app/cli/options.py for the one precedence."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from app import __version__
from app.cli import admin, demo, holds, roster, selftest, serve, webhooks
from app.cli.common import CommandError, fail


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rollcall", description="A SCIM 2.0 endpoint that keeps an organization's members and roles.")
    parser.add_argument("--version", action="version", version=f"rollcall {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve.register(commands)
    roster.register(commands)
    holds.register(commands)
    admin.register(commands)
    webhooks.register(commands)
    demo.register(commands)
    selftest.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # The database, its -wal and -shm, the lock and every backup hold personal data and token hashes: whatever a
    # command creates, only rollcall's own user may read. Set before anything opens a file.
    os.umask(0o077)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except CommandError as error:
        return fail(str(error), code=2)
