"""The PatchOp message (app/protocol/patch_message.py, RFC 7644 §3.5.2): what a PATCH body may hold, and the
errors that name what it got wrong."""

from __future__ import annotations

import copy
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import EXCLUDE, Schema, fields, validate

from app.protocol import patch_message
from app.protocol.errors import ScimError
from app.protocol.filters import Compare, parse_patch_path
from app.protocol.patch_message import MAX_OPERATIONS, OPS, PatchOperation, parse_patch_request
from app.protocol.schema_defs import PATCH_OP
from tests.protocol.conftest import (
    message,
    scim_error,
)


def test_parse_normalises_op_case_and_parses_paths() -> None:
    operations = parse_patch_request(message(
        {"op": "Replace", "path": "name.givenName", "value": "Janet"},
        {"op": "ADD", "path": 'emails[type eq "work"].value', "value": "x@y"},
        {"op": "remove", "path": "nickName"},
    ))
    assert [o.op for o in operations] == ["replace", "add", "remove"]
    first = operations[0].path
    assert first is not None and (first.attr.name, first.attr.sub) == ("name", "givenName")
    second = operations[1].path
    assert second is not None and second.sub == "value" and isinstance(second.filter, Compare)


def test_a_malformed_patchop_names_each_problem_by_its_path() -> None:
    # One flattener (validation_errors) for every marshmallow error: `Operations[1].op`, as RFC 7644 spells it.
    problems = {"operations": [{"op": "add", "path": "title", "value": 1}, {"op": "move"}, {}]}
    error = scim_error(parse_patch_request, {"schemas": [PATCH_OP], **problems})
    assert (error.status, error.scim_type) == (400, "invalidSyntax")
    assert error.detail == ("Invalid PatchOp message: Operations[1].op must be one of add, replace, remove; "
                            "Operations[2].op Missing data for required field.")


def test_parse_accepts_lower_case_operations_key_and_any_member_case() -> None:
    body = {"SCHEMAS": [PATCH_OP], "operations": [{"OP": "add", "Path": "title", "Value": "Tour Guide"}]}
    assert parse_patch_request(body) == [PatchOperation("add", parse_patch_request(message(
        {"op": "add", "path": "title", "value": "x"}))[0].path, "Tour Guide")]


def test_parse_treats_an_empty_path_as_no_path() -> None:
    [operation] = parse_patch_request(message({"op": "replace", "path": "", "value": {"active": False}}))
    assert operation.path is None


@pytest.mark.parametrize("body", [[], "text", None])
def test_parse_rejects_a_body_that_is_not_an_object(body: Any) -> None:
    error = scim_error(parse_patch_request, body)
    assert (error.status, error.scim_type) == (400, "invalidSyntax")


def test_parse_requires_the_patchop_schema_urn() -> None:
    error = scim_error(parse_patch_request, {"Operations": [{"op": "add", "path": "title", "value": "x"}]})
    assert (error.status, error.scim_type) == (400, "invalidSyntax")
    error = scim_error(parse_patch_request, {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                             "Operations": [{"op": "add", "path": "title", "value": "x"}]})
    assert error.scim_type == "invalidSyntax" and PATCH_OP in error.detail


@pytest.mark.parametrize("operations", [None, [], "add", [{"path": "title", "value": "x"}],
                                        [{"op": "move", "path": "title"}], ["add"], [{"op": "add", "path": 5}]])
def test_parse_rejects_malformed_operations_as_invalid_syntax(operations: Any) -> None:
    body = {"schemas": [PATCH_OP]} if operations is None else {"schemas": [PATCH_OP], "Operations": operations}
    error = scim_error(parse_patch_request, body)
    assert (error.status, error.scim_type) == (400, "invalidSyntax")


def test_parse_limits_a_message_to_1000_operations() -> None:
    ops = [{"op": "replace", "path": "title", "value": str(i)} for i in range(MAX_OPERATIONS + 1)]
    error = scim_error(parse_patch_request, message(*ops))
    assert (error.status, error.scim_type) == (400, "invalidValue")
    assert len(parse_patch_request(message(*ops[:MAX_OPERATIONS]))) == MAX_OPERATIONS


def test_rfc7644_3_5_2_add_and_replace_require_a_value() -> None:
    error = scim_error(parse_patch_request, message({"op": "add", "path": "title"}))
    assert (error.status, error.scim_type) == (400, "invalidSyntax")


def test_rfc7644_3_5_2_2_remove_without_path_is_no_target() -> None:
    error = scim_error(parse_patch_request, message({"op": "remove", "value": {"title": "x"}}))
    assert (error.status, error.scim_type) == (400, "noTarget")


def test_pathless_add_needs_an_object_value() -> None:
    error = scim_error(parse_patch_request, message({"op": "add", "value": "x"}))
    assert (error.status, error.scim_type) == (400, "invalidValue")


def test_an_unparseable_path_is_invalid_path() -> None:
    error = scim_error(parse_patch_request, message({"op": "add", "path": "emails[type eq", "value": "x"}))
    assert (error.status, error.scim_type) == (400, "invalidPath")


_SCALARS = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(
    ["add", " Add ", "REMOVE", "replace", "move", "", " ", "members", "displayName", "emails[type eq \"work\"].value",
     "members[value eq \"u1\"]", "bad[["])
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.sampled_from(["value", "display", "x"]), inner, max_size=2), max_leaves=6)


@st.composite
def _spelled(draw: st.DrawFn, names: list[str], values: st.SearchStrategy[Any], optional: dict[str, Any]
             ) -> dict[str, Any]:
    """An object with one of `names` (a spelling of a required member) and some of `optional`."""
    found = {draw(st.sampled_from(names)): draw(values)}
    for name, strategy in optional.items():
        if draw(st.booleans()):
            found[name] = draw(strategy)
    return found


