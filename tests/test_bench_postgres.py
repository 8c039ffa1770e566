"""bench/run.py --db postgresql: the throw-away cluster the benchmark starts for itself (issue 11: bench/ runs its
scenarios on both engines). Durable, unlike the tests' own cluster, pinned to rollcall's CPU, a fresh empty
database per engine run, and nothing left behind once it stops."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import psycopg


def _postmaster_cpus(folder: Path) -> str:
    pid = int((folder / "data" / "postmaster.pid").read_text().split()[0])
    status = Path(f"/proc/{pid}/status").read_text()
    return next(line.split(":", 1)[1].strip() for line in status.splitlines()
                if line.startswith("Cpus_allowed_list"))


def test_the_bench_cluster_is_durable_pinned_fresh_and_gone_after_stop(bench: ModuleType) -> None:
    cpu = min(os.sched_getaffinity(0))
    cluster = bench.PostgresCluster(bench.Pinning(cpu, None))
    try:
        first, second = cluster.new_database(), cluster.new_database()
        folder = cluster.server.folder
        assert first != second
        assert _postmaster_cpus(folder) == str(cpu)
        with psycopg.connect(first) as conn:
            assert conn.execute("SHOW fsync").fetchone() == ("on",)
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
            assert tables == (0,)  # empty: rollcall serve migrates it itself, as it would a new deployment
        engine = bench.engine_for("postgresql", folder, cluster)
        assert engine.name == "postgresql" and engine.location.startswith("postgresql://")
        assert "durable" in engine.shown
    finally:
        cluster.stop()
    assert not folder.exists()
    assert cluster.server is None
