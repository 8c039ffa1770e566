"""`rollcall backup` for SQLite: a consistent copy of a live file through SQLite's online backup."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path

from app.storage.errors import DatabaseError, NoDatabase
from app.storage.sqlite.files import PRIVATE_FILE_MODE


def backup(source: str | Path, target: str | Path) -> None:
    """A consistent copy of a live database (SQLite's online backup), verified with integrity_check, as the new
    file `target`: never over an existing file, never through a symlink, never half-written.

    The copy is built in `<target>.partial`, a directory created for it alone (so no other user can put a symlink
    or a journal of their own into it), and then hard-linked to `target`: a link never replaces an existing name,
    so a file that appeared there meanwhile makes the backup fail instead of being overwritten. The directory is
    removed however the backup ends, unless the process is killed; then its name says what it is."""
    target = Path(target)
    if not Path(source).is_file():
        raise NoDatabase(source)
    if os.path.lexists(target):
        raise DatabaseError(f"{target} already exists; choose a new file name for the backup.")
    workdir = target.with_name(target.name + ".partial")
    try:
        os.mkdir(workdir, 0o700)
    except FileExistsError:
        raise DatabaseError(f"{workdir} is in the way (left by an interrupted backup?); remove it, or choose "
                            "another file name for the backup.") from None
    except FileNotFoundError:
        raise DatabaseError(f"Cannot create {target}: there is no directory {target.parent}.") from None
    except OSError as error:
        raise DatabaseError(f"Cannot create {target}: {error.strerror}.") from None
    try:
        copy = workdir / "copy.db"
        os.close(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         PRIVATE_FILE_MODE))
        _copy_database(source, copy)
        _link_new(copy, target)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _copy_database(source: str | Path, copy: Path) -> None:
    try:
        src = sqlite3.connect(f"{Path(source).absolute().as_uri()}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(copy)
            try:
                src.backup(dst)
                verdict = dst.execute("PRAGMA integrity_check").fetchone()[0]
                dst.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file, no -wal beside it
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.DatabaseError as error:  # "file is not a database", "database or disk is full", ...
        raise DatabaseError(f"Cannot back up {source}: {error}.") from None
    if verdict != "ok":
        raise DatabaseError(f"The copy failed its integrity check ({verdict}); the source may be damaged.")


def _link_new(built: Path, target: Path) -> None:
    """Give `built` the name `target`, which must not exist (as a file, a directory or a symlink)."""
    try:
        os.link(built, target)
    except FileExistsError:
        raise DatabaseError(f"{target} already exists; choose a new file name for the backup.") from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise DatabaseError(f"Cannot create {target}: {error.strerror}.") from None
        _copy_new(built, target)  # a file system without hard links (FAT, some network mounts)
    try:
        directory = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(directory)  # the new name, not only the data, survives a power loss
    finally:
        os.close(directory)


def _copy_new(built: Path, target: Path) -> None:
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except FileExistsError:
        raise DatabaseError(f"{target} already exists; choose a new file name for the backup.") from None
    except OSError as error:
        raise DatabaseError(f"Cannot create {target}: {error.strerror}.") from None
    try:
        with open(fd, "wb", closefd=False) as out, open(built, "rb") as data:
            shutil.copyfileobj(data, out)
            out.flush()
            os.fsync(fd)
    except OSError as error:
        os.unlink(target)  # ours: created exclusively above, so no one else's file
        raise DatabaseError(f"Cannot write {target}: {error.strerror}.") from None
    finally:
        os.close(fd)