_OP = st.sampled_from(["add", " Add ", "REMOVE", "replace"]) | _SCALARS
_PATH = st.sampled_from(["members", "displayName", "members[value eq \"u1\"]", " "]) | _SCALARS
_OPERATION_LIKE = _spelled(["op", "OP", "Op"], _OP, {
    "path": _PATH, "Path": _PATH, "value": _JSON, "VALUE": _JSON, "other": _JSON}) | _JSON
# Mostly well-formed operations, so that many messages get past the schema (or would have).
_OPERATION_MOSTLY = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "Remove", " replace"]), "path": st.sampled_from(["members", "displayName"]),
     "value": _JSON}) | _OPERATION_LIKE
_MESSAGE_LIKE = st.fixed_dictionaries({"schemas": st.just([PATCH_OP]),
                                       "Operations": st.lists(_OPERATION_MOSTLY, min_size=1, max_size=3)}) | st.builds(
    lambda head, rest: {**head, **rest},
    _spelled(["schemas", "Schemas"], st.just([PATCH_OP]) | st.lists(
        st.sampled_from([PATCH_OP, PATCH_OP.upper(), "urn:x"]) | _SCALARS, max_size=2) | _JSON, {}),
    _spelled(["Operations", "operations"], st.lists(_OPERATION_LIKE, max_size=3) | _JSON,
             {"operations": st.lists(_OPERATION_LIKE, max_size=2), "id": _JSON})) | _JSON


def _outcome(body: Any) -> Any:
    try:
        return parse_patch_request(body)
    except ScimError as error:
        return (error.status, error.scim_type, error.detail)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_MESSAGE_LIKE)
def test_the_plain_message_path_answers_what_the_schema_does(body: dict[str, Any]) -> None:
    # parse_patch_request skips marshmallow for messages it cannot refuse (_plain_message): the same operations or
    # the same error as loading every message with the schema.
    fast = _outcome(copy.deepcopy(body))
    with patch.object(patch_message, "_plain_message", lambda lowered, operations: None):
        assert _outcome(copy.deepcopy(body)) == fast


def test_a_member_add_takes_the_plain_message_path() -> None:
    body = message({"op": "add", "path": "members", "value": [{"value": "u1"}]})
    with patch.object(patch_message, "_PATCH_OP_SCHEMA", None):  # loading with the schema would raise
        assert parse_patch_request(body) == [PatchOperation("add", parse_patch_path("members"), [{"value": "u1"}])]


class _ReferenceOperation(Schema):
    """The nested Schema each operation was loaded by before _Operation checked it by hand: the two must agree."""

    class Meta:
        unknown = EXCLUDE

    op = fields.String(required=True, validate=validate.OneOf(OPS, error="must be one of add, replace, remove"))
    path = fields.String(allow_none=True)
    value = fields.Raw(allow_none=True)


class _ReferenceMessage(Schema):
    class Meta:
        unknown = EXCLUDE

    schemas = fields.List(fields.String(), required=True)
    operations = fields.List(fields.Nested(_ReferenceOperation()), required=True, data_key="Operations",
                             validate=validate.Length(min=1, error="must hold at least one operation"))


def _reference_parse(body: Any) -> list[PatchOperation]:
    """parse_patch_request as it was with _ReferenceMessage (keys and `op` normalised as _Operation does)."""
    def normalised(operation: Any) -> Any:
        if not isinstance(operation, dict):
            return operation
        lowered = {k.lower() if isinstance(k, str) else k: v for k, v in operation.items()}
        if isinstance(lowered.get("op"), str):
            lowered["op"] = lowered["op"].strip().lower()
        return lowered

    original = patch_message._PATCH_OP_SCHEMA
    reference = _ReferenceMessage()
    load = reference.load

    def loading(data: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("Operations"), list):
            data = {**data, "Operations": [normalised(o) for o in data["Operations"]]}
        return load(data, **kwargs)

    reference.load = loading  # type: ignore[method-assign]
    patch_message._PATCH_OP_SCHEMA = reference  # type: ignore[assignment]
    try:
        return parse_patch_request(body)
    finally:
        patch_message._PATCH_OP_SCHEMA = original


_OP_VALUES = st.one_of(st.sampled_from(["add", "Replace", " REMOVE ", "move", "", None]), st.integers(0, 1),
                       st.booleans(), st.lists(st.just("add"), max_size=1))
_PATH_VALUES = st.one_of(st.sampled_from(["title", "name.givenName", "", "  ", None, 'emails[type eq "work"]']),
                         st.integers(0, 1), st.just({"a": 1}))
_OPERATION = st.one_of(
    st.fixed_dictionaries({}, optional={"op": _OP_VALUES, "OP": _OP_VALUES, "path": _PATH_VALUES,
                                        "Path": _PATH_VALUES, "value": st.one_of(st.none(), st.text(max_size=2),
                                                                                 st.just({"title": "x"})),
                                        "extra": st.integers()}),
    st.none(), st.text(max_size=2), st.lists(st.integers(), max_size=1),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_OPERATION, max_size=3))
def test_each_operation_is_checked_as_a_nested_schema_checked_it(operations: list[Any]) -> None:
    body = {"schemas": [PATCH_OP], "Operations": operations}

    def outcome(parse: Any) -> Any:
        try:
            return ("ok", parse(body))
        except ScimError as error:
            return ("error", error.status, error.scim_type, error.detail)

    assert outcome(parse_patch_request) == outcome(_reference_parse)
