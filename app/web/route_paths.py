"""Route patterns for SCIM endpoints, and the template a matched route is logged and counted under.

Endpoint names match without regard to case (`/users`, `/GROUPS`): Microsoft's Entra test collection sends
them in lower case, and RFC 7644 names no case rule a client could rely on. aiohttp routes are case-sensitive,
so each literal word of a SCIM path becomes a route variable named after the word (`{_Users:(?i:Users)}`);
`template` turns such a variable back into the word, so logs and metric labels read `/scim/v2/Users/{id}`
whatever case a client sent.
"""

from __future__ import annotations

import re

from app.config import SCIM_PREFIX

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_VARIABLE = re.compile(r"\{(_\w+)\}")


def _loose_segment(segment: str) -> str:
    if segment.startswith("{"):
        return segment  # a route variable such as {id}, as written
    return _WORD.sub(lambda word: f"{{_{word.group()}:(?i:{word.group()})}}", segment)


def scim_path(path: str) -> str:
    """The route pattern of a SCIM endpoint such as `Users/{id}` or `Users/.search`: its words in any case, after
    a Base URL entered with a trailing slash (`/scim/v2//Users`) and before a request path's one (`/Users/`)."""
    loose = "/".join(_loose_segment(segment) for segment in path.split("/"))
    return f"{SCIM_PREFIX}{{_lead:/+}}{loose}{{_trail:/?}}"


def template(canonical: str) -> str:
    """A route's canonical path as a person reads it: `/scim/v2{_lead}{_Users}/{id}{_trail}` -> `/scim/v2/Users/{id}`
    (the template of every spelling a client may send)."""
    def word(match: re.Match[str]) -> str:
        name = match.group(1)
        return {"_lead": "/", "_trail": ""}.get(name, name[1:])
    return _VARIABLE.sub(word, canonical)
