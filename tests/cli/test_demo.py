"""`rollcall demo` as a presenter runs it: the real command, its story to the end, the roster it leaves, and a
clean exit on SIGTERM or Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from app.cli.demo import STORY_OVER
from tests.conftest import REPO, free_port
from tests.simulator.test_story import FINAL


def start_demo(*args: str, command: tuple[str, ...] = (sys.executable, "-m", "app"), cwd: Path = REPO
               ) -> subprocess.Popen[str]:
    return subprocess.Popen([*command, "demo", "--no-browser", *args], cwd=cwd, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def read_until_story_over(process: subprocess.Popen[str], seconds: float = 60) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            error = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"the demo ended early: {lines} {error}")
        lines.append(line.rstrip("\n"))
        if line.startswith(STORY_OVER):
            return lines
    raise AssertionError(f"the story did not end within {seconds} s: {lines}")


def field(lines: list[str], label: str) -> str:
    return next(line.split(label, 1)[1].strip() for line in lines if line.strip().startswith(label))


@pytest.mark.parametrize(("sig", "speed"), [(signal.SIGTERM, "20"), (signal.SIGINT, "50")])
def test_the_demo_plays_its_story_keeps_serving_and_exits_0(sig: int, speed: str) -> None:
    port = free_port()
    started = time.monotonic()
    process = start_demo("--port", str(port), "--speed", speed)
    try:
        lines = read_until_story_over(process)
        assert time.monotonic() - started < 60
        steps = [line for line in lines if line.startswith("[")]
        assert len(steps) == 9 and not any("✗" in line for line in lines), lines
        assert "as the story says" in lines[-1] and "11 on the roster (2 admins, 9 members)" in lines[-1]
        assert any("dana member → admin" in line for line in steps)
        token = field(lines, "Token:")
        base_url = field(lines, "SCIM Base URL:")
        assert base_url == f"http://127.0.0.1:{port}/scim/v2"
        with httpx2.Client(headers={"Authorization": f"Bearer {token}"}, trust_env=False, timeout=10) as http:
            members = http.get(f"http://127.0.0.1:{port}/api/members").json()["members"]
            assert {member["userName"]: member["role"] for member in members if not member["held"]} == FINAL
            # The guests group's deletion is a mass removal: its seven people stay, held for a person to approve.
            assert len([member for member in members if member["held"]]) == 7
            assert "7 more held for approval" in lines[-1]
            time.sleep(0.3)  # still serving after the story
            assert http.get(f"{base_url}/Users", params={"count": "1"}).status_code == 200
        database = Path(lines[0].split("(database ")[1].removesuffix(")"))
        assert database.exists()
        process.send_signal(sig)
        assert process.wait(timeout=15) == 0
        assert process.stdout is not None and "demo: stopped" in process.stdout.read()
        assert not database.parent.exists()  # the scratch database goes with the demo
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_signal_in_the_middle_of_the_story_stops_it_with_exit_0() -> None:
    process = start_demo("--port", str(free_port()), "--speed", "0.5")  # 3 s between steps
    try:
        assert process.stdout is not None
        while not process.stdout.readline().startswith("[2/9]"):
            pass
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert time.monotonic() - started < 5
        rest = process.stdout.read()
        assert "demo: stopped" in rest and "[3/9]" not in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.engines("sqlite", reason="`rollcall demo` runs on an embedded SQLite file, by design")
def test_a_story_file_and_a_kept_database(tmp_path: Path) -> None:
    story = tmp_path / "story.json"
    story.write_text(json.dumps({"title": "Two people", "domain": "two.example", "pause": 0, "step": [
        {"do": "join", "say": "they join", "group": "rollcall-members", "people": ["ann", "bo"]},
        {"do": "suspend", "say": "Bo is suspended", "person": "bo"}]}))
    database = tmp_path / "kept.db"
    process = start_demo("--port", str(free_port()), "--story", str(story), "--db", str(database))
    try:
        lines = read_until_story_over(process)
        assert lines[-3:-1] == ["[1/2] they join: + ann (member), + bo (member)", "[2/2] Bo is suspended: - bo "
                                "(left: deactivated)"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    members = subprocess.run([sys.executable, "-m", "app", "members", "--db", str(database), "--json"], cwd=REPO,
                             capture_output=True, text=True, timeout=30)
    assert [m["userName"] for m in json.loads(members.stdout)["members"]] == ["ann@two.example"]
    again = start_demo("--port", str(free_port()), "--story", str(story), "--db", str(database))
    try:
        lines = read_until_story_over(again)
        assert any("this database has 1 member already" in line for line in lines)
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=15) == 0
    finally:
        if again.poll() is None:
            again.kill()
            again.wait()


def test_a_bad_story_or_a_taken_port_is_one_line_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[step]]\ndo = "dance"')
    refused = subprocess.run([sys.executable, "-m", "app", "demo", "--no-browser", "--story", str(bad)], cwd=REPO,
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "needs do = one of" in refused.stderr and "Traceback" not in refused.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run([sys.executable, "-m", "app", "demo", "--no-browser", "--port", str(port)], cwd=REPO,
                              capture_output=True, text=True, timeout=30)
    assert busy.returncode == 1 and "pick another --port" in busy.stderr and "Traceback" not in busy.stderr


def test_the_demo_prints_a_one_time_console_link_and_an_admin_token() -> None:
    """Issue 15's last piece: the demo opens the console (not a JSON 401), signed in by a link that works once."""
    port = free_port()
    process = start_demo("--port", str(port), "--speed", "50")
    try:
        lines = read_until_story_over(process)
        link = field(lines, "Console:")
        assert link.startswith(f"http://127.0.0.1:{port}/console/sign-in?once="), link
        admin = field(lines, "Admin token:")
        with httpx2.Client(trust_env=False, timeout=10) as browser:
            signed = browser.get(link, follow_redirects=True)  # to the members page, signed in
            assert signed.status_code == 200 and str(signed.url).endswith("/console/members")
            assert '<table id="members">' in signed.text and "ada" in signed.text
        with httpx2.Client(trust_env=False, timeout=10) as stranger:
            again = stranger.get(link, follow_redirects=False)
            assert again.status_code == 401 and "used or has expired" in again.text  # once only
            form = stranger.get(f"http://127.0.0.1:{port}/")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
            answer = stranger.post(f"http://127.0.0.1:{port}/console/sign-in", data={"token": admin, "csrf": csrf})
            assert answer.status_code == 303 and answer.headers["Location"] == "/console/members"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
