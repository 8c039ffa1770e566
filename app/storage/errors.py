"""Storage's own exceptions, the same for every engine. None of them is a protocol error: the domain turns
them into the answer a client gets (a 409, a 413, ...)."""

from __future__ import annotations

from pathlib import Path


class StorageError(Exception):
    """Something storage could not do as asked."""


class DatabaseError(StorageError):
    """The database cannot be used as asked (newer schema, unreadable file, unreachable server)."""


class NoDatabase(DatabaseError):
    """There is no database at `path`, and the caller asked to open an existing database, not to create one."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(f"There is no database at {path}.")
        self.path = str(path)


class TransactionConflict(StorageError):
    """The transaction collided with a concurrent one and the engine will run its body again from the start.
    A body that catches errors of its own (a Bulk operation's savepoint) must let this one through."""


class Contended(StorageError):
    """A write kept colliding with concurrent ones (PostgreSQL's serialization failures, SQLite's lock held by
    another process) for longer than the engine's budget, and was given up, nothing written: the client should
    retry shortly. Not a TransactionConflict: no engine runs it again."""

    def __init__(self, attempts: int, seconds: float) -> None:
        super().__init__(f"gave up after {attempts} attempt(s) over {seconds:.1f} s")
        self.attempts = attempts
        self.seconds = seconds


class UniquenessConflict(StorageError):
    """A unique attribute (userName, Group displayName, compared folded) already holds the value."""


class IntegrityViolation(StorageError):
    """A write broke a constraint that is not a uniqueness one (a reference to a missing row, a CHECK): a bug in
    the caller, never something a client's input may cause, so the domain lets it become a 500."""


class DocumentTooLarge(StorageError):
    """The document to store is larger than the limit the caller set; nothing was written."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes, limit {limit}")
        self.size = size
        self.limit = limit


class TokenNameTaken(StorageError):
    """A token (live or revoked) already has this name."""
