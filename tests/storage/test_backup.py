"""backup(): a file that appears at the backup's name while the copy is being made is never overwritten."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from app.storage.errors import DatabaseError
from app.storage.sqlite.backup import backup


@pytest.mark.engines("sqlite", reason="SQLite's backup of a file (PostgreSQL: pg_dump)")
def test_a_file_that_appears_at_the_name_during_the_backup_is_kept(tmp_path: Path) -> None:
    source = tmp_path / "big.db"
    with sqlite3.connect(source) as conn:  # large enough that the copy and its integrity check take a while
        conn.execute("CREATE TABLE t (x BLOB)")
        conn.executemany("INSERT INTO t VALUES (randomblob(4000))", [()] * 10_000)
    out = tmp_path / "out.db"

    def race() -> None:
        deadline = time.monotonic() + 30
        while not (tmp_path / "out.db.partial").exists() and time.monotonic() < deadline:
            time.sleep(0.0005)
        out.write_text("written by someone else meanwhile")

    racer = threading.Thread(target=race)
    racer.start()
    try:
        with pytest.raises(DatabaseError, match="already exists"):
            backup(source, out)
    finally:
        racer.join()
    assert out.read_text() == "written by someone else meanwhile"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.db", "out.db"]
