"""Bearer tokens: what cannot be a token is refused before it is hashed."""

from __future__ import annotations

import pytest

from app.domain.tokens import Authenticator
from app.storage.interface import Storage


@pytest.mark.parametrize("presented", ["\udcff", "rc_\xe9t\xe9", "rc_abc def", "rc_abc\x00", "", "rc_" + "a" * 600])
async def test_a_value_no_token_can_have_is_refused_without_a_500(database: Storage, token: str,
                                                                 presented: str) -> None:
    assert await Authenticator(database).authenticate(presented) is None


async def test_a_real_token_is_still_accepted(database: Storage, token: str) -> None:
    authenticator = Authenticator(database)
    found = await authenticator.authenticate(token)
    assert found is not None and found.name == "tests" and found.scopes == ("scim", "roster")
    await authenticator.flush()  # its first use is being written: before the database closes
