"""rollcall's benchmark (the "Performance" issue): rollcall against a bare aiohttp ceiling, driven by wrk.

    .venv/bin/python bench/run.py            # the full run: 10,000 then 100,000 users (stops within ~10 minutes)
    .venv/bin/python bench/run.py --quick    # a smoke run: 1,000 then 5,000 users, 3 s scenarios

It starts rollcall on a fresh database in a temporary directory and bench/bare_server.py beside it, runs
every scenario with wrk and the scripts in bench/lua/, then prints a markdown table and the targets as
PASS/FAIL lines, and writes both (plus the raw numbers as JSON) to bench/results/. See bench/README.md.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LUA = BENCH / "lua"
PYTHON = sys.executable  # the venv's python when run as .venv/bin/python bench/run.py, as rollcall's is

# The targets from the issue.
READ_TARGET = 0.40  # get and filter at the large size, as a fraction of bare GET
WRITE_TARGET = 0.25  # seed, patch-user and put-user, as a fraction of bare POST
GROUP_ADD_GROWTH = 1.2  # last-slice p50 over first-slice p50
GROUP_READ_VS_GET = 1.2  # "about" the user GET p50: the tolerance we read into the "~"
FLAT_AS_DATA_GROWS = 0.8  # throughput at the large size over the small size
PEAK_MEMORY_MB = 100


@dataclass(frozen=True)
class Sizes:
    small: int  # users for the first half of the run
    large: int  # users after seed-large
    group: int  # members added to the one group
    group_slice: int  # first and last slice of group-add, measured on their own
    delete: int  # users deleted at the end
    duration: int  # seconds for each duration-limited scenario
    # Seconds a count-limited phase may take. They keep the whole run near 10 minutes even when rollcall is
    # far below its targets; a phase that hits its cap is reported as such, with the size it did reach.
    seed_cap: int
    group_cap: int  # for each of the three group-add phases
    large_cap: int
    delete_cap: int


FULL = Sizes(small=10_000, large=100_000, group=10_000, group_slice=1_000, delete=2_000, duration=10,
             seed_cap=120, group_cap=45, large_cap=200, delete_cap=30)
QUICK = Sizes(small=1_000, large=5_000, group=1_000, group_slice=100, delete=200, duration=3,
              seed_cap=20, group_cap=10, large_cap=30, delete_cap=10)


@dataclass
class Result:
    scenario: str  # the key the targets look up
    label: str  # what the table shows
    target: str  # "rollcall" or "bare"
    users: int  # users in the database while it ran
    kind: str  # "read" or "write": which bare ceiling the ratio uses
    requests: int  # answers received
    expected: int | None  # count-limited runs: how many requests the slice holds
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    statuses: dict[str, int]
    ratio: float | None = None  # rps over the bare ceiling of the same kind

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors

    @property
    def capped(self) -> bool:
        return self.expected is not None and self.requests < self.expected


@dataclass
class Run:
    quick: bool
    sizes: Sizes
    connections: int
    threads: int
    results: list[Result] = field(default_factory=list)
    memory_kb: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    def get(self, scenario: str) -> Result | None:
        return next((r for r in self.results if r.scenario == scenario), None)


# --- processes -------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def wait_until_up(url: str, token: str | None, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; its log ends:\n{log_tail(log)}")
        try:
            http("GET", url, token)
            return
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    raise RuntimeError(f"server did not answer {url} within 30 s; its log ends:\n{log_tail(log)}")


@contextmanager
def server(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server subprocess that is stopped however the block ends."""
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak so far) of a process, in kB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


# --- HTTP for setup (not measured) -----------------------------------------------------------------------

