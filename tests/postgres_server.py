"""A real PostgreSQL server for the tests, started by the test setup itself (no server is assumed to be running).

`initdb` makes a throw-away cluster in a temporary folder and `pg_ctl` starts it on a free loopback port, once per
test session and only when a test asks for PostgreSQL. Each test gets a fresh database, copied with
`CREATE DATABASE ... TEMPLATE` from one that was migrated once, which takes milliseconds where migrating would
take far longer. initdb refuses to run as root: as root the cluster belongs to the `postgres` user, who runs it.
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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Fast and throw-away: a crash loses a test cluster, never data anyone keeps.
_SERVER_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=300",
                    "shared_buffers=64MB", "listen_addresses=127.0.0.1")


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
            conn.execute(statement)  # type: ignore[arg-type]  # test set-up: names made here, not input

    def new_database(self, migrated: bool = True) -> str:
        """A fresh database, at the current schema version unless not `migrated` (then empty), and its URL."""
        name = f"test_{os.getpid()}_{next(self._counter)}"
        template = f" TEMPLATE {self.template}" if migrated and self.template else ""
        self.admin_sql(f"CREATE DATABASE {name}{template}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self.admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _as_owner(command: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *command] if owner else command


def start_server() -> tuple[PostgresServer, subprocess.Popen[bytes] | None]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (scripts/system-packages.sh installs it; run `make test`).")
    owner = "postgres" if os.geteuid() == 0 else None
    user = owner or pwd.getpwuid(os.geteuid()).pw_name
    folder = Path(tempfile.mkdtemp(prefix="rollcall-pg-"))
    data = folder / "data"
    if owner:
        record = pwd.getpwnam(owner)
        os.chown(folder, record.pw_uid, record.pw_gid)
    subprocess.run(_as_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", user, "-A", "trust",
                              "-E", "UTF8", "--locale", "C.UTF-8", "--no-sync"], owner),
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    port = _free_port()
    options = " ".join(f"-c {setting}" for setting in (*_SERVER_SETTINGS, f"port={port}",
                                                         f"unix_socket_directories={folder}"))
    subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"),
                              "-o", options, "-w", "-t", "60", "start"], owner),
                   check=True, stdout=subprocess.DEVNULL)
    return PostgresServer(folder, port, bin_dir, user), None


def stop_server(server: PostgresServer) -> None:
    owner = "postgres" if os.geteuid() == 0 else None
    subprocess.run(_as_owner([str(server.bin / "pg_ctl"), "-D", str(server.folder / "data"), "-m", "immediate",
                              "-w", "stop"], owner), check=False, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL cluster, started on first use and stopped when the session ends."""
    server, _ = start_server()
    deadline = time.monotonic() + 30
    while True:
        try:
            server.admin_sql("SELECT 1")
            break
        except Exception:
            if time.monotonic() > deadline:
                stop_server(server)
                raise
            time.sleep(0.1)
    try:
        server.template = _migrated_template(server)
        yield server
    finally:
        stop_server(server)


def _migrated_template(server: PostgresServer) -> str:
    """A database at the current schema version, for CREATE DATABASE ... TEMPLATE to copy for each test."""
    import psycopg

    from app.storage.postgres.migrations import migrate

    name = "rollcall_template"
    server.admin_sql(f"CREATE DATABASE {name}")
    with psycopg.connect(server.url(name), autocommit=True) as conn:
        migrate(conn)
    return name


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database of its own for one test, already at the current schema version.

    It is dropped when the next test starts, not when this one ends: fixtures are torn down in the reverse order
    of their set-up, so an app a test started may still be closing its connections when this fixture's teardown
    runs, and dropping the database under it would only make its pool complain."""
    for finished in postgres_server.finished:
        postgres_server.drop_database(finished)
    postgres_server.finished.clear()
    url = postgres_server.new_database()
    try:
        yield url
    finally:
        postgres_server.finished.append(url)
