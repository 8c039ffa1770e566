"""The same suite runs on both engines (issue 11), and stays so: a test that reaches a SQLite file of its own
either runs under the engine parameter or carries `@pytest.mark.engines(..., reason=...)` saying why it runs on
one engine only. Checked over the whole suite as pytest collects it (tests/engine_coverage.py), so a new test
tied to a SQLite file fails here the day it is added."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.engine_coverage import OUT, TESTS, finding


def _collected(request: pytest.FixtureRequest, tmp_path: Path) -> list[dict[str, object]]:
    """What engine_coverage finds for every test of the suite: from this session's own items when it collected
    every test module (a whole run, which then costs no second collection), else from a collection of its own."""
    items = request.session.items
    modules = {Path(str(item.path)).resolve() for item in items}
    if all(path.resolve() in modules for path in TESTS.rglob("test_*.py")):
        return [asdict(finding(item)) for item in items]
    out = tmp_path / "coverage.json"
    env = {**os.environ, OUT: str(out), "ROLLCALL_TEST_ENGINES": "sqlite,postgresql"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-p", "tests.engine_coverage", "tests"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(out.read_text())


def test_every_test_on_a_sqlite_file_runs_on_both_engines_or_says_why_not(request: pytest.FixtureRequest,
                                                                           tmp_path: Path) -> None:
    findings = _collected(request, tmp_path)
    assert len(findings) > 1000, "the collection missed most of the suite"
    unmarked_reasons = sorted({f["nodeid"].split("[")[0] for f in findings if f["engines"] and not f["reason"]})
    assert not unmarked_reasons, ("an `engines` marker without reason= (say why the test runs on these engines "
                                  "only):\n" + "\n".join(unmarked_reasons))
    tied = sorted({f"{f['nodeid'].split('[')[0]}: {f['reaches_sqlite']}" for f in findings
                   if f["reaches_sqlite"] and not f["engine_parametrized"] and not f["engines"]})
    assert not tied, ("tests that reach a SQLite file of their own but neither run under the engine parameter "
                      "(the `engine` fixture, or db_location/settings/database/...) nor carry "
                      "@pytest.mark.engines('sqlite', reason=...):\n" + "\n".join(tied))
    print(f"\n[engine coverage] {len(findings)} tests, "
          f"{sum(f['engine_parametrized'] for f in findings)} under the engine parameter, "
          f"{sum(bool(f['engines']) for f in findings)} marked for one engine")
