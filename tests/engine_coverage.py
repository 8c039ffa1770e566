"""Which collected tests reach a SQLite file of their own, and whether each runs under the engine parameter or
says why it runs on one engine only (tests/test_engine_coverage.py asserts it over the whole suite).

A test reaches a SQLite file directly when its own code, a module-level helper it uses (in its module or imported
from another tests/ module), or a fixture it uses names one: the sqlite3 or aiosqlite modules, the SQLite engine's
class, or a `.db` / `-wal` file name. A helper called with `db=...` is handed its database and is not counted.
Read from the source with `ast`, as pytest collected it: a static check, so it costs one collection, no run.

Used as a pytest plugin (`-p tests.engine_coverage`, with ROLLCALL_ENGINE_COVERAGE_OUT naming a file) it writes
what it found for each collected test as JSON."""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SQLITE_NAMES = frozenset({"sqlite3", "aiosqlite", "SqliteStorage"})
SQLITE_FILE = re.compile(r"\.db\b|-wal\b")
# Fixtures that parametrize a test by storage engine (tests/conftest.py).
ENGINE_FIXTURES = ("engine", "module_engine")
# A test that asks for PostgreSQL itself is a test of that engine (it may share helpers that also serve SQLite).
POSTGRES_FIXTURES = ("postgres_url", "postgres_server")
# Keywords that hand a helper its database: the helper then opens what the caller chose, not a file of its own.
DB_KEYWORDS = frozenset({"db", "db_path", "db_location"})
OUT = "ROLLCALL_ENGINE_COVERAGE_OUT"


@dataclass
class Finding:
    nodeid: str
    reaches_sqlite: str | None  # why the test reaches a SQLite file directly, or None
    engine_parametrized: bool  # runs under the engine parameter, or on PostgreSQL by asking for it
    engines: list[str] | None  # the names of its `engines` marker, if it has one
    reason: str | None  # that marker's reason


class _Module:
    """The top-level functions and classes of one tests/ module, and the names it imports from other ones."""

    def __init__(self, path: Path) -> None:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        self.path = path
        self.defs: dict[str, ast.AST] = {}
        self.fixtures: set[str] = set()  # pytest calls these, the code never does: not followed as helpers
        self.imported: dict[str, str] = {}  # local name -> tests module (dotted) it comes from
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.defs[node.name] = node
                if any("fixture" in ast.unparse(decorator) for decorator in getattr(node, "decorator_list", ())):
                    self.fixtures.add(node.name)
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tests"):
                for alias in node.names:
                    self.imported[alias.asname or alias.name] = node.module


@cache
def _module(path: Path) -> _Module:
    return _Module(path)


def _module_path(dotted: str) -> Path:
    return TESTS.parent.joinpath(*dotted.split(".")).with_suffix(".py")


def _docstring_ids(node: ast.AST) -> set[int]:
    return {id(child.value) for child in ast.walk(node)
            if isinstance(child, ast.Expr) and isinstance(child.value, ast.Constant)}


def _handed_a_database(call: ast.Call) -> bool:
    return any(keyword.arg in DB_KEYWORDS for keyword in call.keywords)


def _reaches(path: Path, name: str, seen: frozenset[tuple[Path, str]] = frozenset(),
             helper: bool = False) -> str | None:
    """Why `name` (a top-level def of the module at `path`, or one it imports from tests/) reaches a SQLite file;
    a `helper` is one the code refers to (a fixture it only names is not one)."""
    module = _module(path)
    if name in module.imported:
        target = _module_path(module.imported[name])
        return _reaches(target, name, seen, helper) if target.exists() else None
    node = module.defs.get(name)
    if node is None or (path, name) in seen or (helper and name in module.fixtures):
        return None
    seen = seen | {(path, name)}
    docstrings = _docstring_ids(node)
    handed = {id(call.func) for call in ast.walk(node) if isinstance(call, ast.Call) and _handed_a_database(call)}
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str) and id(child) not in docstrings:
            if SQLITE_FILE.search(child.value):
                return f"{path.name}:{child.lineno} names the file {child.value!r}"
        elif isinstance(child, ast.Name) and child.id in SQLITE_NAMES:
            return f"{path.name}:{child.lineno} uses {child.id}"
        elif isinstance(child, ast.Attribute) and child.attr in SQLITE_NAMES:
            return f"{path.name}:{child.lineno} uses {child.attr}"
        elif (isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load) and child.id != name
              and id(child) not in handed):
            why = _reaches(path, child.id, seen, helper=True)
            if why:
                return f"{path.name}:{child.lineno} calls {child.id}, which {why}"
    return None


def _fixture_module(test_path: Path, name: str) -> Path | None:
    """Where pytest finds fixture `name` for a test in `test_path`: its module, the nearest conftest.py, the
    PostgreSQL plugin."""
    candidates = [test_path, *(d / "conftest.py" for d in test_path.parents if d == TESTS or TESTS in d.parents),
                  TESTS / "postgres_server.py"]
    for candidate in candidates:
        if candidate.exists() and name in _module(candidate).defs:
            return candidate
    return None


def finding(item: pytest.Item) -> Finding:
    path = Path(str(item.path)).resolve()
    function = getattr(item, "originalname", item.name)
    class_name = item.parent.name if isinstance(item.parent, pytest.Class) else None
    why = _reaches(path, class_name or function)
    for fixture in item.fixturenames:
        if why:
            break
        where = _fixture_module(path, fixture)
        if where is not None:
            reason = _reaches(where, fixture)
            why = f"its fixture {fixture}: {reason}" if reason else None
    marker = item.get_closest_marker("engines")
    return Finding(
        nodeid=item.nodeid,
        reaches_sqlite=why,
        engine_parametrized=any(name in item.fixturenames for name in (*ENGINE_FIXTURES, *POSTGRES_FIXTURES)),
        engines=list(marker.args) if marker else None,
        reason=marker.kwargs.get("reason") if marker else None,
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    out = os.environ.get(OUT)
    if out:
        Path(out).write_text(json.dumps([asdict(finding(item)) for item in session.items], indent=1))