def http(method: str, url: str, token: str | None, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/scim+json")
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.loads(answer.read() or b"{}")


def collect_users(scim: str, token: str, path: Path) -> int:
    """Every user's id and userName through the SCIM list API, written as "id<TAB>userName" lines in the
    order the server lists them (creation order), so the first lines are the first users seeded."""
    seen: dict[str, str] = {}
    start = 1
    while True:
        query = urllib.parse.urlencode({"startIndex": start, "count": 1000, "attributes": "userName"})
        page = http("GET", f"{scim}/Users?{query}", token)
        resources = page.get("Resources", [])
        for user in resources:
            seen[user["id"]] = user["userName"]
        start += len(resources)
        if not resources or start > page["totalResults"]:
            break
    path.write_text("".join(f"{uid}\t{name}\n" for uid, name in seen.items()))
    return len(seen)


# --- wrk -------------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, run: Run, work: Path) -> None:
        self.run = run
        self.work = work

    def wrk(self, scenario: str, target_url: str, script: str, *, kind: str, users: int, token: str = "",
            data: Path | None = None, span: tuple[int, int] | None = None, cap: int = 0, label: str = "",
            target: str = "rollcall", **extra: str) -> Result:
        """Run one wrk scenario. With span=(first, last) it is count-limited: each k in first..last is sent
        once (or until `cap` seconds pass); otherwise it runs for the configured duration."""
        run = self.run
        out = self.work / f"{scenario}.json"
        env = {
            **os.environ,
            "BENCH_LUA_DIR": str(LUA),
            "BENCH_OUT": str(out),
            "BENCH_TOKEN": token,
            "BENCH_THREADS": str(run.threads),
            "BENCH_DATA": str(data or ""),
            **{f"BENCH_{key.upper()}": value for key, value in extra.items()},
        }
        if span is not None:
            # common.lua parks a thread that has no item for ever; give every thread at least one.
            assert span[1] - span[0] + 1 >= run.threads, f"{scenario}: fewer items than threads"
            env["BENCH_FROM"], env["BENCH_TO"] = str(span[0]), str(span[1])
        seconds = cap if span is not None else run.sizes.duration
        command = ["wrk", "-t", str(run.threads), "-c", str(run.connections), "-d", f"{seconds}s",
                   "--timeout", "10s", "-s", str(LUA / script), target_url]
        label = label or scenario
        print(f"  {label:<40} ", end="", flush=True)
        output = self.work / f"{scenario}.wrk.txt"
        with output.open("w") as log:
            wrk = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                self.wait_for_wrk(wrk, out, seconds + 60, count_limited=span is not None)
            finally:
                if wrk.poll() is None:
                    wrk.kill()
                    wrk.wait()
        if wrk.returncode != 0 or not out.exists():
            raise RuntimeError(f"wrk failed for {scenario}:\n{output.read_text()}")
        raw = json.loads(out.read_text())
        taken = raw["duration_us"] / 1e6
        statuses = dict(sorted(raw["statuses"].items()))
        result = Result(
            scenario=scenario, label=label, target=target, users=users, kind=kind,
            requests=raw["answered"], expected=(span[1] - span[0] + 1) if span else None,
            seconds=round(taken, 2), rps=round(raw["answered"] / taken, 1),
            p50_ms=raw["latency_us"]["p50"] / 1000, p99_ms=raw["latency_us"]["p99"] / 1000,
            non2xx=sum(n for code, n in statuses.items() if not 200 <= int(code) < 300),
            socket_errors=sum(raw["socket_errors"].values()), statuses=statuses,
        )
        run.results.append(result)
        print(f"{result.rps:>9.1f} req/s  p50 {result.p50_ms:>8.2f} ms  p99 {result.p99_ms:>8.2f} ms  "
              f"errors {result.errors}  {result.requests:,} in {result.seconds:.1f} s"
              + ("  (hit its cap)" if result.capped else ""), flush=True)
        if result.capped:
            run.notes.append(f"{label}: only {result.requests:,} of {result.expected:,} requests were answered "
                             f"within its {seconds} s cap")
        return result

    def wait_for_wrk(self, wrk: subprocess.Popen[bytes], out: Path, timeout: float, *, count_limited: bool) -> None:
        """Wait for wrk to finish. wrk's main thread sleeps for the whole -d duration even when every thread
        has stopped, so a count-limited run is over when each thread has left its marker (see common.lua);
        SIGINT then cuts that sleep short and wrk reports as usual."""
        deadline = time.monotonic() + timeout
        interrupted = False
        while wrk.poll() is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"wrk did not finish within {timeout:.0f} s")
            if count_limited and not interrupted:
                markers = glob.glob(f"{glob.escape(str(out))}.stopped.*")
                if len(markers) == self.run.threads:
                    wrk.send_signal(signal.SIGINT)
                    interrupted = True
            time.sleep(0.01)

    def record_memory(self, label: str, pid: int) -> None:
        for key, value in memory_kb(pid).items():
            self.run.memory_kb[f"{key} {label}"] = value


