"""The connection cap's arithmetic: it fits under the open-files limit with room for what is being accepted."""

from __future__ import annotations

import resource

import pytest

from app.web.server import connection_cap, descriptor_reserve, listen_backlog


@pytest.mark.parametrize(("requested", "open_files", "cap"), [
    (None, 20000, 1000), (None, 1024, 768), (None, 256, 144), (5000, 1024, 768), (50, 1024, 50), (None, 64, 1),
    (None, resource.RLIM_INFINITY, 1000)])
def test_the_cap_leaves_the_reserve_free(requested: int | None, open_files: int, cap: int) -> None:
    assert connection_cap(requested, open_files) == cap


def test_the_reserve_covers_three_accept_batches() -> None:
    for open_files in (256, 1024, 4096, 1 << 20):
        assert descriptor_reserve(open_files) >= 3 * listen_backlog(open_files)
        assert 16 <= listen_backlog(open_files) <= 128
