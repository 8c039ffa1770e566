"""One `rollcall serve` per SQLite file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from app.storage.errors import DatabaseError
from app.storage.sqlite.files import PRIVATE_FILE_MODE


class DatabaseLock:
    """Keeps a second `rollcall serve` off a database file that one already serves.

    An advisory lock on `<db>.lock`, released by the kernel when the process ends however it ends,
    so a crash never leaves a stale lock behind.
    """

    def __init__(self, db_path: str | Path) -> None:
        self.path = Path(str(db_path) + ".lock")
        self._handle: Any = None

    def acquire(self) -> None:
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE_MODE)
        except OSError as error:
            raise DatabaseError(f"Cannot create the lock file {self.path}: {error.strerror}.") from None
        handle = open(fd, "r+")  # noqa: SIM115 -- held open for the life of the server
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise DatabaseError(f"{self.path.with_suffix('')} is already being served by {holder}; "
                                "stop that server first (two servers on one file would fight over it).") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"rollcall pid {os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


