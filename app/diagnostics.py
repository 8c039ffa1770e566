"""What the running program is made of: versions, SQLite, and whether the C speedups loaded.

A PyInstaller bundle that misses aiohttp's compiled parser still works, only several times slower;
`rollcall check` and the binary's `serve` make that loud instead of silent.
"""

from __future__ import annotations

import importlib
import sys
from importlib import metadata

from app import __version__

# The compiled modules that the request path depends on for its speed.
SPEEDUPS = (
    "aiohttp._http_parser",
    "aiohttp._http_writer",
    "multidict._multidict",
    "yarl._quoting_c",
    "propcache._helpers_c",
    "frozenlist._frozenlist",
)
_PACKAGES = ("aiohttp", "marshmallow", "multidict", "yarl")


def missing_speedups() -> list[str]:
    missing = []
    for name in SPEEDUPS:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    from aiohttp import http_parser

    if "aiohttp._http_parser" not in missing and http_parser.HttpRequestParser is http_parser.HttpRequestParserPy:
        missing.append("aiohttp._http_parser (present but not in use: AIOHTTP_NO_EXTENSIONS is set?)")
    return missing


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        module = sys.modules.get(package) or importlib.import_module(package)
        return getattr(module, "__version__", "unknown")


def report() -> tuple[list[str], bool]:
    """Lines describing the runtime, and whether everything needed for full speed is there."""
    from app.storage.factory import check_schema_files, engine_versions
    from app.storage.schema_version import SCHEMA_VERSION

    lines = [
        f"rollcall {__version__} ({'single-file binary' if getattr(sys, 'frozen', False) else 'Python package'})",
        f"python {sys.version.split()[0]}",
        *engine_versions(),
        *(f"{package} {_version(package)}" for package in _PACKAGES),
    ]
    try:
        check_schema_files()
        lines.append(f"schema.sql found (with the migrations in this build: schema version {SCHEMA_VERSION})")
        schema_ok = True
    except Exception as error:  # reported, not raised: check must print everything
        lines.append(f"schema.sql MISSING: {error}")
        schema_ok = False
    missing = missing_speedups()
    for name in SPEEDUPS:
        lines.append(f"speedup {name}: {'MISSING' if any(m.startswith(name) for m in missing) else 'loaded'}")
    return lines, schema_ok and not missing
