"""What was wrong with a request body, in words: marshmallow's nested error messages as path-named lines, and what
kind of JSON value arrived where an object was expected."""

from __future__ import annotations

from typing import Any


def flatten_errors(messages: Any, path: str = "", in_extension: bool = False) -> list[str]:
    """Turn marshmallow's nested error dict into `emails[0].primary must be ...` lines."""
    if isinstance(messages, str):
        return [f"{path} {messages}" if path else messages]
    if isinstance(messages, list):
        return [line for message in messages for line in flatten_errors(message, path, in_extension)]
    lines: list[str] = []
    for key, sub in messages.items():
        if key == "_schema":
            child, child_in_ext = path, in_extension
        elif isinstance(key, int):
            child, child_in_ext = f"{path}[{key}]", False
        elif not path:
            child, child_in_ext = str(key), str(key).lower().startswith("urn:")
        elif in_extension:
            # Extension attributes are addressed as `urn:...:User:department` (RFC 7644 §3.10).
            child, child_in_ext = f"{path}:{key}", False
        else:
            child, child_in_ext = f"{path}.{key}", False
        lines.extend(flatten_errors(sub, child, child_in_ext))
    return lines


def json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__
