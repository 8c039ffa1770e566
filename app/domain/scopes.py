"""Token scopes, and which scope each route needs: the one place both are defined.

A route's scope is decided by its path prefix, so a route added under a prefix (e.g. /api/webhooks/{id}) gets the
prefix's scope the day it is added; a path under no prefix here needs `admin`, the safe default.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.config import SCIM_PREFIX

SCIM = "scim"        # the SCIM endpoint, read and write: what an identity provider needs
ROSTER = "roster"    # read the roster, its feed and forward auth: what an app or a proxy needs
ADMIN = "admin"      # everything, including managing tokens, webhooks and holds over the API
ALL_SCOPES = (SCIM, ROSTER, ADMIN)
# What a token made without --scope has, and what every token had before scopes existed.
DEFAULT_SCOPES = (SCIM, ROSTER)

# Path prefix → the scope its routes need. Matched on whole segments: /api/members matches /api/members/{id},
# not /api/membersx.
ROUTE_SCOPES: tuple[tuple[str, str], ...] = (
    (SCIM_PREFIX, SCIM),
    ("/api/members", ROSTER),
    ("/api/events", ROSTER),
    ("/auth/forward", ROSTER),
    ("/api/webhooks", ADMIN),
    ("/api/tokens", ADMIN),
    ("/api/holds", ADMIN),
    ("/metrics", ADMIN),
)


class ScopeError(ValueError):
    """A scope name that is not one of ALL_SCOPES; the message says which are."""


def required_scope(path: str) -> str:
    """The scope a request for `path` needs."""
    for prefix, scope in ROUTE_SCOPES:
        if path == prefix or path.startswith(prefix + "/"):
            return scope
    return ADMIN


def allows(scopes: Iterable[str], needed: str) -> bool:
    """Whether a token with `scopes` may use a route that needs `needed` (admin may use every route)."""
    held = set(scopes)
    return ADMIN in held or needed in held


def parse_scopes(names: Iterable[str] | None) -> tuple[str, ...]:
    """The scopes named (each once, in the canonical order), DEFAULT_SCOPES when none are."""
    chosen = list(names or ())
    if not chosen:
        return DEFAULT_SCOPES
    unknown = [name for name in chosen if name not in ALL_SCOPES]
    if unknown:
        raise ScopeError(f"Unknown scope {unknown[0]!r}: use {', '.join(ALL_SCOPES)}.")
    return tuple(scope for scope in ALL_SCOPES if scope in chosen)


def encode(scopes: Iterable[str]) -> str:
    """Scopes as stored: space-separated, as in OAuth's `scope` (RFC 6749 §3.3)."""
    return " ".join(scopes)


def decode(stored: str) -> tuple[str, ...]:
    return tuple(stored.split())
