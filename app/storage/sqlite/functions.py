"""The SQL functions rollcall's SQLite statements call, registered on every connection the engine opens."""

from __future__ import annotations

import sqlite3
from typing import Any

from app.protocol.folding import fold_case


def fold(value: Any) -> Any:
    """SQL `scim_fold(x)`: the one case rule (app.protocol.folding), which SQLite's lower() and NOCASE lack."""
    return fold_case(value) if isinstance(value, str) else value


def register_functions(conn: sqlite3.Connection) -> None:
    conn.create_function("scim_fold", 1, fold, deterministic=True)
