"""Answers whose JSON holds large pre-rendered parts (orjson.Fragment values, e.g. a large Group's members from the
cache), sent part by part instead of encoded into one new buffer per answer.

Encoding a 10,000-member group (1.4 MB) for each answer, and aiohttp joining its headers to that body, held two
copies per answer in flight: 16 clients reading the group took rollcall's RSS from 60 to 100 MB. Here the answer is
the document's own small pieces around the fragments, and each fragment is written as it is, in slices that wait
for the transport to drain, so what an answer holds of its own is its small pieces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from aiohttp import payload, web
from aiohttp.abc import AbstractStreamWriter

from app.web.http import SCIM_CONTENT_TYPE

# A fragment below this many bytes is encoded with the rest of the answer.
SPLICED_BYTES = 64 * 1024
# The slices a spliced fragment is written in (aiohttp drains the transport after each): 256 KiB cost 20% less CPU
# per 10,000-member answer than 64 KiB, and 16 clients still hold under a megabyte each way.
SLICE_BYTES = 256 * 1024
# Stands for a fragment in the encoded document: a raw NUL byte is never in orjson's output (it escapes control
# characters in strings), so each one found is a fragment's place.
_MARK = b"\x00"


def encoded_parts(body: dict[str, Any], spliced: Mapping[str, bytes]) -> list[bytes]:
    """`orjson.dumps(body)` as a list of parts whose concatenation it is, where `spliced` names top-level values of
    `body` that are orjson.Fragments of those bytes: the ones of at least SPLICED_BYTES stand alone, as they are."""
    large = {key: raw for key, raw in spliced.items() if len(raw) >= SPLICED_BYTES and key in body}
    if not large:
        return [orjson.dumps(body)]
    marked = {key: orjson.Fragment(_MARK) if key in large else value for key, value in body.items()}
    pieces = orjson.dumps(marked).split(_MARK)
    parts = [pieces[0]]
    for key, after in zip([key for key in marked if key in large], pieces[1:], strict=True):
        parts += [large[key], after]
    return parts


class PartsPayload(payload.Payload):
    """A body written as its parts, each in SLICE_BYTES slices (memoryviews: no copies)."""

    _autoclose = True

    def __init__(self, parts: Sequence[bytes], content_type: str) -> None:
        super().__init__(parts, content_type=content_type)
        self._parts = parts
        self._size = sum(len(part) for part in parts)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return b"".join(self._parts).decode(encoding, errors)

    async def write(self, writer: AbstractStreamWriter) -> None:
        for part in self._parts:
            view = memoryview(part)
            for start in range(0, len(view), SLICE_BYTES):
                await writer.write(view[start:start + SLICE_BYTES])


def spliced_response(body: dict[str, Any], spliced: Mapping[str, bytes], status: int = 200,
                     headers: dict[str, str] | None = None) -> web.Response:
    """scim_response for a body that holds the fragments `spliced` names (encoded_parts)."""
    parts = encoded_parts(body, spliced)
    if len(parts) == 1:
        return web.Response(body=parts[0], status=status, headers=headers, content_type=SCIM_CONTENT_TYPE,
                            charset="utf-8")
    return web.Response(body=PartsPayload(parts, f"{SCIM_CONTENT_TYPE}; charset=utf-8"), status=status,
                        headers=headers)
