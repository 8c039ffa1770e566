"""The SearchRequest message (RFC 7644 §3.4.3): a POST /.search body validated into a SearchRequest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields

from app.protocol.attribute_lists import parse_attribute_list, split_paths, value_filtered
from app.protocol.errors import describe as _describe
from app.protocol.errors import invalid_syntax
from app.protocol.schema_defs import SEARCH_REQUEST
from app.protocol.validation_errors import flatten_errors, json_kind


@dataclass(frozen=True)
class SearchRequest:
    attributes: list[str] | None = None
    excluded_attributes: list[str] | None = None
    filter: str | None = None
    sort_by: str | None = None
    # As sent: out-of-range values and sortOrder are read by app.protocol.list_parameters, as a query string's are.
    sort_order: str | None = None
    start_index: int | None = None
    count: int | None = None
    cursor: str | None = None  # RFC 9865 §3


class _AttributeListField(fields.Field):
    """A list of attribute paths, also accepted as the comma-separated string the query form uses."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return parse_attribute_list(value)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            names = [name for item in value for name in split_paths(item)]
            for name in names:
                value_filtered(name)  # a malformed value filter: its invalidFilter, not the body's invalidSyntax
            return names or None
        raise ma.ValidationError(f"must be an array of attribute names, got {_describe(value)}")


class _TextField(fields.Field):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str):
            raise ma.ValidationError(f"must be a string, got {_describe(value)}")
        return value


class _WholeNumberField(fields.Field):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ma.ValidationError(f"must be an integer, got {_describe(value)}")


class _SearchRequestSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    schemas = fields.Raw(required=True, error_messages={"required": "is required"})
    attributes = _AttributeListField()
    excluded_attributes = _AttributeListField(data_key="excludedAttributes")
    filter = _TextField()
    sort_by = _TextField(data_key="sortBy")
    sort_order = _TextField(data_key="sortOrder")
    start_index = _WholeNumberField(data_key="startIndex")
    count = _WholeNumberField()
    cursor = _TextField()

    _KEYS: ClassVar[dict[str, str]] = {
        name.lower(): name for name in
        ("schemas", "attributes", "excludedAttributes", "filter", "sortBy", "sortOrder", "startIndex", "count",
         "cursor")
    }

    @ma.pre_load
    def _canonical_names(self, data: Any, **kwargs: Any) -> Any:
        out = {}
        for key, value in data.items():
            canonical = self._KEYS.get(key.lower())
            if canonical is not None and value is not None:
                out[canonical] = value
        return out

    @ma.validates("schemas")
    def _search_request_schema(self, value: Any, **kwargs: Any) -> None:
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or SEARCH_REQUEST.lower() not in {
            v.lower() for v in values if isinstance(v, str)
        }:
            raise ma.ValidationError(f"must contain {SEARCH_REQUEST}")

    @ma.post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> SearchRequest:
        data.pop("schemas", None)
        return SearchRequest(**data)


_SEARCH_REQUEST_SCHEMA = _SearchRequestSchema()


def load_search_request(body: Any) -> SearchRequest:
    """Validate a POST /.search body; any departure from the message schema is 400 invalidSyntax."""
    if not isinstance(body, dict):
        raise invalid_syntax(f"The request body must be a JSON object, not {json_kind(body)}")
    try:
        return _SEARCH_REQUEST_SCHEMA.load(body)
    except ma.ValidationError as error:
        raise invalid_syntax("Invalid SearchRequest: " + "; ".join(flatten_errors(error.messages))) from None
