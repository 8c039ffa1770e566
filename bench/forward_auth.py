"""Forward auth on the hot path (issue 12): GET /auth/forward against GET /Users/{id}, both as a share of the bare
aiohttp ceiling, measured the way bench/run.py measures (wrk, the same connections and threads, bench/lua/).

    .venv/bin/python bench/forward_auth.py [--users 5000] [--duration 10] [--connections 16] [--threads 2]

Starts rollcall on a fresh database and bench/bare_server.py beside it, seeds N users over SCIM (wrk, as run.py's
seed) and makes them all members, then runs: bare GET (the ceiling), GET /Users/{id} of a random user, and
GET /auth/forward naming a random member by e-mail in X-Forwarded-Email (upper case: the case rule's path), with
a roster-only token, as a proxy has. Prints the table and forward auth's share next to GET /Users/{id}'s.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from run import (
    BENCH,
    PYTHON,
    QUICK,
    ROOT,
    Bench,
    Run,
    add_ratios,
    collect_users,
    free_port,
    http,
    server,
    table,
    wait_until_up,
)


def main() -> int:
    parser = argparse.ArgumentParser(description="Forward auth against GET /Users/{id} and the bare ceiling.")
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: `apt-get install -y wrk`", file=sys.stderr)
        return 2
    sizes = replace(QUICK, small=args.users, duration=args.duration, seed_cap=600)
    run = Run(quick=False, sizes=sizes, connections=args.connections, threads=args.threads)
    work = Path(tempfile.mkdtemp(prefix="rollcall-forward-bench-"))
    try:
        db = work / "rollcall.db"

        def token(name: str, *scopes: str) -> str:
            flags = [arg for scope in scopes for arg in ("--scope", scope)]
            made = subprocess.run([PYTHON, "-m", "app", "token", "create", "--name", name, *flags, "--db", str(db)],
                                  cwd=ROOT, capture_output=True, text=True, check=True)
            return made.stdout.strip().splitlines()[-1]

        scim_token, proxy_token = token("bench"), token("proxy", "roster")
        port, bare_port = free_port(), free_port()
        url, bare_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
        log = work / "rollcall.log"
        rollcall_cmd = [PYTHON, "-m", "app", "serve", "--db", str(db), "--host", "127.0.0.1", "--port", str(port)]
        bare_cmd = [PYTHON, str(BENCH / "bare_server.py"), "--host", "127.0.0.1", "--port", str(bare_port)]
        bench = Bench(run, work)
        with server(rollcall_cmd, log) as rollcall, server(bare_cmd, work / "bare.log") as bare:
            wait_until_up(f"{url}/scim/v2/ServiceProviderConfig", scim_token, rollcall, log)
            wait_until_up(f"{bare_url}/", None, bare, work / "bare.log")
            print(f"seeding {args.users:,} users:")
            bench.wrk("seed", url, "post_user.lua", kind="write", users=args.users, token=scim_token,
                      span=(1, args.users), cap=sizes.seed_cap, prefix="bench-user-")
            users = work / "users.tsv"
            count = collect_users(f"{url}/scim/v2", scim_token, users)
            ids = [line.split("\t")[0] for line in users.read_text().splitlines()]
            http("POST", f"{url}/scim/v2/Groups", scim_token, {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "rollcall-members",
                "members": [{"value": i} for i in ids]})
            print(f"{count:,} users, all members:")
            one = work / "one.tsv"
            one.write_text("1ddd6e1f951f427a5c432c5621f8adfc\tbench-user-000001\n")
            bench.wrk("bare-get", bare_url, "get_user.lua", kind="read", users=0, data=one, target="bare")
            bench.wrk("get", url, "get_user.lua", kind="read", users=count, token=scim_token, data=users,
                      label="GET /Users/{id}")
            bench.wrk("forward", url, "forward_auth.lua", kind="read", users=count, token=proxy_token, data=users,
                      label="GET /auth/forward")
            if rollcall.poll() is not None:
                raise RuntimeError("rollcall exited during the run")
        add_ratios(run)
        print()
        print(table(run))
        get, forward = run.get("get"), run.get("forward")
        assert get is not None and forward is not None and get.ratio and forward.ratio
        print(f"\nforward auth: {forward.ratio:.1%} of bare GET; GET /Users/{{id}}: {get.ratio:.1%} "
              f"(forward/get throughput {forward.rps / get.rps:.2f}); errors: forward {forward.errors}, "
              f"get {get.errors}")
        return 0 if forward.errors == 0 and get.errors == 0 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
