"""The event loop choice (app/event_loop.py): uvloop by default where it is installed, asyncio's own on request."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from app import event_loop
from tests.conftest import REPO

uvloop = pytest.importorskip("uvloop", reason="uvloop is a dependency on Linux only")


async def running_loop_name() -> str:
    return event_loop.loop_name(asyncio.get_running_loop())


def test_auto_and_uvloop_run_on_uvloop() -> None:
    for choice in ("auto", "uvloop"):
        name = event_loop.run(running_loop_name(), choice)
        assert name == f"uvloop {event_loop.uvloop_version()}", choice


def test_asyncio_runs_on_the_stock_loop() -> None:
    name = event_loop.run(running_loop_name(), "asyncio")
    assert name.startswith("asyncio (") and "uvloop" not in name


def test_an_unknown_loop_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="auto, uvloop, asyncio"):
        event_loop.loop_factory("tokio")


def without_uvloop(code: str) -> subprocess.CompletedProcess[str]:
    """Python code run in a process where `import uvloop` fails, as on a machine without it."""
    return subprocess.run([sys.executable, "-c", f"import sys; sys.modules['uvloop'] = None\n{code}"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_without_uvloop_auto_falls_back_to_asyncio_and_uvloop_is_a_clear_error() -> None:
    result = without_uvloop(
        "import asyncio\nfrom app import event_loop\n"
        "print(event_loop.loop_factory('auto') is asyncio.new_event_loop)\n"
        "try:\n    event_loop.loop_factory('uvloop')\nexcept event_loop.LoopUnavailable as e:\n    print(e)\n")
    assert result.returncode == 0, result.stderr
    fell_back, refusal = result.stdout.splitlines()
    assert fell_back == "True"
    assert "uvloop is not installed" in refusal and "--loop asyncio" in refusal
