"""bench/run.py's rounds (issue 16): a round never starts while the servers' CPU is still busy with what the round
before left running, since a ceiling round that shares its CPU is starved and flatters rollcall's ratio."""

from __future__ import annotations

import os
import subprocess
import sys
from types import ModuleType

import pytest


def test_a_round_does_not_start_while_the_servers_cpu_is_busy(bench: ModuleType,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = min(os.sched_getaffinity(0))
    monkeypatch.setattr(bench, "SETTLE_TIMEOUT_S", 1.0)
    busy = subprocess.Popen(["taskset", "-c", str(cpu), sys.executable, "-c", "while True: pass"])
    try:
        assert bench.Pinning(cpu, None).wait_until_idle() is None
    finally:
        busy.kill()
        busy.wait()


def test_nothing_waits_when_nothing_is_pinned(bench: ModuleType) -> None:
    assert bench.Pinning(None, None).wait_until_idle() is None
