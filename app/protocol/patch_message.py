"""The PatchOp message (RFC 7644 §3.5.2): a PATCH request body in, its operations (paths parsed) out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

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


# What fields.String, fields.Raw and validate.OneOf say, so that an operation checked by hand (_Operation) is
# reported as a nested marshmallow schema of those fields reported it.
_MISSING = "Missing data for required field."
_NULL = "Field may not be null."
_NOT_A_STRING = "Not a valid string."
_NOT_AN_OP = "must be one of add, replace, remove"
_NOT_AN_OBJECT = "Invalid input type."


class _Operation(fields.Field):
    """One operation of the message: an object of `op` (one of OPS, any case, required), `path` (a string or
    null) and `value` (anything); other members are dropped. Checked here rather than by a nested Schema, whose
    load cost 15 µs an operation, a third of a PatchOp's whole validation (timed in-process); errors come out
    as fields.Nested over such a Schema gives them."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise ValidationError({"_schema": [_NOT_AN_OBJECT]}, valid_data={})
        value = _lower_keys(value)
        loaded: dict[str, Any] = {}
        problems: dict[str, list[str]] = {}
        op = value.get("op")
        if "op" not in value:
            problems["op"] = [_MISSING]
        elif op is None:
            problems["op"] = [_NULL]
        elif not isinstance(op, str):
            problems["op"] = [_NOT_A_STRING]
        elif (op := op.strip().lower()) not in OPS:
            problems["op"] = [_NOT_AN_OP]
        else:
            loaded["op"] = op
        if "path" in value:
            path = value["path"]
            if path is None or isinstance(path, str):
                loaded["path"] = path
            else:
                problems["path"] = [_NOT_A_STRING]
        if "value" in value:
            loaded["value"] = value["value"]
        if problems:
            raise ValidationError(problems, valid_data=loaded)
        return loaded


class _PatchOpSchema(Schema):
    """Loads the message with its member names lower-cased, "operations" spelled "Operations" (_message)."""

    class Meta:
        unknown = EXCLUDE

    schemas = fields.List(fields.String(), required=True)
    # Loaded from "Operations", so that errors name it as RFC 7644 spells it (flatten_errors).
    operations = fields.List(_Operation(), required=True, data_key="Operations",
                             validate=validate.Length(min=1, error="must hold at least one operation"))


def _message(lowered: dict[str, Any]) -> dict[str, Any]:
    if "operations" in lowered:
        lowered["Operations"] = lowered.pop("operations")
    return lowered


# Built once: constructing a marshmallow Schema deep-copies its fields, which cost more than a load.
_PATCH_OP_SCHEMA = _PatchOpSchema()


def _plain_message(lowered: dict[str, Any], operations: Any) -> dict[str, Any] | None:
    """What _PATCH_OP_SCHEMA would load from a message it cannot refuse (schemas a list of strings, Operations a
    non-empty list of objects, each with a string `op` of OPS and a `path` that is a string or null), or None
    for any other message, which the schema then loads and reports on. marshmallow costs about 100 us of a
    one-member add (an identity provider's most common write), and for these messages it returns the member
    names it knows, as they are (tests/protocol/test_patch_message.py compares the two)."""
    schemas = lowered["schemas"]
    if type(schemas) is not list or type(operations) is not list or not operations \
            or not all(type(urn) is str for urn in schemas):
        return None
    loaded = []
    for raw in operations:
        if type(raw) is not dict:
            return None
        operation = _lower_keys(raw)
        op, path = operation.get("op"), operation.get("path")
        if type(op) is not str or type(path) not in (str, type(None)):
            return None
        op = op.strip().lower()
        if op not in OPS:
            return None
        plain = {"op": op}
        for name in ("path", "value"):
            if name in operation:
                plain[name] = operation[name]
        loaded.append(plain)
    return {"schemas": schemas, "operations": loaded}


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
    message = _plain_message(lowered, operations)
    if message is None:
        try:
            message = _PATCH_OP_SCHEMA.load(_message(lowered))
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
