"""The attributes and excludedAttributes parameters (RFC 7644 §3.4.2.5): comma-separated attribute paths, some
narrowed by a value filter (`emails[type eq "work"].value`)."""

from __future__ import annotations

from functools import lru_cache

from app.protocol.filters import PatchPath, parse_selected_path


def parse_attribute_list(text: str | None) -> list[str] | None:
    """`"userName, emails[type eq "work"]"` -> `["userName", 'emails[type eq "work"]']`; None or blank -> None.
    A malformed value filter is a 400 invalidFilter here, before anything is read."""
    if not text:
        return None
    names = split_paths(text)
    for name in names:
        value_filtered(name)
    return names or None


def split_paths(text: str) -> list[str]:
    """The comma-separated paths of `text`; a comma inside a value filter's brackets is part of the filter."""
    parts: list[str] = []
    start = depth = 0
    quoted = escaped = False
    for index, char in enumerate(text):
        if quoted:
            escaped, quoted = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            quoted = True
        elif char in "[]":
            depth = max(depth + (1 if char == "[" else -1), 0)
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [part.strip() for part in parts if part.strip()]


@lru_cache(maxsize=256)
def value_filtered(path: str) -> PatchPath | None:
    """`emails[type eq "work"].value` parsed; None for a path without a value filter (the common case)."""
    selected = parse_selected_path(path) if "[" in path else None
    return selected if selected is not None and selected.filter is not None else None


def has_value_filters(paths: list[str] | None) -> bool:
    """Whether an attributes/excludedAttributes list holds an `attr[filter]` path: projecting with one may cost up
    to MAX_PROJECTION_WORK comparisons per resource, too much for the event loop."""
    return any(value_filtered(path) is not None for path in paths or ())
