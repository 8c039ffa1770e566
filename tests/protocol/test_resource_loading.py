"""Loading SCIM resources (app/protocol/resource_loading.py, RFC 7643 §2-§4): bodies validated into stored documents."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from app.protocol.errors import ScimError, invalid_value
from app.protocol.representation import dump_resource
from app.protocol.resource_loading import MAX_MULTI_VALUES, _resource_schema, load_resource
from app.protocol.schema_defs import (
    GROUP_RESOURCE,
    USER_RESOURCE,
    USER_SCHEMA,
    ResourceType,
)
from app.protocol.validation_errors import flatten_errors
from tests.protocol.conftest import ENT, META, load_error, load_user


def test_rfc7643_2_1_attribute_names_are_case_insensitive_on_input() -> None:
    document = load_resource(USER_RESOURCE, {
        "USERNAME": "bjensen",
        "Name": {"GIVENNAME": "Barbara"},
        "emails": [{"VALUE": "b@example.com", "Primary": True}],
        "externalid": "x",
        ENT.lower(): {"DEPARTMENT": "R&D", "Manager": {"Value": "42"}},
    })
    assert document == {
        "externalId": "x",
        "userName": "bjensen",
        "name": {"givenName": "Barbara"},
        "emails": [{"value": "b@example.com", "primary": True}],
        ENT: {"department": "R&D", "manager": {"value": "42"}},
    }


def test_extension_attributes_written_at_top_level_are_folded_into_the_extension() -> None:
    document = load_user({f"{ENT}:department": "R&D", f"{ENT.upper()}:costCenter": "CC1", ENT: {"division": "D"}})
    assert document[ENT] == {"costCenter": "CC1", "division": "D", "department": "R&D"}


def test_core_urn_qualified_attribute_names_are_accepted() -> None:
    assert load_resource(USER_RESOURCE, {f"{USER_SCHEMA}:userName": "bjensen"}) == {"userName": "bjensen"}


def test_same_attribute_given_twice_in_different_case_is_rejected() -> None:
    error = load_error(USER_RESOURCE, {"userName": "a", "USERNAME": "b"})
    assert error.scim_type == "invalidValue"
    assert "userName" in error.detail


def test_unknown_attributes_are_ignored() -> None:
    document = load_user({"favouriteColour": "blue", "name": {"nickname2": "x"}, "urn:example:ext:1.0:User": {"a": 1}})
    assert document == {"userName": "bjensen"}


def test_read_only_attributes_in_the_body_are_ignored() -> None:
    document = load_user({
        "id": "client-chosen", "meta": {"created": "2000-01-01T00:00:00Z"}, "schemas": [USER_SCHEMA],
        "groups": [{"value": "g1"}], ENT: {"manager": {"value": "42", "displayName": "Boss"}},
    })
    assert document == {"userName": "bjensen", ENT: {"manager": {"value": "42"}}}


def test_password_is_never_stored() -> None:
    document = load_user({"password": "hunter2", "PASSWORD": "again"})
    assert "password" not in json.dumps(document).lower()
    assert "hunter2" not in json.dumps(document)


def test_password_never_reaches_a_stored_document_or_the_output() -> None:
    document = load_resource(USER_RESOURCE, {"userName": "bjensen", "password": "hunter2"})
    out = dump_resource(USER_RESOURCE, document, id="1", meta=META)
    assert "password" not in document and "password" not in out


def test_body_must_be_a_json_object() -> None:
    error = load_error(USER_RESOURCE, [{"userName": "bjensen"}])
    assert (error.status, error.scim_type) == (400, "invalidSyntax")
    assert error.detail == "The request body must be a JSON object, not a list"


def test_boolean_strings_from_entra_are_accepted() -> None:
    document = load_user({"active": "False", "emails": [{"value": "a@b", "primary": "True"}]})
    assert document["active"] is False
    assert document["emails"][0]["primary"] is True
    assert load_user({"active": "true"})["active"] is True


def test_wrong_types_name_the_attribute_path_and_expectation() -> None:
    error = load_error(USER_RESOURCE, {"userName": "a", "emails": [{"value": "a@b", "primary": "yes"}]})
    assert (error.status, error.scim_type) == (400, "invalidValue")
    assert error.detail == 'emails[0].primary must be a boolean, got "yes"'


def test_wrong_types_report_every_offending_attribute() -> None:
    error = load_error(USER_RESOURCE, {"userName": 7, "name": "Barbara", "active": 1, ENT: {"department": 5}})
    assert "userName must be a string, got 7" in error.detail
    assert 'name must be an object, got "Barbara"' in error.detail
    assert "active must be a boolean, got 1" in error.detail
    assert f"{ENT}:department must be a string, got 5" in error.detail


def test_multi_valued_attribute_given_as_scalar_is_rejected() -> None:
    error = load_error(USER_RESOURCE, {"userName": "a", "emails": "a@b"})
    assert error.detail == 'emails must be an array, got "a@b"'


def test_single_object_for_multi_valued_attribute_is_wrapped_in_a_list() -> None:
    assert load_user({"emails": {"value": "a@b"}})["emails"] == [{"value": "a@b"}]


def test_entra_manager_given_as_a_bare_id_string_means_its_value() -> None:
    assert load_user({ENT: {"manager": "42"}})[ENT] == {"manager": {"value": "42"}}


def test_null_values_mean_absent() -> None:
    document = load_user({"displayName": None, "name": {"givenName": None}, "emails": [None], ENT: None,
                          "phoneNumbers": []})
    assert document == {"userName": "bjensen"}


def test_required_attributes_missing_or_empty_are_rejected() -> None:
    for body in ({}, {"userName": None}, {"userName": ""}, {"userName": "   "}):
        error = load_error(USER_RESOURCE, body)
        assert error.scim_type == "invalidValue"
        assert error.detail.startswith("userName is required")
    assert load_error(GROUP_RESOURCE, {"members": []}).detail == "displayName is required"


def test_strings_with_nul_bytes_are_rejected() -> None:
    error = load_error(USER_RESOURCE, {"userName": "bad\u0000name"})
    assert (error.scim_type, error.detail) == ("invalidValue", "userName must not contain NUL characters")


def test_strings_are_not_trimmed() -> None:
    assert load_user({"displayName": "  Babs  "})["displayName"] == "  Babs  "


def test_non_canonical_type_values_are_accepted() -> None:
    assert load_user({"emails": [{"value": "a@b", "type": "Corporate"}]})["emails"][0]["type"] == "Corporate"


def test_at_most_one_primary_value_per_multi_valued_attribute() -> None:
    error = load_error(USER_RESOURCE, {"userName": "a", "emails": [
        {"value": "a@b", "primary": True}, {"value": "c@d", "primary": "true"}]})
    assert error.scim_type == "invalidValue"
    assert error.detail.startswith("emails ")
    assert load_user({"emails": [{"value": "a@b", "primary": True}, {"value": "c@d", "primary": False}]})


def test_binary_values_must_be_base64() -> None:
    assert load_user({"x509Certificates": [{"value": "TUlJ\nREJE"}]})["x509Certificates"] == [{"value": "TUlJ\nREJE"}]
    error = load_error(USER_RESOURCE, {"userName": "a", "x509Certificates": [{"value": "not base64!"}]})
    assert error.detail.startswith("x509Certificates[0].value must be base64")


def test_schemas_are_kept_out_of_the_document() -> None:
    assert "schemas" not in load_user({"schemas": [USER_SCHEMA, ENT]})


def test_group_members_are_validated_and_returned_for_the_caller() -> None:
    document = load_resource(GROUP_RESOURCE, {
        "displayName": "Admins",
        "members": [
            {"value": "u1", "display": "Barbara", "$ref": "https://example.test/Users/u1"},
            {"$ref": "https://example.test/scim/v2/Users/u2", "type": "User"},
            {"value": "u1"},
        ],
    })
    assert document == {"displayName": "Admins", "members": [{"value": "u1"}, {"value": "u2"}]}


def test_explicit_empty_members_list_is_kept_so_put_can_empty_a_group() -> None:
    assert load_resource(GROUP_RESOURCE, {"displayName": "g", "members": []}) == {"displayName": "g", "members": []}
    assert load_resource(GROUP_RESOURCE, {"displayName": "g", "members": None}) == {"displayName": "g"}
    assert load_resource(GROUP_RESOURCE, {"displayName": "g"}) == {"displayName": "g"}


def test_group_members_must_be_users_with_an_id() -> None:
    error = load_error(GROUP_RESOURCE, {"displayName": "g", "members": [{"value": "g2", "type": "Group"}]})
    assert error.detail == 'members[0].type must be "User" (rollcall has no nested groups), got "Group"'
    error = load_error(GROUP_RESOURCE, {"displayName": "g", "members": [{"display": "nobody"}]})
    assert error.detail == "members[0].value is required (the user's id)"
    error = load_error(GROUP_RESOURCE, {"displayName": "g", "members": [{"value": 3}]})
    assert error.detail == "members[0].value must be a non-empty user id, got 3"


@pytest.mark.parametrize("name,value", [
    ("emails", {"value": "x@example.com"}), ("phoneNumbers", {"value": "+1 555 0100"}),
    ("addresses", {"locality": "Paris"}), ("roles", {"value": "admin"}), ("entitlements", {"value": "e"}),
])
def test_a_multi_valued_attribute_holds_at_most_MAX_MULTI_VALUES_values(name: str, value: dict) -> None:
    assert MAX_MULTI_VALUES == 1000
    values = [{**value, "display": str(n)} for n in range(MAX_MULTI_VALUES)]
    assert len(load_user({name: values})[name]) == MAX_MULTI_VALUES
    error = load_error(USER_RESOURCE, {"userName": "b", name: [*values, value]})
    assert (error.status, error.scim_type) == (400, "invalidValue")
    assert error.detail == (f"{name} holds more than 1000 values (1001 given); the limit is 1000 per attribute")


def test_nulls_and_empty_values_do_not_count_towards_the_cap() -> None:
    values = [{"value": str(n)} for n in range(MAX_MULTI_VALUES)]
    assert len(load_user({"emails": [*values, None, {}, {"unknown": 1}]})["emails"]) == MAX_MULTI_VALUES


def test_group_members_are_not_capped() -> None:
    members = [{"value": f"u{n}"} for n in range(5 * MAX_MULTI_VALUES)]
    assert len(load_resource(GROUP_RESOURCE, {"displayName": "big", "members": members})["members"]) == 5000


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-1, 1), st.sampled_from(["", " ", "x", "True", "a\x00b"]),
                    st.fixed_dictionaries({}, optional={"givenName": st.sampled_from(["x", 1]), "value": st.just("v"),
                                                        "primary": st.booleans()}),
                    st.lists(st.fixed_dictionaries({}, optional={"value": st.sampled_from(["a@b", 2]),
                                                                 "primary": st.booleans()}), max_size=2))
_NAMES = ["userName", "USERNAME", "displayName", "active", "name", "emails", "nickName", "externalId", "title",
          "members", "unknown", ENT]


@settings(max_examples=300)
@given(st.sampled_from([USER_RESOURCE, GROUP_RESOURCE]),
       st.dictionaries(st.sampled_from(_NAMES), _VALUES, max_size=5))
def test_a_body_loads_as_marshmallow_loads_it_in_full(resource_type: ResourceType, body: dict[str, Any]) -> None:
    # load_resource skips the absent optional attributes (partial) once the required ones are there; the outcome
    # must be that of the plain load of every field, document or error alike.
    schema = _resource_schema(resource_type)

    def outcome(load: Callable[[], Any]) -> Any:
        try:
            return ("ok", load())
        except ScimError as error:
            return ("error", error.detail)
        except ValidationError as error:
            return ("error", invalid_value("; ".join(flatten_errors(error.messages))).detail)

    assert outcome(lambda: load_resource(resource_type, body)) == outcome(
        lambda: schema.drop_empty(schema.load(schema.canonical_names(body), partial=False)))


_SUB_NAMES = ["givenName", "GIVENNAME", "familyName", "formatted", "value", "VALUE", "primary", "type", "$ref",
              "department", "manager", "unknown"]


@settings(max_examples=300)
@example(ENT, {"manager": {}})  # an empty sub-object is unassigned: dropped, as drop_empty drops it
@example("manager", {"VALUE": "v", "value": "w"})  # a name given twice
@example("name", {"givenName": 1, "familyName": 1})  # every failing field reported, in schema order
@given(st.sampled_from(["name", "emails", ENT, "manager"]),
       st.dictionaries(st.sampled_from(_SUB_NAMES), _VALUES, max_size=4))
def test_a_sub_object_loads_through_its_fields_as_schema_load_would(where: str, body: dict[str, Any]) -> None:
    # _Complex loads a sub-object (name, an e-mail, the enterprise extension, its manager) through its schema's
    # fields without Schema.load; document and error must be those of marshmallow's own load of the same schema.
    fields = _resource_schema(USER_RESOURCE).fields
    sub_schema = {"name": fields["name"].schema, "emails": fields["emails"].inner.schema, ENT: fields["ext0"].schema,
                  "manager": fields["ext0"].schema.fields["manager"].schema}[where]

    def outcome(load: Callable[[], Any]) -> Any:
        try:
            return ("ok", load())
        except ValidationError as error:
            return ("error", flatten_errors(error.messages))  # in order: the detail a client reads

    assert outcome(lambda: sub_schema.load_object(body)) == outcome(
        lambda: sub_schema.drop_empty(sub_schema.load(sub_schema.canonical_names(body))))
