"""The PatchOp message (RFC 7644 §3.5.2): a PATCH request body in, its operations (paths parsed) out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate

from app.protocol.errors import ScimError, invalid_syntax, invalid_value, no_target
from app.protocol.filters import PatchPath, parse_patch_path
from app.protocol.schema_defs import PATCH_OP
from app.protocol.validation_errors import flatten_errors

MAX_OPERATIONS = 1000

OPS = ("add", "replace", "remove")


@dataclass(frozen=True)
class PatchOperation:
    op: str  # "add" | "replace" | "remove" (normalised to lower case)
    path: PatchPath | None
    value: Any


def _lower_keys(data: Any) -> Any:
    """Member names of a PatchOp message are matched case-insensitively ("Operations", "operations", "OP")."""
    if isinstance(data, dict):
        return {key.lower() if isinstance(key, str) else key: value for key, value in data.items()}
    return data


class _OperationSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    op = fields.String(required=True, validate=validate.OneOf(OPS, error="must be one of add, replace, remove"))
    path = fields.String(allow_none=True)
    value = fields.Raw(allow_none=True)

    @pre_load
    def _normalise(self, data: Any, **_: Any) -> Any:
        data = _lower_keys(data)
        if isinstance(data, dict) and isinstance(data.get("op"), str):
            data["op"] = data["op"].strip().lower()
        return data


class _PatchOpSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    schemas = fields.List(fields.String(), required=True)
    # Loaded from "Operations", so that errors name it as RFC 7644 spells it (flatten_errors).
    operations = fields.List(fields.Nested(_OperationSchema), required=True, data_key="Operations",
                             validate=validate.Length(min=1, error="must hold at least one operation"))

    @pre_load
    def _normalise(self, data: Any, **_: Any) -> Any:
        data = _lower_keys(data)
        if isinstance(data, dict) and "operations" in data:
            data["Operations"] = data.pop("operations")
        return data


# Built once: constructing a marshmallow Schema deep-copies its fields, which cost more than a load.
_PATCH_OP_SCHEMA = _PatchOpSchema()


def parse_patch_request(body: Any) -> list[PatchOperation]:
    """Validate a PatchOp message (RFC 7644 §3.5.2) and return its operations in order."""
    if not isinstance(body, dict):
        raise invalid_syntax("A PATCH request body must be a JSON object (a PatchOp message).")
    lowered = _lower_keys(body)
    if "schemas" not in lowered:
        raise invalid_syntax(f"A PatchOp message must list {PATCH_OP!r} in 'schemas'.")
    operations = lowered.get("operations")
    if isinstance(operations, list) and len(operations) > MAX_OPERATIONS:
        raise ScimError(400, f"The PatchOp message holds {len(operations)} operations; the limit is "
                             f"{MAX_OPERATIONS}.", "invalidValue")
    try:
        message = _PATCH_OP_SCHEMA.load(body)
    except ValidationError as error:
        raise invalid_syntax("Invalid PatchOp message: " + "; ".join(flatten_errors(error.messages))) from None
    if PATCH_OP.lower() not in (urn.lower() for urn in message["schemas"]):
        raise invalid_syntax(f"A PatchOp message must list {PATCH_OP!r} in 'schemas'.")

    parsed: list[PatchOperation] = []
    for index, raw in enumerate(message["operations"]):
        op = raw["op"]
        text = raw.get("path")
        path = parse_patch_path(text) if text is not None and text.strip() else None
        if op in ("add", "replace") and "value" not in raw:
            raise invalid_syntax(f"Operation {index + 1} ({op}) has no 'value'; add and replace require one.")
        if op == "remove" and path is None:
            raise no_target(f"Operation {index + 1} (remove) has no 'path'; remove needs a target.")
        value = raw.get("value")
        if path is None and op != "remove" and not isinstance(value, dict):
            raise invalid_value(f"Operation {index + 1} ({op}) has no 'path', so its 'value' must be an object "
                                f"of attribute names and values.")
        parsed.append(PatchOperation(op, path, value))
    return parsed
