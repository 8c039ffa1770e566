"""`rollcall serve` as an admin runs it: TLS, logs, one server per file, clean shutdown."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
import trustme

from app.protocol.resolved import SearchQuery
from app.protocol.schema_defs import USER_RESOURCE
from app.storage.factory import is_postgres
from tests.conftest import REPO, RunningServer, mint_token, read_database_now, serve_process
from tests.postgres_server import PostgresServer


def client(server: RunningServer, token: str | None = None, **kw: object) -> httpx2.Client:
    headers = {"Authorization": f"Bearer {token or server.token}", "X-Request-Id": "req-123"}
    return httpx2.Client(base_url=server.base_url, headers=headers, trust_env=False, timeout=10, **kw)


def test_help_shows_the_precedence_and_every_environment_variable() -> None:
    shown = subprocess.run([sys.executable, "-m", "app", "serve", "--help"], cwd=REPO, capture_output=True,
                           text=True, timeout=30).stdout
    flat = " ".join(shown.split())
    assert "its flag; the environment variable ROLLCALL_<FLAG>" in flat and "the config file" in flat
    for env in ("ROLLCALL_DB", "ROLLCALL_PORT", "ROLLCALL_TLS_CERT", "ROLLCALL_LOG_FORMAT", "ROLLCALL_DURABILITY",
                "ROLLCALL_GROUP_PREFIX", "ROLLCALL_MAX_BODY_BYTES", "ROLLCALL_METRICS", "ROLLCALL_MAX_CONNECTIONS",
                "ROLLCALL_HEADER_TIMEOUT", "ROLLCALL_KEEPALIVE_TIMEOUT", "ROLLCALL_TRUSTED_HOSTS", "ROLLCALL_LOOP"):
        assert env in flat


@pytest.mark.parametrize(("extra", "env", "loop"), [
    ((), {}, "uvloop "), (("--loop", "asyncio"), {}, "asyncio ("), ((), {"ROLLCALL_LOOP": "asyncio"}, "asyncio (")])
def test_serve_runs_on_uvloop_unless_asked_for_the_stock_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              extra: tuple[str, ...], env: dict[str, str],
                                                              loop: str, db_location: str) -> None:
    pytest.importorskip("uvloop", reason="uvloop is a dependency on Linux only")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with serve_process(tmp_path, *extra, db=db_location) as server:
        with client(server) as http:
            assert http.post("/Users", json={"userName": "on-the-loop"}).status_code == 201
        assert f"event loop: {loop}" in server.log
        assert server.stop() == 0


@pytest.mark.engines("sqlite", reason="option parsing: refused before a database is opened")
def test_an_unknown_loop_is_refused(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "app", "serve", "--db", str(tmp_path / "x.db"), "--loop", "tokio"],
                            cwd=REPO, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--loop" in result.stderr and "asyncio" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_the_server_cleanly_within_seconds(tmp_path: Path, sig: int, db_location: str) -> None:
    with serve_process(tmp_path, db=db_location) as server:
        with client(server) as http:
            assert http.post("/Users", json={"userName": "before-stop"}).status_code == 201
        started = time.monotonic()
        assert server.stop(sig) == 0
        assert time.monotonic() - started < 5
    if not is_postgres(server.db_path):  # checkpointed on the way out: the file alone holds everything
        assert not Path(server.db_path + "-wal").exists() or Path(server.db_path + "-wal").stat().st_size == 0
    assert read_database_now(server.db_path, lambda tx: tx.resources.count(SearchQuery(USER_RESOURCE))) == 1


@pytest.mark.engines("sqlite", reason="one server per SQLite file; on PostgreSQL several instances share a "
                                      "database (test_two_servers_share_one_postgresql_database_...)")
def test_a_second_server_on_the_same_database_refuses_to_start(tmp_path: Path) -> None:
    with serve_process(tmp_path) as server:
        second = subprocess.run([sys.executable, "-m", "app", "serve", "--db", server.db_path, "--port", "1"],
                                cwd=REPO, capture_output=True, text=True, timeout=30)
        assert second.returncode == 1
        assert "already being served" in second.stderr and "pid" in second.stderr
        with client(server) as http:
            assert http.get("/Users").status_code == 200


@pytest.mark.engines("sqlite", reason="a SQLite file's version is its user_version; the PostgreSQL counterpart "
                                      "follows")
def test_a_database_from_a_newer_rollcall_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "future.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    refused = subprocess.run([sys.executable, "-m", "app", "serve", "--db", str(db)], cwd=REPO, capture_output=True,
                             text=True, timeout=30)
    assert refused.returncode == 1 and "newer rollcall" in refused.stderr


def test_a_postgresql_database_from_a_newer_rollcall_is_refused(postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE rollcall_schema SET version = 99")
    refused = subprocess.run([sys.executable, "-m", "app", "serve", "--db", postgres_url], cwd=REPO,
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1 and "newer rollcall" in refused.stderr, refused.stderr


def test_tls_serves_https(tmp_path: Path, db_location: str) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    cert, key, ca = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    certificate.private_key_pem.write_to_path(key)
    certificate.cert_chain_pems[0].write_to_path(cert)
    authority.cert_pem.write_to_path(ca)
    with serve_process(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key), scheme="https",
                       db=db_location) as server:
        with client(server, verify=ssl.create_default_context(cafile=str(ca))) as http:
            created = http.post("/Users", json={"userName": "secure"})
            assert created.status_code == 201
            assert created.json()["meta"]["location"].startswith("https://127.0.0.1:")
        assert "serving https://127.0.0.1:" in server.log


@pytest.mark.engines("sqlite", reason="option parsing: refused before a database is opened")
def test_tls_needs_both_files(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "app", "serve", "--db", str(tmp_path / "x.db"), "--tls-cert",
                             "cert.pem"], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--tls-cert and --tls-key go together" in result.stderr


def test_one_log_line_per_request_with_no_secrets(tmp_path: Path, db_location: str) -> None:
    with serve_process(tmp_path, db=db_location) as server:
        with client(server) as http:
            user = http.post("/Users", json={"userName": "private.person@acme.com", "password": "hunter2"}).json()
            http.get(f"/Users/{user['id']}")
        with client(server, token="rc_wrong-token-value") as http:
            assert http.get("/Users").status_code == 401
        server.stop()
    lines = [line for line in server.log.splitlines() if "rollcall.access" in line]
    assert len(lines) == 3
    assert "request_id=req-123 method=GET route=/scim/v2/Users/{id} status=200" in lines[1]
    assert "token=served" in lines[1] and "duration_ms=" in lines[1]
    assert "status=401" in lines[2] and "token=-" in lines[2]
    for secret in (server.token, "rc_wrong-token-value", "hunter2", "private.person", user["id"], "Bearer"):
        assert secret not in server.log


def test_json_log_lines(tmp_path: Path, db_location: str) -> None:
    with serve_process(tmp_path, "--log-format", "json", db=db_location) as server:
        with client(server) as http:
            http.get("/Users")
        server.stop()
    access = [json.loads(line) for line in server.log.splitlines() if '"rollcall.access"' in line]
    assert access[0]["route"] == "/scim/v2/Users" and access[0]["status"] == 200
    assert access[0]["token"] == "served" and access[0]["request_id"] == "req-123"
    assert {"time", "level", "method", "duration_ms"} <= set(access[0])


def test_config_file_settings_reach_the_server(tmp_path: Path, db_location: str) -> None:
    config = tmp_path / "rollcall.toml"
    config.write_text('group-prefix = "acme"\nmetrics = true\n')
    with serve_process(tmp_path, "--config", str(config), db=db_location) as server, client(server) as http:
        user = http.post("/Users", json={"userName": "a"}).json()
        http.post("/Groups", json={"displayName": "acme-members", "members": [{"value": user["id"]}]})
        roster = http.get(server.base_url.removesuffix("/scim/v2") + "/api/members").json()
        assert [m["role"] for m in roster["members"]] == ["member"]
        scraper = asyncio.run(mint_token(server.db_path, "prometheus", ("admin",)))  # /metrics needs admin
        metrics = http.get(server.base_url.removesuffix("/scim/v2") + "/metrics",
                           headers={"Authorization": f"Bearer {scraper}"})
        assert metrics.status_code == 200


def test_size_limits_reach_the_server(tmp_path: Path, db_location: str) -> None:
    with serve_process(tmp_path, "--max-resource-bytes", "2048", "--max-page-bytes", "3000",
                       db=db_location) as server, client(server) as http:
        refused = http.post("/Users", json={"userName": "big", "title": "x" * 2100})
        assert refused.status_code == 413 and "2,048" in refused.json()["detail"]
        for i in range(3):
            assert http.post("/Users", json={"userName": f"u{i}", "title": "x" * 1500}).status_code == 201
        page = http.get("/Users").json()
        assert page["totalResults"] == 3 and page["itemsPerPage"] == 1


@pytest.mark.engines("sqlite", reason="option parsing: refused before a database is opened")
def test_a_size_limit_below_1024_is_refused(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "app", "serve", "--db", str(tmp_path / "x.db"),
                             "--max-page-bytes", "100"], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--max-page-bytes must be at least 1024" in result.stderr


def test_serving_beyond_loopback_without_base_url_or_trusted_hosts_warns_about_the_host_header(
        tmp_path: Path, db_location: str) -> None:
    open_, pinned = tmp_path / "open", tmp_path / "pinned"
    open_.mkdir()
    pinned.mkdir()
    with serve_process(open_, "--host", "0.0.0.0", db=db_location) as server:
        assert "without --base-url or --trusted-hosts" in server.log
    with serve_process(pinned, "--host", "0.0.0.0", "--trusted-hosts", "rollcall.example.com", db=db_location,
                       token_name=None) as server:
        time.sleep(0.3)
        assert "without --base-url or --trusted-hosts" not in server.log
        assert "open files limit: soft" in server.log


@pytest.mark.engines("sqlite", reason="TLS handshake timeout, no storage")
def test_a_tls_client_that_never_finishes_its_handshake_is_closed_after_the_header_timeout(tmp_path: Path) -> None:
    import socket

    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.private_key_pem.write_to_path(key)
    certificate.cert_chain_pems[0].write_to_path(cert)
    with serve_process(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key), "--header-timeout", "1",
                       scheme="https") as server:
        port = int(server.base_url.split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"\x16\x03\x01")  # the start of a ClientHello, and nothing more
            started = time.monotonic()
            assert sock.recv(4096) == b""
            assert time.monotonic() - started < 5


def test_a_port_in_use_is_one_line_and_exit_1_not_a_hang(db_location: str) -> None:
    # The database was opened before the port was bound, and its thread kept the process alive after the error.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = subprocess.run([sys.executable, "-m", "app", "serve", "--db", db_location, "--port",
                                  str(port)], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1, refused.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in refused.stderr and "Traceback" not in refused.stderr


def test_two_servers_share_one_postgresql_database_and_neither_shows_its_password(
        tmp_path: Path, postgres_server: PostgresServer) -> None:
    # The test cluster trusts loopback, so any password is accepted: it is here to be kept out of every output.
    url = postgres_server.new_database().replace("postgresql://postgres@", "postgresql://postgres:pw-s3cret@")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with serve_process(tmp_path / "a", db=url) as one, serve_process(tmp_path / "b", db=url, token_name=None) as two:
        with client(one) as http:
            assert http.post("/Users", json={"userName": "shared.person"}).status_code == 201
        with client(two, token=one.token) as http:
            listed = http.get("/Users", params={"filter": 'userName eq "SHARED.PERSON"'}).json()
            assert listed["totalResults"] == 1
            # A revocation made elsewhere (here by the CLI) is refused by the running server's next request.
            revoked = subprocess.run([sys.executable, "-m", "app", "token", "revoke", "served", "--db", url],
                                     cwd=REPO, capture_output=True, text=True, timeout=30)
            assert revoked.returncode == 0, revoked.stderr
            assert "pw-s3cret" not in revoked.stdout + revoked.stderr
            assert http.get("/Users").status_code == 401
        one.stop()
        two.stop()
    for log in (one.log, two.log):
        assert "pw-s3cret" not in log
        assert "postgresql://postgres@127.0.0.1" in log, log  # it names the database, less the password
