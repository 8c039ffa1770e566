"""First start (issue 14): `rollcall serve` on a new database prints two tokens once, the identity provider's and
an admin one, with the console's address; the admin token signs in to the console there."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx2

from tests.cli.test_commands import rollcall
from tests.conftest import REPO, free_port, wait_for_port


def _first_lines(db: str, port: int, count: int, *extra: str) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen([sys.executable, "-m", "app", "serve", "--db", db, "--port", str(port), *extra],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    return process, [process.stdout.readline() for _ in range(count)]


def test_a_new_database_gets_an_identity_provider_token_and_an_admin_token_for_the_console(tmp_path: Path,
                                                                                          db_location: str) -> None:
    db, port = db_location, free_port()
    process, lines = _first_lines(db, port, 8)
    try:
        text = "".join(lines)
        idp = re.search(r"^  Token:    (rc_\S+)$", text, re.M)
        admin = re.search(r"^  Admin token: (rc_\S+)$", text, re.M)
        assert idp and admin and idp.group(1) != admin.group(1), text
        assert f"  Console:     http://127.0.0.1:{port}/\n" in text
        log = tmp_path / "first-lines.log"  # what wait_for_port quotes if the server exits early
        log.write_text(text)
        wait_for_port(port, process, log)  # type: ignore[arg-type]  # a Popen of text, not bytes
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=10) as http:
            form = http.get("/")
            assert form.status_code == 200 and "Admin token" in form.text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
            refused = http.post("/console/sign-in", data={"token": idp.group(1), "csrf": csrf})
            assert refused.status_code == 403  # the identity provider's token is no console token
            csrf = re.search(r'name="csrf" value="([^"]+)"', refused.text).group(1)
            signed = http.post("/console/sign-in", data={"token": admin.group(1), "csrf": csrf})
            assert signed.status_code == 303 and signed.headers["Location"] == "/console/members"
            assert http.get("/console/members").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
    listed = rollcall("token", "list", "--db", db).stdout
    assert re.search(r"^default\s+scim,roster\s", listed, re.M) and re.search(r"^console-admin\s+admin\s", listed, re.M)
    assert idp.group(1) not in listed and admin.group(1) not in listed


def test_an_existing_database_is_left_as_it_is_and_told_where_the_console_is(db_location: str) -> None:
    db, port = db_location, free_port()
    assert rollcall("token", "create", "--name", "idp", "--db", db).returncode == 0
    process, lines = _first_lines(db, port, 2)  # the open-files log line, and the serving line
    process.terminate()
    process.wait(timeout=10)
    assert not any("Token" in line or "had no API token" in line for line in lines), lines
    assert any(line.rstrip().endswith(f"; the console is at http://127.0.0.1:{port}/") for line in lines), lines
    assert "console-admin" not in rollcall("token", "list", "--db", db).stdout


def test_the_console_address_follows_the_public_base_url(db_location: str) -> None:
    db = db_location
    process, lines = _first_lines(db, free_port(), 8, "--base-url", "https://rollcall.example.com/scim/v2")
    process.terminate()
    process.wait(timeout=10)
    assert "  Console:     https://rollcall.example.com/\n" in lines, lines
