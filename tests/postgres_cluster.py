"""A throw-away PostgreSQL cluster on a free loopback port: initdb in a temporary folder, pg_ctl start, pg_ctl stop.

Shared by the tests (tests/postgres_server.py, which adds the pytest fixtures) and the benchmark (bench/run.py
--db postgresql), so it imports nothing of pytest. initdb refuses to run as root: as root the cluster belongs to
the `postgres` user, who runs it.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL binaries (/usr/lib/postgresql/<version>/bin), the newest if several."""
    root = Path("/usr/lib/postgresql")
    versions = sorted((p for p in root.glob("*/bin") if (p / "initdb").is_file()),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return versions[-1] if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    """A running cluster; `url(name)` is the location rollcall is given for one of its databases."""

    folder: Path
    port: int
    bin: Path
    user: str
    template: str | None = None
    finished: list[str] = field(default_factory=list)  # URLs of databases whose tests have ended
    _counter: Iterator[int] = field(default_factory=itertools.count)

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def admin_sql(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]  # set-up: names made here, not input

    def new_database(self, migrated: bool = True, prefix: str = "test") -> str:
        """A fresh database, at the current schema version unless not `migrated` (then empty), and its URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._counter)}"
        template = f" TEMPLATE {self.template}" if migrated and self.template else ""
        self.admin_sql(f"CREATE DATABASE {name}{template}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self.admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def wait_until_ready(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.admin_sql("SELECT 1")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def _owner() -> str | None:
    return "postgres" if os.geteuid() == 0 else None


def _as_owner(command: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *command] if owner else command


def start_server(settings: Sequence[str], launcher: Sequence[str] = ()) -> PostgresServer:
    """initdb and pg_ctl start with `settings` (postgres -c options); `launcher` prefixes pg_ctl (the benchmark's
    taskset, which the server and every backend it forks inherit)."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (scripts/system-packages.sh installs it; run `make test`).")
    owner = _owner()
    user = owner or pwd.getpwuid(os.geteuid()).pw_name
    folder = Path(tempfile.mkdtemp(prefix="rollcall-pg-"))
    data = folder / "data"
    if owner:
        record = pwd.getpwnam(owner)
        os.chown(folder, record.pw_uid, record.pw_gid)
    try:
        subprocess.run(_as_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", user, "-A", "trust",
                                  "-E", "UTF8", "--locale", "C.UTF-8", "--no-sync"], owner),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port = _free_port()
        options = " ".join(f"-c {setting}" for setting in (*settings, "listen_addresses=127.0.0.1", f"port={port}",
                                                             f"unix_socket_directories={folder}"))
        subprocess.run([*launcher, *_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-l",
                                               str(folder / "server.log"), "-o", options, "-w", "-t", "60",
                                               "start"], owner)],
                       check=True, stdout=subprocess.DEVNULL)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    server = PostgresServer(folder, port, bin_dir, user)
    try:
        server.wait_until_ready()
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: PostgresServer) -> None:
    subprocess.run(_as_owner([str(server.bin / "pg_ctl"), "-D", str(server.folder / "data"), "-m", "immediate",
                              "-w", "stop"], _owner()), check=False, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    shutil.rmtree(server.folder, ignore_errors=True)
