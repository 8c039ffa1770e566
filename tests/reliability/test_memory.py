"""Issue 9, finding 2: list reads cannot make the server's memory grow without bound.

A real `rollcall serve`: users of ~900 KB are refused (--max-resource-bytes, 64 KiB by default), and 120 users
just under the limit, listed with count=1000 by several clients that never read their answers, keep the peak
RSS (VmHWM) far below 300 MB: each page stops at --max-page-bytes (4 MiB by default), and the large answers held
for slow readers are capped at 16 pages in all (the excess gets a 503).
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

from tests.conftest import USER_SCHEMA, RunningServer, serve_process

STALLED_CLIENTS = 40
PEAK_RSS_LIMIT_MB = 300


def request(server: RunningServer, method: str, path: str, body: object = None) -> tuple[int, object]:
    url = urlsplit(server.base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/scim+json"}
        conn.request(method, url.path + path, body=data, headers=headers)
        response = conn.getresponse()
        text = response.read()
        return response.status, json.loads(text) if text else None
    finally:
        conn.close()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def stalled_list(server: RunningServer, path: str) -> socket.socket:
    """A client that asks for a list and never reads a byte of the answer."""
    url = urlsplit(server.base_url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((url.hostname, url.port))
    sock.sendall(f"GET {url.path}{path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                 f"Authorization: Bearer {server.token}\r\n\r\n".encode())
    return sock


def test_large_users_are_refused_and_listing_near_limit_users_keeps_memory_bounded(tmp_path: Path,
                                                                                   db_location: str) -> None:
    with serve_process(tmp_path, db=db_location) as server:
        # The review's attack: users of ~900 KB. Each is refused at once, and nothing is stored.
        for i in range(5):
            status, body = request(server, "POST", "/Users", {"schemas": [USER_SCHEMA], "userName": f"huge{i}",
                                                               "title": "x" * 900_000})
            assert status == 413, body
            assert "--max-resource-bytes" in body["detail"]  # type: ignore[index]
        # 120 users just under the 64 KiB limit: 7 MB in all, more than one page's budget.
        for i in range(120):
            status, body = request(server, "POST", "/Users", {"schemas": [USER_SCHEMA], "userName": f"fat{i:03d}",
                                                               "title": "fat", "nickName": "n" * 60_000})
            assert status == 201, body

        path = "/Users?count=1000&filter=" + quote('title eq "fat"')
        # A client that reads pages through everything, each page within the budget.
        seen, start = 0, 1
        while True:
            status, page = request(server, "GET", f"{path}&startIndex={start}")
            assert status == 200 and page["totalResults"] == 120  # type: ignore[index]
            items = page["itemsPerPage"]  # type: ignore[index]
            if items == 0:
                break
            assert 0 < items < 120
            seen += items
            start += items
        assert seen == 120

        stalled = [stalled_list(server, path) for _ in range(STALLED_CLIENTS)]
        try:
            time.sleep(2)  # every stalled answer is built by now, and parked in the server's buffers or refused
            peak = peak_rss_mb(server.process.pid)
            # The large answers in flight are at their cap: another one is refused, a small one is served.
            status, body = request(server, "GET", path)
            assert status == 503, body
            assert request(server, "GET", "/Users?count=1")[0] == 200
        finally:
            for sock in stalled:
                sock.close()
        assert peak < PEAK_RSS_LIMIT_MB, f"peak RSS {peak:.0f} MB while {STALLED_CLIENTS} clients stalled on lists"
        print(f"peak RSS {peak:.0f} MB")
        # Once the stalled clients are gone, so are their reservations.
        deadline = time.monotonic() + 10
        while request(server, "GET", path)[0] != 200:
            assert time.monotonic() < deadline, "the answers of closed connections are still held"
            time.sleep(0.2)
