"""`rollcall members --csv --at`: the access-review export, one line per member then, with role, groups, since."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import httpx2

from app.domain.clock import utc_now
from tests.conftest import REPO, serve_process

ADMINS, MEMBERS = "rollcall-administrators", "rollcall-members"


def test_members_at_as_an_access_review_csv(tmp_path: Path, db_location: str) -> None:
    with serve_process(tmp_path, db=db_location) as server:
        headers = {"Authorization": f"Bearer {server.token}"}
        with httpx2.Client(base_url=server.base_url, headers=headers, trust_env=False) as http:
            ann = http.post("/Users", json={"userName": "ann", "emails": [{"value": "ann@acme.com"}]}).json()
            bob = http.post("/Users", json={"userName": "bob"}).json()
            http.post("/Groups", json={"displayName": ADMINS, "members": [{"value": ann["id"]}]})
            group = http.post("/Groups", json={"displayName": MEMBERS, "members": [{"value": bob["id"]}]}).json()
            moment = utc_now()
            assert http.delete(f"/Groups/{group['id']}").status_code == 204
        exported = subprocess.run([sys.executable, "-m", "app", "members", "--csv", "--at", moment, "--db",
                                   server.db_path], cwd=REPO, capture_output=True, text=True, timeout=60)
        now = subprocess.run([sys.executable, "-m", "app", "members", "--csv", "--db", server.db_path], cwd=REPO,
                             capture_output=True, text=True, timeout=60)
        bad = subprocess.run([sys.executable, "-m", "app", "members", "--at", "soon", "--db", server.db_path],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["userName"], r["role"], r["groups"], r["id"]) for r in rows] == [
        ("ann", "admin", ADMINS, ann["id"]), ("bob", "member", MEMBERS, bob["id"])]
    assert all(r["since"] and r["since"] <= moment for r in rows)
    assert [r["userName"] for r in csv.DictReader(io.StringIO(now.stdout))] == ["ann"]
    assert bad.returncode == 1 and "--at must be" in bad.stderr

