"""What every command shares: running an action against the database, and reporting failures."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from app.cli.options import OptionError, resolve
from app.domain.roles import RoleRules
from app.domain.tokens import TokenError
from app.storage.errors import DatabaseError, NoDatabase
from app.storage.factory import open_storage
from app.storage.interface import Storage


class CommandError(Exception):
    """A command that cannot go on; the message says why and is printed as is."""


def fail(message: str, code: int = 1) -> int:
    print(f"rollcall: {message}", file=sys.stderr)
    return code


def options(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    try:
        return resolve(args, names)
    except OptionError as error:
        raise CommandError(str(error)) from None


def rules_from(values: dict[str, Any]) -> RoleRules:
    try:
        return RoleRules(values["group-prefix"], None if values["default-role"] == "none" else values["default-role"])
    except ValueError as error:
        raise CommandError(str(error)) from None


def describe(error: DatabaseError) -> str:
    """What to tell the operator about a database that cannot be used."""
    if isinstance(error, NoDatabase):
        # Most often a mistyped --db: say so, rather than quietly creating an empty database there.
        return f"no database at {error.path}; check --db, or run `rollcall serve` to create one"
    return str(error)


async def _with_database(path: str, action: Callable[[Storage], Awaitable[int]], must_exist: bool) -> int:
    db = open_storage(path, must_exist=must_exist)
    await db.open()
    try:
        return await action(db)
    finally:
        await db.close()


def run_with_database(path: str, action: Callable[[Storage], Awaitable[int]], *, must_exist: bool = False) -> int:
    """Run `action` on the database at `path`; `must_exist` refuses a path with no database (and creates nothing)
    instead of creating one there."""
    try:
        return asyncio.run(_with_database(path, action, must_exist))
    except DatabaseError as error:
        return fail(describe(error))
    except TokenError as error:
        return fail(str(error))
