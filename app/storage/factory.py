"""Which engine a location names (a `postgresql://` URL is PostgreSQL, anything else a SQLite file), and the
entry points that work on a database as a whole: opening it, its schema version, migrating, backing it up, and
keeping a second server off a file that cannot be shared."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from app.storage.interface import Storage

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class ServeLock(Protocol):
    """Held by `rollcall serve` for its lifetime: refuses a second server where one is the limit."""

    def acquire(self) -> None: ...

    def release(self) -> None: ...


def is_postgres(location: str | Path) -> bool:
    return str(location).startswith(POSTGRES_SCHEMES)


def shown(location: str | Path) -> str:
    """`location` as a log line or a message may show it: a PostgreSQL URL without its password."""
    if is_postgres(location):
        from app.storage.postgres.engine import redact  # type: ignore[import-not-found,unused-ignore]

        return str(redact(str(location)))
    return str(location)


def open_storage(location: str | Path, *, synchronous: str = "NORMAL", must_exist: bool = False) -> Storage:
    """The engine for `location`, not yet opened (call `await storage.open()`). `synchronous` is SQLite's
    durability setting; `must_exist` refuses to create a database that is not there."""
    if is_postgres(location):
        from app.storage.postgres.engine import PostgresStorage  # type: ignore[import-not-found,unused-ignore]

        return PostgresStorage(str(location), must_exist=must_exist)  # type: ignore[no-any-return,unused-ignore]
    from app.storage.sqlite.engine import SqliteStorage

    return SqliteStorage(location, synchronous=synchronous, must_exist=must_exist)


def pending_migration(location: str | Path) -> tuple[int, int] | None:
    """(current, target) when the database at `location` holds data at an older schema version; else None."""
    if is_postgres(location):
        from app.storage.postgres import migrations as pg  # type: ignore[import-not-found,unused-ignore]

        return pg.pending_migration(str(location))  # type: ignore[no-any-return,unused-ignore]
    from app.storage.sqlite.migrations import pending_migration as sqlite_pending

    return sqlite_pending(location)


async def upgrade(location: str | Path) -> tuple[int, int, Path | None] | None:
    """Apply pending schema upgrades (SQLite backs the file up first: the third item names the copy).
    Returns (version before, after, backup), or None when there was nothing to do."""
    if is_postgres(location):
        from app.storage.postgres import migrations as pg  # type: ignore[import-not-found,unused-ignore]

        return await pg.upgrade(str(location))  # type: ignore[no-any-return,unused-ignore]
    from app.storage.sqlite.migrations import upgrade as sqlite_upgrade

    return await sqlite_upgrade(location)


def backup(location: str | Path, target: str | Path) -> None:
    """A consistent, verified copy of a live database as the new file `target` (SQLite; PostgreSQL: DatabaseError
    saying to use pg_dump)."""
    if is_postgres(location):
        from app.storage.errors import DatabaseError

        raise DatabaseError("rollcall backup copies SQLite files; back a PostgreSQL database up with pg_dump.")
    from app.storage.sqlite.backup import backup as sqlite_backup

    sqlite_backup(location, target)


def serve_lock(location: str | Path) -> ServeLock:
    """The lock `rollcall serve` holds: an flock beside a SQLite file; nothing for PostgreSQL, which several
    instances share."""
    if is_postgres(location):
        return _NoLock()
    from app.storage.sqlite.lock import DatabaseLock

    return DatabaseLock(location)


class _NoLock:
    def acquire(self) -> None:
        return None

    def release(self) -> None:
        return None


def engine_versions() -> list[str]:
    """The versions of the engines this build has, for `rollcall check`."""
    import sqlite3

    from app.storage.postgres.engine import driver_report

    return [f"sqlite {sqlite3.sqlite_version}", driver_report()]


def check_schema_files() -> None:
    """DatabaseError when a schema file this build needs is missing (schema.sql and schema.postgres.sql beside the
    application)."""
    from app.storage.sqlite.migrations import schema_sql

    schema_sql()
    from app.storage.postgres.migrations import schema_sql as postgres_schema_sql

    postgres_schema_sql()
