"""The schema version this rollcall writes: the same numbering for every engine (SQLite's migrations in
app/storage/sqlite/migrations.py; each engine's step N brings its schema to the same version N), and where each
engine's schema file is found."""

from __future__ import annotations

import sys
from pathlib import Path

from app.storage.errors import DatabaseError

SCHEMA_VERSION = 5


def read_schema_file(name: str) -> str:
    """The text of the schema file `name` (schema.sql, schema.postgres.sql): beside the package in a checkout or a
    PyInstaller bundle, under share/rollcall when installed from a wheel."""
    here = Path(__file__).resolve().parents[2]
    candidates = [here / name, Path(sys.prefix) / "share" / "rollcall" / name]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.insert(0, Path(bundle) / name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    raise DatabaseError(f"{name} was not found next to the application; reinstall rollcall.")
