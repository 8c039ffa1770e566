"""startIndex, count and sortOrder (app/protocol/list_parameters.py, RFC 7644 §3.4.2.3, §3.4.2.4)."""

from __future__ import annotations

import pytest

from app.protocol.errors import ScimError
from app.protocol.list_parameters import MAX_START_INDEX, is_descending, page_size, start_index


def test_list_parameters_clamp_paging_and_check_sort_order() -> None:
    assert (start_index(None), start_index(0), start_index(-5), start_index(7), start_index(10**30)) == (
        1, 1, 1, 7, MAX_START_INDEX)
    assert (page_size(None, 50, 200), page_size(-4, 50, 200), page_size(10**30, 50, 200)) == (50, 0, 200)
    assert (is_descending(None), is_descending("Ascending"), is_descending("DESCENDING")) == (False, False, True)
    with pytest.raises(ScimError) as caught:
        is_descending("up")
    assert caught.value.scim_type == "invalidValue" and "'up'" in caught.value.detail
