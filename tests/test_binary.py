"""Smoke test of the single-file binary (`make binary`), run by CI with ROLLCALL_BINARY=dist/rollcall.

It runs from an empty temporary folder, far from the source tree, as an admin would run it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx2
import pytest

from tests.cli.test_demo import read_until_story_over, start_demo
from tests.conftest import REPO, free_port, serve_process

EMBEDDED = pytest.mark.engines("sqlite", reason="the single-file binary's smoke test, on its embedded SQLite default")

BINARY = os.environ.get("ROLLCALL_BINARY")
pytestmark = pytest.mark.skipif(not BINARY, reason="set ROLLCALL_BINARY=dist/rollcall (after `make binary`)")


@pytest.fixture
def binary() -> str:
    assert BINARY is not None
    path = Path(BINARY)
    return str(path if path.is_absolute() else REPO / path)


@EMBEDDED
def test_the_binary_runs_every_command_and_serves_scim(binary: str, tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([binary, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert run("--version").stdout.startswith("rollcall ")
    checked = run("check")
    assert checked.returncode == 0 and "single-file binary" in checked.stdout, checked.stdout + checked.stderr
    assert "event loop: uvloop " in checked.stdout, checked.stdout  # bundled, not only installed here
    created = run("token", "create", "--name", "smoke", "--db", "smoke.db")
    assert created.returncode == 0
    token = created.stdout.splitlines()[-1]
    admin = run("token", "create", "--name", "console", "--scope", "admin", "--db", "smoke.db").stdout.splitlines()[-1]

    with serve_process(tmp_path, "--db", "smoke.db", token_name=None, command=(binary,), cwd=tmp_path) as server:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx2.Client(base_url=server.base_url, headers=headers, trust_env=False, timeout=10) as http:
            user = http.post("/Users", json={"userName": "smoke@acme.com", "active": True})
            assert user.status_code == 201
            user_id = user.json()["id"]
            assert http.get(f"/Users/{user_id}").json()["userName"] == "smoke@acme.com"
            patched = http.patch(f"/Users/{user_id}", json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": False}]})
            assert patched.status_code == 200 and patched.json()["active"] is False
            assert http.delete(f"/Users/{user_id}").status_code == 204
            assert http.get(f"/Users/{user_id}").status_code == 404
        assert "event loop: uvloop " in server.log
        # The console's templates and static files are inside the binary: sign in and read a page.
        root = server.base_url.removesuffix("/scim/v2")
        with httpx2.Client(base_url=root, trust_env=False, timeout=10) as browser:
            form = browser.get("/")
            assert form.status_code == 200 and '<label for="token">Admin token</label>' in form.text
            csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
            signed = browser.post("/console/sign-in", data={"token": admin, "csrf": csrf}, follow_redirects=True)
            assert signed.status_code == 200 and '<h1>Members</h1>' in signed.text
            assert browser.get("/console/static/console.css").status_code == 200
            assert "EventSource" in browser.get("/console/static/events.js").text
        started = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - started < 5
    assert (tmp_path / "smoke.db").exists()
    assert run("backup", "copy.db", "--db", "smoke.db").returncode == 0
    assert "0 members" in run("members", "--db", "smoke.db").stderr


@EMBEDDED
def test_the_binary_plays_the_demo_and_runs_the_selftest(binary: str, tmp_path: Path) -> None:
    # The simulator is imported lazily and the built-in story is a data file: both must be inside the binary.
    with serve_process(tmp_path, command=(binary,), cwd=tmp_path) as server:
        checked = subprocess.run([binary, "selftest", "--base-url", server.base_url, "--token", server.token],
                                 cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.splitlines()[-1].endswith(" passed, 0 failed")
    demo = start_demo("--speed", "50", "--port", str(free_port()), command=(binary,), cwd=tmp_path)
    try:
        lines = read_until_story_over(demo)
        assert "as the story says" in lines[-1]
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=15) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
