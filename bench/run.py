"""rollcall's benchmark (issue 16): rollcall against a bare aiohttp ceiling, driven by wrk, the fair way.

    .venv/bin/python bench/run.py            # the full run: 10,000 then 100,000 users
    .venv/bin/python bench/run.py --quick    # a smoke run: 1,000 then 5,000 users, 1 s rounds

It starts rollcall on a fresh database and bench/bare_server.py beside it, on the same event loop, both pinned to
one CPU with wrk (one thread) pinned to another, and runs every scenario as alternating rounds (bare, rollcall,
bare, rollcall, ...), reporting medians. Then it prints a markdown table of every scenario beside its ceiling, the
issue's targets as PASS/FAIL lines and py-spy profiles of the worst ratios, and writes them (plus the raw numbers as
JSON) to bench/results/. See bench/README.md.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # tests/postgres_cluster.py: the throw-away PostgreSQL cluster the tests start too
from tests.postgres_cluster import PostgresServer, start_server, stop_server  # noqa: E402

LUA = BENCH / "lua"
PYTHON = sys.executable  # the venv's python when run as .venv/bin/python bench/run.py, as rollcall's is
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

# The targets of issue 16.
READ_TARGET = 0.40  # get, filter (userName, externalId) and forward auth, as a fraction of bare GET
WRITE_TARGET = 0.25  # POST, PATCH, PUT /Users and one member added, as a fraction of the bare echo
PAGE_TARGET = 0.08  # a page of 100 users, as a fraction of bare GET
LAST_PAGE_VS_FIRST = 1.2  # p50 of the last page of the large size over the first page's
GROUP_READ_RPS = 400  # reading the 10,000-member group: 10x the 40 req/s the issue started from
GROUP_ADD_GROWTH = 1.2  # p50 of adding the last members over adding the first
GROUP_READ_VS_GET = 1.2  # group read without members: "about" the user GET p50
# Before each round: the servers' CPU must be this idle over one sample, for at most the timeout (Pinning).
IDLE_SHARE, SETTLE_SAMPLE_S, SETTLE_TIMEOUT_S = 0.9, 0.25, 20.0
FLAT_AS_DATA_GROWS = 0.8  # throughput at the large size over the small size
PEAK_MEMORY_MB = 100


@dataclass(frozen=True)
class Sizes:
    small: int  # users for the first half of the run
    large: int  # users after seed-large
    group: int  # members added to the one group
    group_slice: int  # first and last slice of group-add, measured on their own
    delete: int  # users deleted at the end
    bulk_requests: int  # POST /Bulk requests, each of bulk_ops user creations
    bulk_ops: int
    duration: int  # seconds of each round of a duration-limited scenario
    rounds: int  # alternating rounds (bare, rollcall) per scenario
    # Seconds a count-limited phase may take (shared by its rounds). A phase that hits its cap is reported as such,
    # with the size it did reach.
    seed_cap: int
    group_cap: int  # for each of the three group-add phases
    large_cap: int
    delete_cap: int
    bulk_cap: int


FULL = Sizes(small=10_000, large=100_000, group=10_000, group_slice=1_000, delete=2_000, bulk_requests=30,
             bulk_ops=100, duration=5, rounds=3, seed_cap=120, group_cap=60, large_cap=450, delete_cap=30,
             bulk_cap=60)
QUICK = Sizes(small=1_000, large=5_000, group=1_000, group_slice=99, delete=201, bulk_requests=6, bulk_ops=50,
              duration=1, rounds=3, seed_cap=30, group_cap=15, large_cap=60, delete_cap=15, bulk_cap=15)


@dataclass
class Result:
    """One wrk run: one round of a scenario, or of its ceiling."""

    target: str  # "rollcall" or "bare"
    requests: int  # answers received
    expected: int | None  # count-limited runs: how many requests the slice holds
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    statuses: dict[str, int]
    peak_rss_kb: int | None = None  # the server's highest VmRSS sampled during the run

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors

    @property
    def capped(self) -> bool:
        return self.expected is not None and self.requests < self.expected


@dataclass
class Row:
    """A scenario: its rounds on rollcall and the rounds of its ceiling that alternated with them."""

    scenario: str  # the key the targets look up
    label: str  # what the table shows
    users: int  # users in the database while it ran
    kind: str  # "read" (ceiling: bare GET) or "write" (ceiling: bare echo)
    rounds: list[Result] = field(default_factory=list)
    ceiling: list[Result] = field(default_factory=list)
    per_request: int = 1  # Bulk: user creations per request, so that its rate is in users/s

    @property
    def rps(self) -> float:
        return round(statistics.median(r.rps for r in self.rounds) * self.per_request, 1)

    @property
    def p50_ms(self) -> float:
        return statistics.median(r.p50_ms for r in self.rounds)

    @property
    def p99_ms(self) -> float:
        return statistics.median(r.p99_ms for r in self.rounds)

    @property
    def ceiling_rps(self) -> float | None:
        return statistics.median(r.rps for r in self.ceiling) if self.ceiling else None

    @property
    def ratio(self) -> float | None:
        ceiling = self.ceiling_rps
        return round(self.rps / ceiling, 4) if ceiling else None

    @property
    def peak_rss_kb(self) -> int | None:
        peaks = [r.peak_rss_kb for r in self.rounds if r.peak_rss_kb]
        return max(peaks) if peaks else None

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.rounds)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.rounds) + sum(r.errors for r in self.ceiling)

    @property
    def capped(self) -> bool:
        return any(r.capped for r in self.rounds)


@dataclass
class EngineRun:
    """Everything measured against one database (one engine), so that engines can be shown side by side."""

    engine: str  # "sqlite" or "postgresql"
    location: str  # shown in the report; a URL without its password
    rows: list[Row] = field(default_factory=list)
    memory_kb: dict[str, int] = field(default_factory=dict)
    loops: dict[str, str] = field(default_factory=dict)  # "rollcall" / "bare" -> the loop each said it runs on
    notes: list[str] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)  # scenario -> summary of its py-spy profile
    settle_waits: list[float] = field(default_factory=list)  # each round's wait for an idle server CPU, s
    unsettled: int = 0  # rounds started on a server CPU that did not become idle

    def get(self, scenario: str) -> Row | None:
        return next((r for r in self.rows if r.scenario == scenario), None)


@dataclass
class Run:
    quick: bool
    sizes: Sizes
    connections: int
    threads: int
    loop: str  # the --loop given to both servers
    pinning: str
    engines: list[EngineRun] = field(default_factory=list)
    load_before: str = ""
    load_after: str = ""
    wall_seconds: float = 0.0
    postgres: str = ""  # how the PostgreSQL server of --db postgresql ran, when one did


# --- the machine: CPU pinning -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pinning:
    """Which CPU the servers and which the load generator (wrk, py-spy, this script) run on, by taskset."""

    server_cpu: int | None
    client_cpu: int | None

    def server(self, command: list[str]) -> list[str]:
        return command if self.server_cpu is None else ["taskset", "-c", str(self.server_cpu), *command]

    def client(self, command: list[str]) -> list[str]:
        return command if self.client_cpu is None else ["taskset", "-c", str(self.client_cpu), *command]

    def wait_until_idle(self) -> float | None:
        """Wait until the servers' CPU is idle (IDLE_SHARE of a SETTLE_SAMPLE_S sample), so that no round starts
        while the server of the round before is still busy: requests a capped phase abandoned, which rollcall
        carries out anyway, or a checkpoint. Such leftovers starve a ceiling round and flatter the ratio. Returns
        the seconds waited, or None when the CPU did not settle within SETTLE_TIMEOUT_S (or nothing is pinned)."""
        if self.server_cpu is None:
            return None
        started = time.monotonic()
        while time.monotonic() - started < SETTLE_TIMEOUT_S:
            before = _cpu_times(self.server_cpu)
            time.sleep(SETTLE_SAMPLE_S)
            after = _cpu_times(self.server_cpu)
            total = sum(after) - sum(before)
            idle = (after[3] + after[4]) - (before[3] + before[4])  # idle and iowait
            if total > 0 and idle / total >= IDLE_SHARE:
                return time.monotonic() - started
        return None

    def describe(self) -> str:
        if self.server_cpu is None:
            return (f"NOT pinned: this machine gives the run {len(os.sched_getaffinity(0))} CPU(s) (or has no "
                    "taskset), so wrk shares the servers' CPU and the ceiling is squeezed with them")
        return (f"rollcall and the bare ceiling pinned to CPU {self.server_cpu}, wrk -t1 (and py-spy, and this "
                f"script) to CPU {self.client_cpu}, with taskset")


def _cpu_times(cpu: int) -> list[int]:
    """The /proc/stat times of one CPU: user, nice, system, idle, iowait, irq, softirq, steal."""
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith(f"cpu{cpu} "):
                return [int(value) for value in line.split()[1:9]]
    raise RuntimeError(f"/proc/stat has no line for CPU {cpu}")


def choose_pinning(allow: bool) -> Pinning:
    cpus = sorted(os.sched_getaffinity(0))
    if not allow or len(cpus) < 2 or shutil.which("taskset") is None:
        return Pinning(None, None)
    return Pinning(cpus[0], cpus[1])


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
        process = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def loop_in_log(log: Path, pattern: str) -> str:
    """The event loop a server said it runs on (rollcall: "event loop: ...", the bare server: "bare server event
    loop: ..."), waiting a moment for the line."""
    for _ in range(50):
        found = re.search(pattern + r"(.+?)(?: \(--loop\))?$", log.read_text(errors="replace"), re.MULTILINE)
        if found:
            return found.group(1).strip()
        time.sleep(0.1)
    return "unknown (the server did not say)"


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak so far) of a process, in kB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


