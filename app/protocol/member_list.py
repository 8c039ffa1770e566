"""Group.members as JSON text (RFC 7643 §4.2), rendered straight from the member ids.

A 10,000-member group read as a list of dicts (one per member) spent most of its time building and freeing them
(bench/runs: GC alone ~21%). The default representation of a member is a fixed template around its id, so the
array is joined as text instead, byte for byte what orjson would make of the dicts (tests/protocol/
test_member_list.py), and spliced into the answer as an orjson.Fragment.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import orjson

# Ids made of these characters need no JSON escaping. rollcall's own ids are hex (directory.new_id), so this is
# every member in practice; a client-chosen id outside it makes the whole array go through orjson instead.
_PLAIN_ID = re.compile(r"[0-9A-Za-z_.~-]*")


def member(user_id: str, base_url: str) -> dict[str, str]:
    """One member as the default representation shows it (members.display only when asked: schema_defs)."""
    return {"value": user_id, "$ref": f"{base_url}/Users/{user_id}", "type": "User"}


def members_json(user_ids: Sequence[str], base_url: str) -> bytes:
    """The JSON array of `member` for each id, in order: what orjson.dumps([member(i, base_url) ...]) gives."""
    if not _PLAIN_ID.fullmatch("".join(user_ids)):
        return orjson.dumps([member(user_id, base_url) for user_id in user_ids])
    # The base URL is the client's Host header or an operator's setting: orjson quotes and escapes it.
    ref = orjson.dumps(f"{base_url}/Users/").decode()[:-1]
    head, middle, tail = '{"value":"', '","$ref":' + ref, '","type":"User"}'
    return ("[" + ",".join(head + i + middle + i + tail for i in user_ids) + "]").encode()
