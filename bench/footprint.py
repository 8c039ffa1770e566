"""The binary's footprint (the "One binary" issue): size, time to the first answered request, and resident
memory when idle and after 10,000 users, each beside a baseline measured in the same run.

    make binary && .venv/bin/python bench/footprint.py [--binary dist/rollcall] [--users 10000] [--runs 5]

Baselines: the same rollcall run from the Python package (`python -m app serve`), and bench/bare_server.py,
the bare aiohttp server that bench/run.py uses as its ceiling. Prints a markdown table and PASS/FAIL lines for
the targets: under 30 MB on disk, ready in under 1.5 s, under 80 MB resident with 10,000 users.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SIZE_TARGET_MB = 30
READY_TARGET_S = 1.5
MEMORY_TARGET_MB = 80


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of the process and its children (a one-file binary runs its program as a child)."""
    total = 0.0
    for candidate in [pid, *_children(pid)]:
        for line in Path(f"/proc/{candidate}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                total += int(line.split()[1]) / 1024
    return total


def _children(pid: int) -> list[int]:
    found: list[int] = []
    path = Path(f"/proc/{pid}/task/{pid}/children")
    if path.exists():
        for child in path.read_text().split():
            found.append(int(child))
            found.extend(_children(int(child)))
    return found


@contextmanager
def started(command: list[str], url: str) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """Start a server and yield it with the seconds it took to answer its first request."""
    begin = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    response.read()
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"{command[0]} exited before answering") from None
                if time.perf_counter() - begin > 30:
                    raise RuntimeError(f"{command[0]} did not answer within 30 s") from None
                time.sleep(0.005)
        yield process, time.perf_counter() - begin
    finally:
        process.terminate()
        process.wait(timeout=10)


def rollcall_command(program: list[str], db: Path, port: int) -> list[str]:
    return [*program, "serve", "--db", str(db), "--host", "127.0.0.1", "--port", str(port)]


def ready_times(program: list[str], runs: int, workdir: Path) -> list[float]:
    times = []
    for run in range(runs):
        port = free_port()
        db = workdir / f"ready-{len(program)}-{run}.db"
        with started(rollcall_command(program, db, port), f"http://127.0.0.1:{port}/healthz") as (_, seconds):
            times.append(seconds)
    return times


def bare_ready_times(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        port = free_port()
        command = [sys.executable, str(BENCH / "bare_server.py"), "--port", str(port)]
        with started(command, f"http://127.0.0.1:{port}/") as (_, seconds):
            times.append(seconds)
    return times


async def seed(base: str, token: str, users: int, concurrency: int = 16) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    queue = iter(range(users))

    async def worker(session: aiohttp.ClientSession) -> None:
        for i in queue:
            body = {"userName": f"footprint-{i:06d}@example.com", "displayName": f"Footprint {i}",
                    "name": {"givenName": "Foot", "familyName": f"Print {i}"}, "active": True,
                    "emails": [{"value": f"footprint-{i:06d}@example.com", "type": "work", "primary": True}]}
            async with session.post(f"{base}/scim/v2/Users", json=body, headers=headers) as response:
                if response.status != 201:
                    raise RuntimeError(f"seeding failed: {response.status} {await response.text()}")

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))


def memory(program: list[str], users: int, workdir: Path) -> tuple[float, float]:
    db = workdir / f"memory-{len(program)}.db"
    token = subprocess.run([*program, "token", "create", "--name", "bench", "--db", str(db)], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.splitlines()[-1]
    port = free_port()
    with started(rollcall_command(program, db, port), f"http://127.0.0.1:{port}/healthz") as (process, _):
        time.sleep(0.5)
        idle = rss_mb(process.pid)
        asyncio.run(seed(f"http://127.0.0.1:{port}", token, users))
        with urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/scim/v2/Users?count=1000",
                headers={"Authorization": f"Bearer {token}"})) as response:
            response.read()
        loaded = rss_mb(process.pid)
    return idle, loaded


def bare_memory() -> float:
    port = free_port()
    command = [sys.executable, str(BENCH / "bare_server.py"), "--port", str(port)]
    with started(command, f"http://127.0.0.1:{port}/") as (process, _):
        time.sleep(0.5)
        return rss_mb(process.pid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=str(ROOT / "dist" / "rollcall"))
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    binary = Path(args.binary)
    if not binary.exists():
        print(f"{binary} does not exist: run `make binary` first", file=sys.stderr)
        return 2
    package = [sys.executable, "-m", "app"]
    with tempfile.TemporaryDirectory(prefix="rollcall-footprint-") as tmp:
        workdir = Path(tmp)
        size_mb = binary.stat().st_size / 1024 / 1024
        ready_binary = statistics.median(ready_times([str(binary)], args.runs, workdir))
        ready_package = statistics.median(ready_times(package, args.runs, workdir))
        ready_bare = statistics.median(bare_ready_times(args.runs))
        idle_binary, loaded_binary = memory([str(binary)], args.users, workdir)
        idle_package, loaded_package = memory(package, args.users, workdir)
        idle_bare = bare_memory()

    rows = [
        ("size on disk", f"{size_mb:.1f} MB", "-", "-", f"< {SIZE_TARGET_MB} MB", size_mb < SIZE_TARGET_MB),
        ("start to first answer (median)", f"{ready_binary:.2f} s", f"{ready_package:.2f} s",
         f"{ready_bare:.2f} s", f"< {READY_TARGET_S} s", ready_binary < READY_TARGET_S),
        ("resident, idle", f"{idle_binary:.1f} MB", f"{idle_package:.1f} MB", f"{idle_bare:.1f} MB", "-", None),
        (f"resident, {args.users:,} users", f"{loaded_binary:.1f} MB", f"{loaded_package:.1f} MB", "-",
         f"< {MEMORY_TARGET_MB} MB", loaded_binary < MEMORY_TARGET_MB),
    ]
    print(f"rollcall footprint ({os.cpu_count()} cores, {args.runs} starts each, {args.users:,} users)\n")
    print("| measure | binary | python -m app | bare aiohttp | target | |")
    print("|---|---|---|---|---|---|")
    for name, value, package_value, bare, target, passed in rows:
        verdict = "" if passed is None else "PASS" if passed else "FAIL"
        print(f"| {name} | {value} | {package_value} | {bare} | {target} | {verdict} |")
    print(f"\nratios: binary ready / bare ready = {ready_binary / ready_bare:.2f}x; "
          f"binary idle RSS / bare idle RSS = {idle_binary / idle_bare:.2f}x; "
          f"binary ready / package ready = {ready_binary / ready_package:.2f}x")
    return 0 if all(row[5] is not False for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