class RssSampler:
    """The highest VmRSS of a process while a block runs, sampled every 20 ms (VmHWM is a lifetime peak)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.peak_kb: int | None = None
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def sample(self) -> None:
        while self.pid is not None and not self.stopped.is_set():
            try:
                rss = memory_kb(self.pid).get("VmRSS", 0)
            except OSError:
                return
            self.peak_kb = max(self.peak_kb or 0, rss)
            self.stopped.wait(0.02)

    def __enter__(self) -> RssSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()


# --- the database under test ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Engine:
    name: str  # "sqlite" or "postgresql"
    location: str  # what `rollcall serve --db` and `rollcall token create --db` get
    shown: str  # the location as the report shows it (no password)


# Durable, as rollcall's users run PostgreSQL (the tests' cluster turns fsync off; a benchmark of durable writes
# must not). Only the connection limit is raised, for rollcall's pool beside the bench's own set-up connections.
BENCH_POSTGRES_SETTINGS = ("max_connections=200",)


class PostgresCluster:
    """`--db postgresql`: one throw-away cluster for the whole run, started on first use on the servers' CPU (so
    the PostgreSQL server shares rollcall's core, and wrk keeps the other), with a fresh empty database for each
    engine run; `stop()` (from main's finally, so also on Ctrl-C and SIGTERM) stops it and removes its folder."""

    def __init__(self, pinning: Pinning) -> None:
        self.pinning = pinning
        self.server: PostgresServer | None = None

    def new_database(self) -> str:
        if self.server is None:
            print("starting a throw-away PostgreSQL cluster (initdb, pg_ctl) for this run")
            self.server = start_server(BENCH_POSTGRES_SETTINGS, launcher=self.pinning.server([]))
        return self.server.new_database(migrated=False, prefix="bench")

    def describe(self) -> str:
        cpu = self.pinning.server_cpu
        where = (f"pinned to CPU {cpu} with taskset: the PostgreSQL server shares rollcall's core (rollcall and "
                 f"its database on one core, wrk on the other)" if cpu is not None else "not pinned")
        return (f"PostgreSQL {self.version()}: a throw-away cluster this script started (initdb, pg_ctl on "
                f"127.0.0.1), durable (fsync and synchronous_commit on, as the defaults), a fresh empty database "
                f"per engine run, {where}.")

    def version(self) -> str:
        if self.server is None:
            return "?"
        return self.server.bin.parent.name

    def stop(self) -> None:
        if self.server is not None:
            stop_server(self.server)
            self.server = None


def engine_for(spec: str, work: Path, cluster: PostgresCluster) -> Engine:
    """--db: "sqlite" (a fresh file in the run's temporary directory), a path that does not exist yet,
    "postgresql" (a fresh database on a throw-away cluster this script starts, see PostgresCluster), or a
    postgresql:// URL of an empty database someone else runs, passed on to `rollcall serve --db` as is.

    Give --db more than once (the default is `--db sqlite --db postgresql`) and the report shows the engines side
    by side."""
    if spec == "postgresql":
        url = cluster.new_database()
        where = "on rollcall's CPU" if cluster.pinning.server_cpu is not None else "unpinned"
        return Engine("postgresql", url, f"a fresh database on a throw-away PostgreSQL {cluster.version()} "
                                         f"cluster started by the bench, durable (fsync on), {where}")
    if spec.startswith(("postgresql://", "postgres://")):
        parts = urllib.parse.urlsplit(spec)
        shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        return Engine("postgresql", spec, shown)
    path = work / "rollcall.db" if spec == "sqlite" else Path(spec).resolve()
    if path.exists():
        raise SystemExit(f"--db {spec}: {path} exists; the benchmark needs a fresh database (a new path)")
    return Engine("sqlite", str(path), "a fresh SQLite file" if spec == "sqlite" else str(path))


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


def collect_users(scim: str, token: str, path: Path, scim_filter: str = "") -> int:
    """Every user's (or every user matching scim_filter) id and userName through the SCIM list API, written as
    "id<TAB>userName" lines in the order the server lists them (creation order), so the first lines are the first
    users seeded."""
    seen: dict[str, str] = {}
    start = 1
    while True:
        query = urllib.parse.urlencode({"startIndex": start, "count": 1000, "attributes": "userName",
                                        **({"filter": scim_filter} if scim_filter else {})})
        page = http("GET", f"{scim}/Users?{query}", token)
        resources = page.get("Resources", [])
        for user in resources:
            seen[user["id"]] = user["userName"]
        start += len(resources)
        if not resources or start > page["totalResults"]:
            break
    path.write_text("".join(f"{uid}\t{name}\n" for uid, name in seen.items()))
    return len(seen)


def split(span: tuple[int, int], parts: int) -> list[tuple[int, int]]:
    """first..last in `parts` consecutive slices of (nearly) equal size."""
    first, last = span
    count = last - first + 1
    bounds = [first + count * i // parts for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(parts) if bounds[i + 1] > bounds[i]]


# --- wrk -------------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, run: Run, pinning: Pinning, work: Path, bare_url: str) -> None:
        self.run = run
        self.pinning = pinning
        self.work = work
        self.bare_url = bare_url
        self.runs = 0
        self.settle_waits: list[float] = []  # seconds each round waited for an idle server CPU
        self.unsettled = 0  # rounds started on a CPU that did not settle
        one = work / "one.tsv"  # the bare GET needs one id to put in the path; any will do
        one.write_text("1ddd6e1f951f427a5c432c5621f8adfc\tbench-user-000001\n")
        # The ceilings get the very scripts rollcall gets, so the client side costs the same.
        self.ceilings: dict[str, tuple[str, dict[str, Any]]] = {
            "read": ("get_user.lua", {"data": one}),
            "write": ("post_user.lua", {"prefix": "bare-user-"}),
        }

    def wrk(self, url: str, script: str, *, token: str = "", data: Path | None = None,
            span: tuple[int, int] | None = None, cap: int = 0, target: str = "rollcall", pid: int | None = None,
            seconds: int | None = None, **extra: str) -> Result:
        """One wrk run. With span=(first, last) it is count-limited: each k in first..last is sent once (or until
        `cap` seconds pass); otherwise it runs for `seconds` (the round duration)."""
        run = self.run
        self.runs += 1
        out = self.work / f"run-{self.runs:04d}.json"
        env = {
            **os.environ,
            "BENCH_LUA_DIR": str(LUA),
            "BENCH_OUT": str(out),
            "BENCH_TOKEN": token,
            "BENCH_THREADS": str(run.threads),
            "BENCH_DATA": str(data or ""),
            **{f"BENCH_{key.upper()}": str(value) for key, value in extra.items()},
        }
        if span is not None:
            # common.lua parks a thread that has no item for ever; give every thread at least one.
            assert span[1] - span[0] + 1 >= run.threads, f"{script}: fewer items than threads"
            env["BENCH_FROM"], env["BENCH_TO"] = str(span[0]), str(span[1])
        limit = cap if span is not None else (seconds or run.sizes.duration)
        command = self.pinning.client(["wrk", "-t", str(run.threads), "-c", str(run.connections), "-d",
                                       f"{limit}s", "--timeout", "10s", "-s", str(LUA / script), url])
        output = self.work / f"run-{self.runs:04d}.wrk.txt"
        waited = self.pinning.wait_until_idle()
        if waited is not None:
            self.settle_waits.append(waited)
        elif self.pinning.server_cpu is not None:
            self.unsettled += 1
        with output.open("w") as log, RssSampler(pid) as rss:
            wrk = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                self.wait_for_wrk(wrk, out, limit + 60, count_limited=span is not None)
            finally:
                if wrk.poll() is None:
                    wrk.kill()
                    wrk.wait()
        if wrk.returncode != 0 or not out.exists():
            raise RuntimeError(f"wrk failed for {script} on {url}:\n{output.read_text()}")
        raw = json.loads(out.read_text())
        taken = raw["duration_us"] / 1e6
        statuses = dict(sorted(raw["statuses"].items()))
        return Result(
            target=target, requests=raw["answered"], expected=(span[1] - span[0] + 1) if span else None,
            seconds=round(taken, 2), rps=round(raw["answered"] / taken, 1),
            p50_ms=raw["latency_us"]["p50"] / 1000, p99_ms=raw["latency_us"]["p99"] / 1000,
            non2xx=sum(n for code, n in statuses.items() if not 200 <= int(code) < 300),
            socket_errors=sum(raw["socket_errors"].values()), statuses=statuses, peak_rss_kb=rss.peak_kb,
        )

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

    def ceiling_round(self, kind: str) -> Result:
        script, options = self.ceilings[kind]
        return self.wrk(self.bare_url, script, target="bare", **options)

    def scenario(self, engine: EngineRun, row: Row, round_run: Callable[[int], Result], rounds: int,
                 with_ceiling: bool = True) -> Row:
        """Run a scenario as `rounds` rounds, each right after a round of its ceiling (bare, rollcall, bare, ...),
        so that a busy moment of the machine weighs on both; round_run(i) runs rollcall's i-th round."""
        print(f"  {row.label:<46} ", end="", flush=True)
        for i in range(rounds):
            if with_ceiling:
                row.ceiling.append(self.ceiling_round(row.kind))
            row.rounds.append(round_run(i))
        engine.rows.append(row)
        unit = "users/s" if row.per_request > 1 else "req/s"
        ceiling = f"  ceiling {row.ceiling_rps:>9,.1f}  {row.ratio:>6.1%}" if row.ceiling else ""
        print(f"{row.rps:>9,.1f} {unit}  p50 {row.p50_ms:>8.2f} ms  p99 {row.p99_ms:>8.2f} ms{ceiling}  errors "
              f"{row.errors}" + ("  (hit its cap)" if row.capped else ""), flush=True)
        if row.capped:
            expected = sum(r.expected or 0 for r in row.rounds)
            engine.notes.append(f"{row.label}: only {row.requests:,} of {expected:,} requests were answered within "
                                "its time cap")
        return row


# --- the scenarios -------------------------------------------------------------------------------------------

def run_engine(run: Run, engine: Engine, pinning: Pinning, work: Path, profile: int) -> EngineRun:
    sizes = run.sizes
    result = EngineRun(engine.name, engine.shown)
    run.engines.append(result)

    def token(name: str, *scopes: str) -> str:
        flags = [arg for scope in scopes for arg in ("--scope", scope)]
        made = subprocess.run([PYTHON, "-m", "app", "token", "create", "--name", name, *flags, "--db",
                               engine.location], cwd=ROOT, capture_output=True, text=True, check=True)
        return made.stdout.strip().splitlines()[-1]

    scim_token, proxy_token = token("bench"), token("proxy", "roster")
    port, bare_port = free_port(), free_port()
    rollcall_url, bare_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
    scim = f"{rollcall_url}/scim/v2"
    first_users, all_users, members_file = work / "users-first.tsv", work / "users-all.tsv", work / "members.tsv"
    log, bare_log = work / "rollcall.log", work / "bare.log"
    rollcall_cmd = pinning.server([PYTHON, "-m", "app", "serve", "--db", engine.location, "--host", "127.0.0.1",
                                   "--port", str(port), "--loop", run.loop])
    bare_cmd = pinning.server([PYTHON, str(BENCH / "bare_server.py"), "--host", "127.0.0.1", "--port",
                               str(bare_port), "--loop", run.loop])
    bench = Bench(run, pinning, work, bare_url)
    rounds = sizes.rounds
    with server(rollcall_cmd, log) as rollcall, server(bare_cmd, bare_log) as bare:
        wait_until_up(f"{scim}/ServiceProviderConfig", scim_token, rollcall, log)
        wait_until_up(f"{bare_url}/", None, bare, bare_log)
        result.loops = {"rollcall": loop_in_log(log, r"event loop: "), "bare": loop_in_log(bare_log, "bare server "
                                                                                                 "event loop: ")}
        print(f"event loop: rollcall {result.loops['rollcall']}, bare ceiling {result.loops['bare']}")
        pid = rollcall.pid

        def alive() -> None:
            if rollcall.poll() is not None:
                raise RuntimeError(f"rollcall exited with {rollcall.returncode}; its log ends:\n{log_tail(log)}")

        def on_rollcall(script: str, **options: Any) -> Result:
            options.setdefault("token", scim_token)
            outcome = bench.wrk(rollcall_url, script, pid=pid, **options)
            alive()
            return outcome

        replays: dict[str, Callable[[int], Result]] = {}

        def timed(scenario: str, script: str, users: int, kind: str = "read", label: str = "",
                  **options: Any) -> Row:
            """A duration-limited scenario: `rounds` rounds of sizes.duration seconds each."""
            replays[scenario] = lambda seconds: on_rollcall(script, seconds=seconds, **options)
            return bench.scenario(result, Row(scenario, label or scenario, users, kind),
                                  lambda _: on_rollcall(script, **options), rounds)

        def counted(scenario: str, script: str, users: int, span: tuple[int, int], cap: int, kind: str = "write",
                    label: str = "", parts: int = rounds, per_request: int = 1, with_ceiling: bool = True,
                    **options: Any) -> Row:
            """A count-limited scenario: span sent once, in `parts` consecutive slices (one per round)."""
            slices = split(span, parts)
            return bench.scenario(result, Row(scenario, label or scenario, users, kind, per_request=per_request),
                                  lambda i: on_rollcall(script, span=slices[i], cap=max(3, cap // len(slices)),
                                                        **options),
                                  len(slices), with_ceiling=with_ceiling)

        print(f"rollcall, seeding {sizes.small:,} users:")
        counted("seed", "post_user.lua", sizes.small, (1, sizes.small), sizes.seed_cap, prefix="bench-user-",
                label="POST /Users (seed)")
        result.memory_kb.update({f"{k} after seed": v for k, v in memory_kb(pid).items()})
        small = collect_users(scim, scim_token, first_users)
        if small != sizes.small:
            result.notes.append(f"after seed the list API returned {small:,} users, not {sizes.small:,}")

        print(f"rollcall at {small:,} users:")
        timed("get", "get_user.lua", small, data=first_users, label="GET /Users/{id}")
        timed("filter", "filter_user.lua", small, data=first_users, label="filter=userName eq")
        timed("filter-ext", "filter_external.lua", small, data=first_users, label="filter=externalId eq")
        timed("list", "list_users.lua", small, total=str(small), label="pages of 100, walked in turn")
        timed("list-random", "list_random.lua", small, total=str(small), label="a page of 100 at a random startIndex")
        timed("patch-user", "patch_user.lua", small, kind="write", data=first_users, label="PATCH /Users/{id}")
        timed("put-user", "put_user.lua", small, kind="write", data=first_users, label="PUT /Users/{id}")

        # One group, then one member per PATCH in three count-limited phases over slices of the user list: the
        # first and the last slice (each in rounds) are the ones compared; the middle one only fills the group.
        gid = http("POST", f"{scim}/Groups", scim_token, {"schemas": [GROUP_SCHEMA],
                                                          "displayName": "bench-group"})["id"]
        n, s = min(sizes.group, small), sizes.group_slice

        def group_size() -> int:
            # Asked of the server: a capped phase abandons requests that rollcall still carries out.
            return len(http("GET", f"{scim}/Groups/{gid}", scim_token).get("members", []))

        members = 0
        for phase, span in (("first", (1, s)), ("middle", (s + 1, n - s)), ("last", (n - s + 1, n))):
            measured = phase != "middle"
            row = counted(f"group-add {phase}", "group_add.lua", small, span, sizes.group_cap, data=first_users,
                          group=gid, parts=rounds if measured else 1, with_ceiling=measured,
                          label=f"one member added ({phase} {span[1] - span[0] + 1:,})")
            now = group_size()
            row.label = f"one member added ({members:,}→{now:,} members)"
            members = now
        if members != sizes.group:
            result.notes.append(f"after group-add the group has {members:,} members, not {sizes.group:,}")
        timed("group-read", "get_group.lua", small, group=gid, query="",
              label=f"GET /Groups/{{id}} ({members:,} members)")
        timed("group-read excl", "get_group.lua", small, group=gid, query="?excludedAttributes=members",
              label="GET /Groups/{id}?excludedAttributes=members")

        # Forward auth asks about members of a role group. The users deleted at the end stay out of it, so that
        # their deletion opens no hold (a mass removal from the roster), and so do inactive users:
        # patch-user has left some inactive, and forward auth turns those away.
        active_file = work / "users-active.tsv"
        collect_users(scim, scim_token, active_file, "active eq true")
        active = set(active_file.read_text().splitlines())
        role_members = [line for line in first_users.read_text().splitlines()[sizes.delete:] if line in active]
        members_file.write_text("".join(line + "\n" for line in role_members))
        role_gid = http("POST", f"{scim}/Groups", scim_token, {"schemas": [GROUP_SCHEMA],
                                                               "displayName": "rollcall-members"})["id"]
        for chunk in range(0, len(role_members), 500):
            http("PATCH", f"{scim}/Groups/{role_gid}", scim_token, {"schemas": [PATCH_OP], "Operations": [
                {"op": "add", "path": "members",
                 "value": [{"value": line.split("\t")[0]} for line in role_members[chunk:chunk + 500]]}]})
        timed("forward", "forward_auth.lua", small, token=proxy_token, data=members_file,
              label="GET /auth/forward (a member, by e-mail)")

        bulk_users = sizes.bulk_requests * sizes.bulk_ops
        counted("bulk", "bulk_users.lua", small, (1, sizes.bulk_requests), sizes.bulk_cap, per_request=sizes.bulk_ops,
                ops=str(sizes.bulk_ops), label=f"POST /Bulk, {sizes.bulk_ops} users each (users/s)")

        more = sizes.large - sizes.small - bulk_users
        print(f"rollcall, seeding {more:,} more users:")
        seeded = counted("seed-large", "post_user.lua", sizes.large, (sizes.small + 1, sizes.large - bulk_users),
                         sizes.large_cap, prefix="bench-user-", label=f"POST /Users (seed to {sizes.large:,})")
        large = seeded.users = collect_users(scim, scim_token, all_users)
        if large != sizes.large:
            result.notes.append(f"after seed-large the list API returned {large:,} users, not {sizes.large:,}")
        print(f"rollcall at {large:,} users:")
        at = f"@{round(large / 1000, 1):g}k"
        timed("get@large", "get_user.lua", large, data=all_users, label=f"GET /Users/{{id}} {at}")
        timed("filter@large", "filter_user.lua", large, data=all_users, label=f"filter=userName eq {at}")
        timed("filter-ext@large", "filter_external.lua", large, data=all_users, label=f"filter=externalId eq {at}")
        timed("list-random@large", "list_random.lua", large, total=str(large),
              label=f"a page of 100 at a random startIndex {at}")
        timed("list-first@large", "list_page.lua", large, start="1", label=f"the first page of 100 {at}")
        timed("list-last@large", "list_page.lua", large, start=str(max(1, large - 99)),
              label=f"the last page of 100 {at}")
        result.memory_kb.update({f"{k} at {large:,} users": v for k, v in memory_kb(pid).items()})

        if profile:
            profile_worst(result, replays, pid, pinning, work, profile, sizes.duration * 2, large,
                          f"{rollcall_url}/healthz")
        # The first users listed are the group's members, so each delete also drops one of its memberships.
        counted("delete", "delete_user.lua", large, (1, sizes.delete), sizes.delete_cap, data=first_users,
                label="DELETE /Users/{id} (group members)")
        result.memory_kb.update({f"{k} at the end": v for k, v in memory_kb(pid).items()})
    result.settle_waits, result.unsettled = bench.settle_waits, bench.unsettled
    return result


PROFILE_RATE = 200  # py-spy samples per second


# --- profiles ------------------------------------------------------------------------------------------------

def quiet(probe: str, seconds: float = 60) -> None:
    """Wait until the server answers a probe within 50 ms: requests that wrk gave up on at the end of a run may
    still be at work, and would show in the next profile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        http("GET", probe, None)
        if time.monotonic() - started < 0.05:
            return
        time.sleep(0.5)


def profile_worst(result: EngineRun, replays: dict[str, Callable[[int], Result]], pid: int, pinning: Pinning,
                  work: Path, count: int, seconds: int, users: int, probe: str) -> None:
    """py-spy samples rollcall while wrk replays each of the `count` scenarios furthest below their ceiling (with
    --native: the C frames too, SQLite's among them)."""
    spy = shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy"))
    if not Path(spy).exists():
        result.notes.append("no profiles: py-spy is not installed (`.venv/bin/pip install -e '.[bench]'`)")
        return
    ranked = sorted((r for r in result.rows if r.scenario in replays and r.ratio is not None),
                    key=lambda r: r.ratio or 0)
    if not ranked:
        return
    print(f"profiling the {count} worst ratios with py-spy ({seconds} s each, at {users:,} users):")
    for row in ranked[:count]:
        quiet(probe)
        raw = work / f"profile-{re.sub(r'[^a-z0-9]+', '-', row.scenario)}.txt"
        command = pinning.client([spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate",
                                  str(PROFILE_RATE), "--format", "raw", "--threads", "--native", "--output", str(raw)])
        spying = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)  # py-spy attaches before the load starts
        replays[row.scenario](seconds)
        _, errors = spying.communicate(timeout=seconds + 60)
        if spying.returncode != 0 or not raw.exists():
            result.notes.append(f"py-spy failed on {row.scenario}: {errors.strip().splitlines()[-1:] or '?'}")
            continue
        result.profiles[row.label] = summarise_profile(raw.read_text(), PROFILE_RATE * seconds)
        print(f"  {row.label}: {raw}")


def summarise_profile(raw: str, ticks: int, top: int = 6) -> str:
    """Where a py-spy raw profile (one "thread (tid): name;frame;frame;... count" line per stack, from --threads
    --native) spends its samples: each kind of thread's share of the `ticks` sampling moments, then in each busy
    one the innermost frames (self time: C, such as SQLite's, or Python), the innermost Python frames, and
    rollcall's own functions (app/) by inclusive time, leaving out the trunk every stack of the thread passes
    through."""
    kinds: dict[str, list[tuple[list[str], int]]] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        frames = stack.split(";")
        thread = frames[0].partition(": ")[2] if frames[0].startswith("thread") else "?"
        kind = re.sub(r"[-_]?\d+", "", thread)  # Thread-4 (_connection_worker_thread) -> Thread (...)
        kinds.setdefault(kind, []).append(([_frame(f) for f in frames[1:]], int(number)))
        total += int(number)
    if not total:
        return "no samples"
    parts = [f"{ticks:,} sampling moments"]
    for kind, stacks in sorted(kinds.items(), key=lambda item: -sum(n for _, n in item[1])):
        leaf: Counter[str] = Counter()
        python: Counter[str] = Counter()
        inclusive: Counter[str] = Counter()
        waits: Counter[str] = Counter()
        for frames, n in stacks:
            waiting = _waiting(frames)
            if waiting:
                waits[waiting] += n
                continue
            if frames:
                leaf[frames[-1]] += n
            innermost = next((f for f in reversed(frames) if _is_python(f)), None)
            if innermost:
                python[innermost] += n
            for name in set(frames):
                inclusive[name] += n
        busy = sum(leaf.values())
        if busy < ticks * 0.05:
            continue
        own = [(name, n) for name, n in inclusive.most_common() if "(app/" in name and n < busy * 0.9]

        def share(items: list[tuple[str, int]]) -> str:
            return "; ".join(f"`{name}` {n / ticks:.0%}" for name, n in items[:top]) or "none"

        gil = f", waiting for the GIL {waits['gil'] / ticks:.0%}" if waits["gil"] else ""
        parts.append(f"  - *{kind}* busy {busy / ticks:.0%} of the time{gil}. Self: {share(leaf.most_common(top))}. "
                     f"Innermost Python: {share(python.most_common(top))}. Inclusive in app/: {share(own)}.")
    return "\n".join(parts)


def _waiting(frames: list[str]) -> str | None:
    """What a stack waits for, if it waits: "gil", "lock" (a queue or a lock: an idle worker thread) or "poll" (the
    event loop with nothing to do). py-spy's own idle detection lets many of these through on this machine."""
    names = [frame.partition(" (")[0] for frame in frames]
    if "take_gil" in names:
        return "gil"
    if "PyThread_acquire_lock_timed" in names:
        return "lock"
    if names and names[-1] in ("epoll_pwait", "epoll_wait", "poll", "select"):
        return "poll"
    return None


def _is_python(frame: str) -> bool:
    return ".py)" in frame or "(<string>)" in frame or "(<frozen" in frame


def _frame(frame: str) -> str:
    """"handle (aiohttp/web_protocol.py:123)" -> "handle (aiohttp/web_protocol.py)": lines apart, one function;
    an unresolved native address "0x7f4d8f0a3f16 (libc.so.6)" -> "? (libc.so.6)"."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    if re.fullmatch(r".+:\d+", where):
        where = where.rpartition(":")[0]
    for marker in ("site-packages/", "lib/python3"):
        where = where.rpartition(marker)[2] if marker in where else where
    if re.fullmatch(r"0x[0-9a-f]+", name):
        name = "?"
    return f"{name} ({where})"


# --- report ----------------------------------------------------------------------------------------------

def table(engine: EngineRun) -> str:
    loop = engine.loops.get("bare", "?").split(" (")[0]
    lines = ["| scenario | users | rollcall | p50 ms | p99 ms | peak RSS | ceiling | share | errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in engine.rows:
        unit = "users/s" if r.per_request > 1 else "/s"
        ceiling = "—" if r.ceiling_rps is None else \
            f"{r.ceiling_rps:,.0f}/s bare {'GET' if r.kind == 'read' else 'echo'} ({loop})"
        ratio = "—" if r.ratio is None else f"{r.ratio:.1%}"
        rss = "" if r.peak_rss_kb is None else f"{r.peak_rss_kb / 1024:.0f} MB"
        label = r.label + (" (capped)" if r.capped else "")
        lines.append(f"| {label} | {r.users:,} | {r.rps:,.1f}{unit} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {rss} | "
                     f"{ceiling} | {ratio} | {r.errors} |")
    return "\n".join(lines)


def side_by_side(engines: list[EngineRun]) -> str:
    """Each scenario's rollcall rate on every engine beside one ceiling: the median of the ceiling rounds that
    alternated with all the engines' rounds, so that both engines are measured against the same yardstick."""
    lines = ["| scenario | ceiling | " + " | ".join(f"{e.engine} | share" for e in engines) + " |",
             "|---|---:|" + "---:|---:|" * len(engines)]
    loop = engines[0].loops.get("bare", "?").split(" (")[0]
    for row in engines[0].rows:
        others = [engine.get(row.scenario) for engine in engines]
        ceiling_rounds = [c.rps for other in others if other is not None for c in other.ceiling]
        ceiling = statistics.median(ceiling_rounds) if ceiling_rounds else None
        cells = ["—" if ceiling is None else f"{ceiling:,.0f}/s bare {'GET' if row.kind == 'read' else 'echo'}"]
        for other in others:
            if other is None or not other.rounds:
                cells += ["—", "—"]
                continue
            unit = "users/s" if other.per_request > 1 else "/s"
            label = f"{other.rps:,.1f}{unit}" + (" (capped)" if other.capped else "")
            cells += [label, "—" if not ceiling else f"{other.rps / ceiling:.1%}"]
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + (f"\n\nCeilings on {loop}; each engine's own table above divides by the ceiling "
                               "rounds that alternated with its rounds alone.")


def targets(engine: EngineRun, sizes: Sizes, connections: int) -> list[str]:
    lines: list[str] = []

    def check(ok: bool | None, text: str) -> None:
        lines.append(f"- {'n/a ' if ok is None else 'PASS' if ok else 'FAIL'} {text}")

    def reached(name: str) -> str:
        r = engine.get(name)
        return "" if r is None or r.users >= sizes.large else f" (only {r.users:,} users were reached)"

    def share(names: tuple[str, ...], target: float, ceiling: str) -> None:
        for name in names:
            r = engine.get(name)
            if r is None or r.ratio is None:
                check(None, f"{name} ≥ {target:.0%} of {ceiling}")
                continue
            check(r.ratio >= target and not (name.endswith("@large") and reached(name)),
                  f"{r.label} ≥ {target:.0%} of {ceiling}: {r.ratio:.1%} ({r.rps:,.0f} of {r.ceiling_rps:,.0f}/s)"
                  + (reached(name) if name.endswith("@large") else ""))

    share(("get", "filter", "filter-ext", "forward", "get@large", "filter@large", "filter-ext@large"), READ_TARGET,
          "bare GET")
    share(("seed", "patch-user", "put-user", "group-add first", "group-add last"), WRITE_TARGET, "the bare echo")
    share(("list-random", "list-random@large"), PAGE_TARGET, "bare GET")
    first_page, last_page = engine.get("list-first@large"), engine.get("list-last@large")
    if first_page and last_page:
        growth = last_page.p50_ms / first_page.p50_ms
        check(growth <= LAST_PAGE_VS_FIRST and not reached("list-last@large"),
              f"the last page of {last_page.users:,} users costs what the first does (p50 ≤ {LAST_PAGE_VS_FIRST}x): "
              f"{last_page.p50_ms:.2f} / {first_page.p50_ms:.2f} ms = {growth:.2f}x{reached('list-last@large')}")
    else:
        check(None, "last page vs first page")
    group = engine.get("group-read")
    if group:
        peak = group.peak_rss_kb
        check(group.rps >= GROUP_READ_RPS, f"{group.label} ≥ {GROUP_READ_RPS} req/s (10x 40): {group.rps:,.1f}/s")
        check(None if peak is None else peak / 1024 < PEAK_MEMORY_MB,
              f"peak RSS while {connections} clients read that group < {PEAK_MEMORY_MB} MB: "
              f"{'n/a' if peak is None else f'{peak / 1024:.1f} MB'}")
    else:
        check(None, "group read")
    first, last = engine.get("group-add first"), engine.get("group-add last")
    if first and last:
        growth = last.p50_ms / first.p50_ms
        check(growth <= GROUP_ADD_GROWTH,
              f"adding the last {sizes.group_slice:,} members ≤ {GROUP_ADD_GROWTH}x the first {sizes.group_slice:,} "
              f"(p50): {last.p50_ms:.2f} / {first.p50_ms:.2f} ms = {growth:.2f}x ({last.label})")
    else:
        check(None, "group-add last/first p50")
    excl, get = engine.get("group-read excl"), engine.get("get")
    if excl and get:
        vs_get = excl.p50_ms / get.p50_ms
        check(vs_get <= GROUP_READ_VS_GET,
              f"group read ?excludedAttributes=members p50 ≤ ~user GET p50 (tolerance {GROUP_READ_VS_GET}x): "
              f"{excl.p50_ms:.2f} / {get.p50_ms:.2f} ms = {vs_get:.2f}x")
    for name in ("get", "filter", "filter-ext", "list-random"):
        small, large = engine.get(name), engine.get(f"{name}@large")
        if small and large and small.ratio and large.ratio:
            # Shares, not raw rates: each is taken against the ceiling of its own moment, so the other work of a
            # shared machine, which moves both, cancels out.
            flat = large.ratio / small.ratio
            check(flat >= FLAT_AS_DATA_GROWS and not reached(f"{name}@large"),
                  f"{small.label} flat from {small.users:,} to {large.users:,} users (share of the ceiling within "
                  f"20%): {large.ratio:.1%} / {small.ratio:.1%} = {flat:.2f} ({large.rps:,.0f} / {small.rps:,.0f} "
                  f"req/s){reached(f'{name}@large')}")
        else:
            check(None, f"{name} flat as data grows")
    at_large = [r.peak_rss_kb for r in engine.rows if r.scenario.endswith("@large") and r.peak_rss_kb]
    peak_kb = max(at_large) if at_large else None
    hwm_key = next((k for k in engine.memory_kb if k.startswith("VmHWM at ") and k.endswith(" users")), None)
    hwm = f"; VmHWM then {engine.memory_kb[hwm_key] / 1024:.1f} MB, the 10,000-member group reads included" \
        if hwm_key else ""
    check(None if peak_kb is None else peak_kb / 1024 < PEAK_MEMORY_MB and not reached("get@large"),
          f"rollcall's RSS < {PEAK_MEMORY_MB} MB at {sizes.large:,} users (the peak sampled during the scenarios "
          f"at that size): {'n/a' if peak_kb is None else f'{peak_kb / 1024:.1f} MB'}{reached('get@large')}{hwm}")
    errors = sum(r.errors for r in engine.rows)
    check(errors == 0, f"no non-2xx answers or socket errors in any scenario or ceiling round: {errors}")
    return lines


def settling(engine: EngineRun) -> str:
    """How long the rounds waited for an idle server CPU (Pinning.wait_until_idle)."""
    waits = engine.settle_waits
    if not waits and not engine.unsettled:
        return "Rounds were not made to wait for an idle server CPU (nothing is pinned)."
    waited = [w for w in waits if w > SETTLE_SAMPLE_S * 1.5]
    line = (f"Before each round the bench waited until the servers' CPU was {IDLE_SHARE:.0%} idle over "
            f"{SETTLE_SAMPLE_S:g} s, so that no round shares it with what the round before left running: "
            f"{len(waits):,} rounds started on an idle CPU")
    if waited:
        line += f", {len(waited):,} of them after waiting (longest {max(waited):.1f} s)"
    if engine.unsettled:
        line += (f"; **{engine.unsettled:,} started on a CPU still busy after {SETTLE_TIMEOUT_S:g} s** (something "
                 "else runs on it: their ratios are suspect)")
    return line + "."


def report(run: Run) -> str:
    sizes = run.sizes
    mode = "quick" if run.quick else "full"
    parts = [
        f"# rollcall benchmark ({mode} run, {time.strftime('%Y-%m-%d %H:%M:%S %Z')})",
        "",
        f"Method: {run.pinning}. wrk with {run.connections} connections and {run.threads} thread(s); every "
        f"scenario is {sizes.rounds} alternating rounds (bare ceiling, rollcall, bare, rollcall, ...), "
        f"{sizes.duration} s each for the timed ones, and the table shows medians (rates, p50, p99) and the peak "
        f"RSS sampled during rollcall's rounds. {os.cpu_count()} CPUs; Python {sys.version.split()[0]}; "
        f"--loop {run.loop}; wall time {run.wall_seconds:.0f} s.",
        f"Load average before: {run.load_before}; after: {run.load_after}.",
    ]
    if run.postgres:
        parts += ["", run.postgres]
    for engine in run.engines:
        parts += [
            "",
            f"## {engine.engine} ({engine.location})",
            "",
            f"Event loop: rollcall on {engine.loops.get('rollcall', '?')}, the bare ceiling on "
            f"{engine.loops.get('bare', '?')}.",
            "",
            settling(engine),
            "",
            table(engine),
            "",
            "Memory of the rollcall process: " + (", ".join(
                f"{key} {value / 1024:.1f} MB" for key, value in engine.memory_kb.items()) or "n/a") + ".",
            "",
            "### Targets",
            "",
            *targets(engine, sizes, run.connections),
        ]
        if engine.profiles:
            parts += ["", "### Where the time goes (py-spy, the worst ratios replayed at the end)", ""]
            parts += ["`py-spy record --threads --native` at the end of the run, while wrk replays the scenario: "
                      "shares are of the sampling moments (a thread busy at every moment is 100%); native frames "
                      "show C code such as SQLite's (`sqlite3VdbeExec`), `?` an unresolved address (libc: locks, "
                      "system calls).", ""]
            parts += [f"- **{label}**: {summary}" for label, summary in engine.profiles.items()]
        errors = [r for r in engine.rows if r.errors]
        if errors or engine.notes:
            parts += ["", "### Notes", ""]
            parts += [f"- {r.label}: HTTP statuses {[x.statuses for x in r.rounds + r.ceiling if x.errors]}"
                      for r in errors]
            parts += [f"- {note}" for note in engine.notes]
    if len(run.engines) > 1:
        parts += ["", "## Engines side by side (rollcall's rate per engine, and its share of the same ceiling)", "",
                  side_by_side(run.engines)]
    return "\n".join(parts) + "\n"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark rollcall against a bare aiohttp server with wrk.")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,000/5,000 users, 1 s rounds")
    parser.add_argument("--db", action="append", metavar="sqlite|PATH|postgresql|postgresql://...",
                        help="the database under test: sqlite (a fresh file in a temporary directory), a path that "
                             "does not exist yet, postgresql (a fresh database on a throw-away cluster this script "
                             "starts and stops), or a postgresql:// URL of an empty database; give it more than "
                             "once to compare engines (default: --db sqlite --db postgresql)")
    parser.add_argument("--loop", default="auto", choices=("auto", "uvloop", "asyncio"),
                        help="event loop of both rollcall and the bare ceiling (rollcall serve --loop)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1: wrk has one CPU)")
    parser.add_argument("--rounds", type=int, help="alternating rounds per scenario (default 3)")
    parser.add_argument("--duration", type=int, help="seconds per round of a timed scenario (full 5, quick 1)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the servers and wrk to CPUs")
    parser.add_argument("--profile", type=int, default=3, metavar="N",
                        help="py-spy profiles of the N worst ratios at the end (0: none)")
    parser.add_argument("--cap-factor", type=float, default=1.0,
                        help="multiply the time caps of the count-limited phases, e.g. 10 to let a slow rollcall "
                             "reach the full sizes")
    parser.add_argument("--out", type=Path, default=BENCH / "results",
                        help="where latest.md, latest.json and rollcall.log go (default bench/results)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (database, wrk output)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: run `make bench`, or `apt-get install -y wrk`", file=sys.stderr)
        return 2
    # SIGTERM unwinds like Ctrl-C, so that both servers are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    sizes = QUICK if args.quick else FULL
    f = args.cap_factor
    sizes = replace(sizes, seed_cap=round(sizes.seed_cap * f), group_cap=round(sizes.group_cap * f),
                    large_cap=round(sizes.large_cap * f), delete_cap=round(sizes.delete_cap * f),
                    bulk_cap=round(sizes.bulk_cap * f), rounds=args.rounds or sizes.rounds,
                    duration=args.duration or sizes.duration)
    pinning = choose_pinning(not args.no_pin)
    if pinning.client_cpu is not None:
        os.sched_setaffinity(0, {pinning.client_cpu})  # this script's own work stays off the servers' CPU
    run = Run(quick=args.quick, sizes=sizes, connections=args.connections, threads=args.threads, loop=args.loop,
              pinning=pinning.describe(), load_before=load_average())
    print(f"{run.pinning}; load average {run.load_before}")
    root = Path(tempfile.mkdtemp(prefix="rollcall-bench-"))
    started = time.monotonic()
    failed = False
    args.out.mkdir(parents=True, exist_ok=True)
    cluster = PostgresCluster(pinning)
    # SIGTERM unwinds like Ctrl-C does, so the finally below stops the servers and the PostgreSQL cluster.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        for number, spec in enumerate(args.db or ["sqlite", "postgresql"]):
            work = root / f"engine-{number}"
            work.mkdir()
            engine = engine_for(spec, work, cluster)
            if spec == "postgresql":
                run.postgres = cluster.describe()
            print(f"== {engine.name}: {engine.shown}")
            try:
                run_engine(run, engine, pinning, work, args.profile)
            except Exception as error:  # report what was measured before the failure, then exit non-zero
                failed = True
                traceback.print_exc()
                if run.engines and run.engines[-1].engine == engine.name:
                    run.engines[-1].notes.append(f"the run stopped early: {type(error).__name__}: "
                                                 f"{str(error).splitlines()[0]}")
            keep_logs(work, args.out, run.engines[-1] if run.engines else None, suffix="" if number == 0 else
                      f"-{number}")
    finally:
        cluster.stop()
        run.wall_seconds = round(time.monotonic() - started, 1)
        run.load_after = load_average()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    text = report(run)
    print()
    print(text)
    (args.out / "latest.md").write_text(text)
    (args.out / "latest.json").write_text(json.dumps(as_json(run), indent=2) + "\n")
    print(f"wrote {args.out / 'latest.md'} and {args.out / 'latest.json'}")
    return 1 if failed else 0


def keep_logs(work: Path, out: Path, engine: EngineRun | None, suffix: str) -> None:
    """rollcall's log without its per-request access lines (they run to megabytes and say nothing wrk does not),
    and the profiles' raw stacks."""
    log = work / "rollcall.log"
    if log.exists():
        kept = [line for line in log.read_text(errors="replace").splitlines() if "rollcall.access" not in line]
        (out / f"rollcall{suffix}.log").write_text("\n".join(kept) + "\n")
        problems = sum(1 for line in kept if "Traceback" in line or " ERROR " in line)
        if problems and engine is not None:
            engine.notes.append(f"rollcall's log has {problems} ERROR/Traceback line(s): see "
                                f"{out}/rollcall{suffix}.log")
    for raw in work.glob("profile-*.txt"):
        shutil.copy(raw, out / f"{raw.stem}{suffix}.txt")


def as_json(run: Run) -> dict[str, Any]:
    data = asdict(run)
    for engine, raw in zip(run.engines, data["engines"], strict=True):
        for row, raw_row in zip(engine.rows, raw["rows"], strict=True):
            raw_row.update(rps=row.rps, p50_ms=row.p50_ms, p99_ms=row.p99_ms, ceiling_rps=row.ceiling_rps,
                           ratio=row.ratio, peak_rss_kb=row.peak_rss_kb, errors=row.errors, capped=row.capped)
    return data


if __name__ == "__main__":
    sys.exit(main())
