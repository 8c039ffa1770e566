"""How PATCH time grows with the number of values (issue 9, finding 1): linear, or refused at once by the cap.

    .venv/bin/python bench/patch_scaling.py [--runs 5] [--no-http]

Two parts, each timing 1,000 and 4,000 values and printing the ratio of the times beside the ratio of the
sizes (4): a linear engine gives about 4, a quadratic one about 16.

- engine: `apply_patch` alone, in this process, on documents larger than the cap allows (the cap is the load
  schema's, applied after the engine), so the engine itself is what is measured: `remove` of N values that
  match none of N held (the review's attack, ~30 s at 4,000 before), `add` of N new values, and `add` of N
  values all already held (de-duplication).
- http: `rollcall serve` (`python -m app serve`) on a fresh database in a temporary directory. A user holds
  1,000 emails, the cap (MAX_MULTI_VALUES); `PATCH remove` of 1,000 and of 4,000 values that match none (the
  result stays within the cap, so both are done), then `PATCH add` of 1,000 and of 4,000 new values, which the
  cap refuses (400) and which must be refused at once, not after the work.

Prints a markdown table and PASS/FAIL lines: engine ratios below 6, HTTP removes below 6, refusals under 1 s.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from footprint import ROOT, free_port, rollcall_command, started

from app.protocol.patch_engine import apply_patch
from app.protocol.patch_message import parse_patch_request
from app.protocol.resource_loading import MAX_MULTI_VALUES
from app.protocol.schema_defs import PATCH_OP, USER_RESOURCE

SIZES = (1000, 4000)
LINEAR_RATIO_LIMIT = 6.0  # 4 is linear, 16 quadratic; the margin absorbs noise on a shared machine
REFUSAL_LIMIT_S = 1.0


def emails(count: int, prefix: str) -> list[dict[str, Any]]:
    return [{"value": f"{prefix}{n}@example.com", "type": "work"} for n in range(count)]


def message(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def seconds_per_run(work: Callable[[], Any], minimum: float = 0.05) -> float:
    """Seconds one `work()` takes, repeated until `minimum` seconds have passed, so that one sample is not
    a few milliseconds that any other process on the machine can double."""
    # The cyclic collector runs after so many allocations and walks every live object each time, which grows
    # with the documents held here rather than with the work measured: keep it out of the timing.
    gc.collect()
    gc.disable()
    try:
        repeats = 0
        started_at = time.perf_counter()
        while True:
            work()
            repeats += 1
            elapsed = time.perf_counter() - started_at
            if elapsed >= minimum:
                return elapsed / repeats
    finally:
        gc.enable()


def engine_case(name: str, size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    if name == "remove N matching none of N":
        return ({"userName": "u", "emails": emails(size, "held")},
                message({"op": "remove", "path": "emails", "value": emails(size, "other")}))
    if name == "add N new":
        return {"userName": "u"}, message({"op": "add", "path": "emails", "value": emails(size, "new")})
    return ({"userName": "u", "emails": emails(size, "held")},
            message({"op": "add", "path": "emails", "value": emails(size, "held")}))


def engine(runs: int) -> list[tuple[str, float, float]]:
    rows = []
    for name in ("remove N matching none of N", "add N new", "add N already held"):
        works = []
        for size in SIZES:
            document, body = engine_case(name, size)
            operations = parse_patch_request(body)
            works.append(lambda d=document, o=operations: apply_patch(USER_RESOURCE, d, o))
        # The sizes take turns, so that whatever else runs on the machine slows both alike; the fastest of
        # the rounds is the one least disturbed.
        samples = [[seconds_per_run(work) for work in works] for _ in range(runs)]
        rows.append((f"engine: {name}", *(min(times) for times in zip(*samples, strict=True))))
    return rows


def request(base: str, token: str, method: str, path: str, body: Any) -> tuple[int, dict[str, Any], float]:
    data = json.dumps(body).encode()
    sent = urllib.request.Request(f"{base}/scim/v2{path}", data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"})
    started_at = time.perf_counter()
    try:
        with urllib.request.urlopen(sent, timeout=120) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    return status, json.loads(text), time.perf_counter() - started_at


def http(runs: int) -> tuple[list[tuple[str, float, float]], list[tuple[str, int, float]]]:
    with tempfile.TemporaryDirectory() as workdir:
        db = Path(workdir) / "patch.db"
        token = subprocess.run([sys.executable, "-m", "app", "token", "create", "--name", "bench", "--db", str(db)],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()[-1]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with started(rollcall_command([sys.executable, "-m", "app"], db, port), f"{base}/healthz"):
            status, user, _ = request(base, token, "POST", "/Users",
                                      {"userName": "many", "emails": emails(MAX_MULTI_VALUES, "held")})
            if status != 201:
                raise RuntimeError(f"creating the user failed: {status} {user}")
            path = f"/Users/{user['id']}"
            bodies = [message({"op": "remove", "path": "emails", "value": emails(size, "other")}) for size in SIZES]
            samples = []
            for _ in range(runs):  # the sizes take turns, as in engine()
                sample = []
                for size, body in zip(SIZES, bodies, strict=True):
                    status, answer, seconds = request(base, token, "PATCH", path, body)
                    if status != 200:
                        raise RuntimeError(f"PATCH remove of {size} failed: {status} {answer}")
                    sample.append(seconds)
                samples.append(sample)
            removes = [min(times) for times in zip(*samples, strict=True)]
            refusals = []
            for size in SIZES:
                body = message({"op": "add", "path": "emails", "value": emails(size, "new")})
                status, answer, seconds = request(base, token, "PATCH", path, body)
                refusals.append((f"http: PATCH add {size:,} new to {MAX_MULTI_VALUES:,} held", status, seconds))
    rows = [(f"http: PATCH remove N matching none of {MAX_MULTI_VALUES:,}", *removes)]
    return rows, refusals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="rounds per measurement; the fastest is reported")
    parser.add_argument("--no-http", action="store_true", help="time the engine only")
    args = parser.parse_args()

    rows = engine(args.runs)
    refusals: list[tuple[str, int, float]] = []
    if not args.no_http:
        http_rows, refusals = http(args.runs)
        rows.extend(http_rows)

    ok = True
    print(f"| case | {SIZES[0]:,} values | {SIZES[1]:,} values | time ratio (sizes x{SIZES[1] // SIZES[0]}) |")
    print("|---|---|---|---|")
    for name, small, large in rows:
        print(f"| {name} | {small * 1000:.1f} ms | {large * 1000:.1f} ms | {large / small:.2f} |")
    for name, status, seconds in refusals:
        print(f"| {name} | answered {status} in {seconds * 1000:.1f} ms | | |")
    print()
    for name, small, large in rows:
        passed = large / small < LINEAR_RATIO_LIMIT
        ok &= passed
        print(f"{'PASS' if passed else 'FAIL'} {name}: x{large / small:.2f} for x{SIZES[1] // SIZES[0]} the values "
              f"(linear < {LINEAR_RATIO_LIMIT:g})")
    for name, status, seconds in refusals:
        passed = status == 400 and seconds < REFUSAL_LIMIT_S
        ok &= passed
        print(f"{'PASS' if passed else 'FAIL'} {name}: {status} in {seconds * 1000:.1f} ms "
              f"(400 in < {REFUSAL_LIMIT_S:g} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