def run_all(run: Run, work: Path) -> None:
    sizes = run.sizes
    bench = Bench(run, work)
    db = work / "rollcall.db"
    created = subprocess.run([PYTHON, "-m", "app", "token", "create", "--name", "bench", "--db", str(db)],
                             cwd=ROOT, capture_output=True, text=True, check=True)
    token = created.stdout.strip().splitlines()[-1]
    port, bare_port = free_port(), free_port()
    rollcall_url, bare_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
    scim = f"{rollcall_url}/scim/v2"
    first_users, all_users = work / "users-first.tsv", work / "users-all.tsv"
    log = work / "rollcall.log"

    rollcall_cmd = [PYTHON, "-m", "app", "serve", "--db", str(db), "--host", "127.0.0.1", "--port", str(port)]
    bare_cmd = [PYTHON, str(BENCH / "bare_server.py"), "--host", "127.0.0.1", "--port", str(bare_port)]
    with server(rollcall_cmd, log) as rollcall, server(bare_cmd, work / "bare.log") as bare:
        wait_until_up(f"{scim}/ServiceProviderConfig", token, rollcall, log)
        wait_until_up(f"{bare_url}/", None, bare, work / "bare.log")
        pid = rollcall.pid

        def alive() -> None:
            if rollcall.poll() is not None:
                raise RuntimeError(f"rollcall exited with {rollcall.returncode}; its log ends:\n{log_tail(log)}")

        def wrk(scenario: str, script: str, **options: Any) -> Result:
            result = bench.wrk(scenario, rollcall_url, script, token=token, **options)
            alive()
            return result

        print("ceiling (bare aiohttp):")
        # The bare server gets the same scripts as rollcall, so the client side costs the same. GET needs
        # one id to put in the path; any will do.
        one = work / "one.tsv"
        one.write_text("1ddd6e1f951f427a5c432c5621f8adfc\tbench-user-000001\n")
        bench.wrk("bare-get", bare_url, "get_user.lua", kind="read", users=0, data=one, target="bare")
        bench.wrk("bare-post", bare_url, "post_user.lua", kind="write", users=0, target="bare")

        print(f"rollcall, seeding {sizes.small:,} users:")
        wrk("seed", "post_user.lua", kind="write", users=sizes.small, span=(1, sizes.small), cap=sizes.seed_cap,
            prefix="bench-user-")
        bench.record_memory("after seed", pid)
        small = collect_users(scim, token, first_users)
        if small != sizes.small:
            run.notes.append(f"after seed the list API returned {small:,} users, not {sizes.small:,}")
        print(f"rollcall at {small:,} users:")
        wrk("get", "get_user.lua", kind="read", users=small, data=first_users)
        wrk("filter", "filter_user.lua", kind="read", users=small, data=first_users)
        wrk("list", "list_users.lua", kind="read", users=small, total=str(small))
        wrk("patch-user", "patch_user.lua", kind="write", users=small, data=first_users)
        wrk("put-user", "put_user.lua", kind="write", users=small, data=first_users)

        # One group, then one member per PATCH in three count-limited phases over slices of the user list;
        # the first and the last slice are the ones compared.
        gid = http("POST", f"{scim}/Groups", token, {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "bench-group"})["id"]
        n, s = min(sizes.group, small), sizes.group_slice

        def group_size() -> int:
            # Asked of the server: a capped phase abandons requests that rollcall still carries out.
            return len(http("GET", f"{scim}/Groups/{gid}", token).get("members", []))

        members = 0
        for phase, span in (("first", (1, s)), ("middle", (s + 1, n - s)), ("last", (n - s + 1, n))):
            result = wrk(f"group-add {phase}", "group_add.lua", kind="write", users=small, data=first_users,
                         span=span, cap=sizes.group_cap, group=gid)
            now = group_size()
            result.label = f"group-add {phase} ({members:,}→{now:,} members)"
            members = now
        if members != sizes.group:
            run.notes.append(f"after group-add the group has {members:,} members, not {sizes.group:,}")
        wrk("group-read", "get_group.lua", kind="read", users=small, group=gid, query="",
            label=f"group-read ({members:,} members)")
        wrk("group-read excl", "get_group.lua", kind="read", users=small, group=gid,
            query="?excludedAttributes=members", label="group-read ?excludedAttributes=members")

        more = sizes.large - sizes.small
        print(f"rollcall, seeding {more:,} more users:")
        seeded = wrk("seed-large", "post_user.lua", kind="write", users=sizes.large,
                     span=(sizes.small + 1, sizes.large), cap=sizes.large_cap, prefix="bench-user-",
                     label=f"seed-{more // 1000}k")
        large = seeded.users = collect_users(scim, token, all_users)
        bench.record_memory(f"at {large:,} users", pid)
        if large != sizes.large:
            run.notes.append(f"after seed-{more // 1000}k the list API returned {large:,} users, "
                             f"not {sizes.large:,}")
        print(f"rollcall at {large:,} users:")
        at = f"@{round(large / 1000, 1):g}k"
        wrk("filter@large", "filter_user.lua", kind="read", users=large, data=all_users, label=f"filter{at}")
        wrk("get@large", "get_user.lua", kind="read", users=large, data=all_users, label=f"get{at}")
        # The first users listed are the group's members, so each delete also drops one of its memberships.
        wrk("delete", "delete_user.lua", kind="write", users=large, data=first_users, span=(1, sizes.delete),
            cap=sizes.delete_cap, label="delete (group members)")
        bench.record_memory("at the end", pid)


