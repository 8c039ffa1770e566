"""The server CPU each write costs (issue 16): µs of rollcall's CPU time (utime + stime of every thread, from
/proc/<pid>/stat) per answered request, for POST, PATCH, PUT /Users, one member added to a group and Bulk.

    .venv/bin/python bench/write_cost.py --db sqlite            # 2,000 users, 3 s per timed scenario
    .venv/bin/python bench/write_cost.py --db sqlite --users 5000 --rounds 3

Unlike the rates, the CPU per request barely depends on what else the machine is doing, so it is the figure to
compare before and after a change on a shared machine. It uses bench/run.py's wrk driver, scripts and pinning
(rollcall on one CPU, wrk on the other); the rates are printed too, without a ceiling beside them.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench_run

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


@contextmanager
def served(command: list[str], log: Path, source: Path) -> Iterator[subprocess.Popen[bytes]]:
    """bench_run.server, from `source` (python -m app imports the app/ of its working directory)."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=source, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="sqlite", help="sqlite (a fresh file) or postgresql (a throw-away cluster)")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--duration", type=int, default=3, help="seconds per round of a timed scenario")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--loop", default="auto")
    parser.add_argument("--source", type=Path, default=bench_run.ROOT,
                        help="run the rollcall of this source tree (e.g. `git archive` of the commit before)")
    parser.add_argument("--only", action="append", help="scenario names to run (default: all)")
    parser.add_argument("--profile", type=Path, help="a folder: py-spy record --native --threads of each scenario's "
                        "first round, as collapsed stacks in <folder>/<scenario>.txt")
    parser.add_argument("--pause", action="store_true", help="wait for Enter before stopping (to attach py-spy)")
    args = parser.parse_args()

    pinning = bench_run.choose_pinning(True)
    if pinning.client_cpu is not None:
        os.sched_setaffinity(0, {pinning.client_cpu})
    sizes = bench_run.replace(bench_run.QUICK, duration=args.duration, rounds=args.rounds)
    run = bench_run.Run(quick=True, sizes=sizes, connections=args.connections, threads=1, loop=args.loop,
                        pinning=pinning.describe())
    root = Path(tempfile.mkdtemp(prefix="rollcall-write-cost-"))
    cluster = bench_run.PostgresCluster(pinning)
    try:
        engine = bench_run.engine_for(args.db, root, cluster)

        def token(name: str) -> str:
            made = subprocess.run([bench_run.PYTHON, "-m", "app", "token", "create", "--name", name, "--db",
                                   engine.location], cwd=args.source, capture_output=True, text=True, check=True)
            return made.stdout.strip().splitlines()[-1]

        scim_token = token("bench")
        port = bench_run.free_port()
        url = f"http://127.0.0.1:{port}"
        scim = f"{url}/scim/v2"
        log = root / "rollcall.log"
        command = pinning.server([bench_run.PYTHON, "-m", "app", "serve", "--db", engine.location, "--host",
                                  "127.0.0.1", "--port", str(port), "--loop", args.loop])
        bench = bench_run.Bench(run, pinning, root, url)
        print(f"{run.pinning}; {engine.name}; {args.users:,} users; {args.connections} connections")
        with served(command, log, args.source) as rollcall:
            bench_run.wait_until_up(f"{scim}/ServiceProviderConfig", scim_token, rollcall, log)
            pid = rollcall.pid

            def measure(name: str, per_request: int, runs: list[dict[str, object]]) -> None:
                if args.only and name not in args.only:
                    return
                cpus, rates = [], []
                answered = 0
                for number, options in enumerate(runs):
                    spy = None
                    if args.profile and number == 0:
                        args.profile.mkdir(parents=True, exist_ok=True)
                        spy = subprocess.Popen(pinning.client(
                            [str(Path(sys.executable).parent / "py-spy"), "record", "--native", "--threads",
                             "-r", "200", "-f", "raw", "-o", str(args.profile / f"{name}.txt"),
                             "-p", str(pid)]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    before = cpu_seconds(pid)
                    result = bench.wrk(url, token=scim_token, pid=pid, **options)  # type: ignore[arg-type]
                    spent = cpu_seconds(pid) - before
                    if spy is not None:
                        spy.send_signal(signal.SIGINT)
                        spy.wait()
                    if result.errors:
                        print(f"  {name}: {result.errors} errors {result.statuses}")
                    answered += result.requests
                    cpus.append(spent * 1e6 / max(1, result.requests * per_request))
                    rates.append(result.rps * per_request)
                unit = "user" if per_request > 1 else "request"
                print(f"  {name:<12} {statistics.median(rates):>9,.1f}/s  server CPU "
                      f"{statistics.median(cpus):>7,.0f} µs per {unit} (rounds: "
                      f"{', '.join(f'{c:,.0f}' for c in cpus)})", flush=True)

            n, rounds = args.users, args.rounds
            seed = bench_run.split((1, n), rounds)
            measure("POST", 1, [dict(script="post_user.lua", span=s, cap=120, prefix="bench-user-") for s in seed])
            users = root / "users.tsv"
            bench_run.collect_users(scim, scim_token, users)
            timed = dict(seconds=args.duration, data=users)
            measure("PATCH", 1, [dict(script="patch_user.lua", **timed) for _ in range(rounds)])
            measure("PUT", 1, [dict(script="put_user.lua", **timed) for _ in range(rounds)])
            gid = bench_run.http("POST", f"{scim}/Groups", scim_token, {"schemas": [bench_run.GROUP_SCHEMA],
                                                                         "displayName": "bench-group"})["id"]
            slice_size = max(args.connections, n // 10)
            first = bench_run.split((1, slice_size), rounds)
            last = bench_run.split((n - slice_size + 1, n), rounds)
            measure("member-first", 1, [dict(script="group_add.lua", span=s, cap=60, data=users, group=gid)
                                        for s in first])
            if n - slice_size > slice_size:
                bench.wrk(url, "group_add.lua", token=scim_token, span=(slice_size + 1, n - slice_size), cap=300,
                          data=users, group=gid)
            measure("member-last", 1, [dict(script="group_add.lua", span=s, cap=60, data=users, group=gid)
                                       for s in last])
            ops = 50
            measure("Bulk", ops, [dict(script="bulk_users.lua", span=(1 + 16 * i, 16 * (i + 1)), cap=120,
                                       ops=str(ops), prefix=f"bulk{i}-") for i in range(rounds)])
            if args.pause:
                input(f"rollcall pid {pid} at {url}; Enter stops it ")
    finally:
        cluster.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
