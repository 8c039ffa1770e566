"""Attribute values: which are unassigned (RFC 7643 §2.5), and values as a client writes them in a PATCH cleaned
for storing (canonical sub-attribute names, unknown and read-only sub-attributes dropped, booleans sent as strings
read as booleans, one-element arrays unwrapped)."""

from __future__ import annotations

from typing import Any

from app.protocol.errors import invalid_value
from app.protocol.schema_defs import Attribute


def coerce_boolean(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def unwrap(value: Any) -> Any:
    """A single value sent as a one-element array (`"value": ["x"]`) is that value."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def clean_scalar(attribute: Attribute, value: Any) -> Any:
    value = unwrap(value)
    return coerce_boolean(value) if attribute.type == "boolean" else value


def clean_complex(attribute: Attribute, value: Any) -> dict[str, Any]:
    if isinstance(value, str | int | float) and not isinstance(value, bool) and attribute.sub("value"):
        value = {"value": value}  # Entra sends `manager` as the bare id: `"value": "id2"`
    if not isinstance(value, dict):
        raise invalid_value(f"{attribute.name!r} is complex; its value must be an object, not {value!r}.")
    clean: dict[str, Any] = {}
    for key, inner in value.items():
        sub = attribute.sub(key) if isinstance(key, str) else None
        if sub is None or sub.mutability in ("readOnly", "writeOnly") or inner is None:
            continue
        clean[sub.name] = clean_scalar(sub, inner)
    return clean


def clean_multi(attribute: Attribute, value: Any) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    if not attribute.is_complex:
        return [clean_scalar(attribute, v) for v in values if v is not None]
    cleaned = [clean_complex(attribute, v) for v in values if v is not None]
    return [item for item in cleaned if item]


def is_unassigned(value: Any) -> bool:
    # RFC 7643 §2.5: null, an empty array (and, by extension, an empty object) are "unassigned".
    return value is None or value == [] or value == {}