# --- report ----------------------------------------------------------------------------------------------

def add_ratios(run: Run) -> None:
    ceiling = {r.kind: r.rps for r in run.results if r.target == "bare"}
    for result in run.results:
        if result.target == "rollcall" and result.kind in ceiling:
            result.ratio = round(result.rps / ceiling[result.kind], 3)


def table(run: Run) -> str:
    lines = ["| scenario | users | requests | req/s | p50 ms | p99 ms | errors | vs bare |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in run.results:
        ceiling = "GET" if r.kind == "read" else "POST"
        ratio = "ceiling" if r.target == "bare" else "n/a" if r.ratio is None else f"{r.ratio:.1%} of bare {ceiling}"
        label = r.label + (" (capped)" if r.capped else "")
        lines.append(f"| {label} | {r.users:,} | {r.requests:,} | {r.rps:,.1f} | "
                     f"{r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} | {ratio} |")
    return "\n".join(lines)


def targets(run: Run) -> list[str]:
    sizes = run.sizes
    lines: list[str] = []

    def check(ok: bool | None, text: str) -> None:
        lines.append(f"- {'n/a ' if ok is None else 'PASS' if ok else 'FAIL'} {text}")

    def ratio(name: str) -> float | None:
        r = run.get(name)
        return r.ratio if r else None

    def big_enough(name: str) -> str:
        r = run.get(name)
        return "" if r is None or r.users >= sizes.large else f" (only {r.users:,} users were reached)"

    for name in ("get@large", "filter@large"):
        value = ratio(name)
        check(None if value is None else value >= READ_TARGET and not big_enough(name),
              f"{name.replace('@large', f'@{sizes.large // 1000}k')} ≥ {READ_TARGET:.0%} of bare GET: "
              f"{'n/a' if value is None else f'{value:.1%}'}{big_enough(name)}")
    for name in ("seed", "patch-user", "put-user"):
        value = ratio(name)
        check(None if value is None else value >= WRITE_TARGET,
              f"{name} ≥ {WRITE_TARGET:.0%} of bare POST: {'n/a' if value is None else f'{value:.1%}'}")
    first, last = run.get("group-add first"), run.get("group-add last")
    if first and last:
        growth = last.p50_ms / first.p50_ms
        check(growth <= GROUP_ADD_GROWTH,
              f"group-add p50 of the last {sizes.group_slice:,} adds ≤ {GROUP_ADD_GROWTH}x that of the first "
              f"{sizes.group_slice:,}: {last.p50_ms:.2f} / {first.p50_ms:.2f} ms = {growth:.2f}x ({last.label})")
    else:
        check(None, "group-add last/first p50")
    excl, get = run.get("group-read excl"), run.get("get")
    if excl and get:
        vs_get = excl.p50_ms / get.p50_ms
        check(vs_get <= GROUP_READ_VS_GET,
              f"group-read ?excludedAttributes=members p50 ≤ ~user get p50 (tolerance {GROUP_READ_VS_GET}x): "
              f"{excl.p50_ms:.2f} / {get.p50_ms:.2f} ms = {vs_get:.2f}x")
    else:
        check(None, "group-read ?excludedAttributes=members p50 vs user get p50")
    for name in ("get", "filter"):
        small, large = run.get(name), run.get(f"{name}@large")
        if small and large:
            flat = large.rps / small.rps
            check(flat >= FLAT_AS_DATA_GROWS and not big_enough(f"{name}@large"),
                  f"{name} at {large.users:,} users within 20% of at {small.users:,} (throughput): "
                  f"{large.rps:,.1f} / {small.rps:,.1f} req/s = {flat:.2f}{big_enough(f'{name}@large')}")
        else:
            check(None, f"{name} flat as data grows")
    peak_kb = run.memory_kb.get("VmHWM at the end")
    check(None if peak_kb is None else peak_kb / 1024 < PEAK_MEMORY_MB and not big_enough("get@large"),
          f"rollcall peak memory (VmHWM) < {PEAK_MEMORY_MB} MB at {sizes.large:,} users: "
          f"{'n/a' if peak_kb is None else f'{peak_kb / 1024:.1f} MB'}{big_enough('get@large')}")
    errors = sum(r.errors for r in run.results)
    check(errors == 0, f"no non-2xx answers or socket errors in any scenario: {errors}")
    return lines


def report(run: Run) -> str:
    sizes = run.sizes
    mode = "quick" if run.quick else "full"
    parts = [
        f"# rollcall benchmark ({mode} run, {time.strftime('%Y-%m-%d %H:%M:%S %Z')})",
        "",
        f"wrk, {run.connections} connections, {run.threads} threads; {sizes.duration} s per duration-limited "
        f"scenario; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}; wall time {run.wall_seconds:.0f} s; "
        f"load average at the end {os.getloadavg()[0]:.2f} (anything else running shares the CPUs).",
        "",
        table(run),
        "",
        "Memory of the rollcall process: " + (", ".join(
            f"{key} {value / 1024:.1f} MB" for key, value in run.memory_kb.items()) or "n/a") + ".",
        "",
        "## Targets",
        "",
        *targets(run),
    ]
    errors = [r for r in run.results if r.errors]
    if errors or run.notes:
        parts += ["", "## Notes", ""]
        parts += [f"- {r.label}: HTTP statuses {r.statuses}" for r in errors]
        parts += [f"- {note}" for note in run.notes]
    return "\n".join(parts) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark rollcall against a bare aiohttp server with wrk.")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,000/5,000 users, 3 s scenarios")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cap-factor", type=float, default=1.0,
                        help="multiply the time caps of the count-limited phases (seed, group-add, seed-large, "
                             "delete), e.g. 10 to let a slow rollcall reach the full sizes")
    parser.add_argument("--out", type=Path, default=BENCH / "results",
                        help="where latest.md, latest.json and rollcall.log go (default bench/results)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (database, wrk output)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: run `make bench`, or `apt-get install -y wrk`", file=sys.stderr)
        return 2

    sizes = QUICK if args.quick else FULL
    f = args.cap_factor
    sizes = replace(sizes, seed_cap=round(sizes.seed_cap * f), group_cap=round(sizes.group_cap * f),
                    large_cap=round(sizes.large_cap * f), delete_cap=round(sizes.delete_cap * f))
    run = Run(quick=args.quick, sizes=sizes, connections=args.connections, threads=args.threads)
    work = Path(tempfile.mkdtemp(prefix="rollcall-bench-"))
    started = time.monotonic()
    failed = False
    try:
        run_all(run, work)
    except Exception as error:  # report what was measured before the failure, then exit non-zero
        failed = True
        traceback.print_exc()
        run.notes.append(f"the run stopped early: {type(error).__name__}: {str(error).splitlines()[0]}")
    finally:
        run.wall_seconds = round(time.monotonic() - started, 1)
        args.out.mkdir(parents=True, exist_ok=True)
        log = work / "rollcall.log"
        if log.exists():
            # Keep everything but the per-request access lines: those run to megabytes and say nothing wrk does not.
            kept = [line for line in log.read_text(errors="replace").splitlines() if "rollcall.access" not in line]
            (args.out / "rollcall.log").write_text("\n".join(kept) + "\n")
            problems = sum(1 for line in kept if "Traceback" in line or " ERROR " in line)
            if problems:
                run.notes.append(f"rollcall's log has {problems} ERROR/Traceback line(s): see {args.out}/rollcall.log")
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    add_ratios(run)
    text = report(run)
    print()
    print(text)
    (args.out / "latest.md").write_text(text)
    (args.out / "latest.json").write_text(json.dumps(
        {**asdict(run), "results": [{**asdict(r), "errors": r.errors, "capped": r.capped} for r in run.results]},
        indent=2) + "\n")
    print(f"wrote {args.out / 'latest.md'} and {args.out / 'latest.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
