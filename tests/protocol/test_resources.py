"""Loading, dumping and projecting SCIM resources (RFC 7643 §2-§4, RFC 7644 §3.4.2.5, §3.4.3, §3.9)."""

from __future__ import annotations

import json

import pytest

from app.protocol.attribute_lists import parse_attribute_list
from app.protocol.errors import ScimError
from app.protocol.list_parameters import MAX_START_INDEX, is_descending, page_size, start_index
from app.protocol.projection import project, wants_attribute
from app.protocol.representation import dump_resource, list_response
from app.protocol.resource_loading import MAX_MULTI_VALUES, load_resource
from app.protocol.schema_defs import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_RESOURCE,
    GROUP_SCHEMA,
    LIST_RESPONSE,
    SEARCH_REQUEST,
    USER_RESOURCE,
    USER_SCHEMA,
)
from app.protocol.search_request import SearchRequest, load_search_request

ENT = ENTERPRISE_USER_SCHEMA
META = {"resourceType": "User", "created": "2024-01-01T00:00:00Z", "lastModified": "2024-01-02T00:00:00Z",
        "location": "https://example.test/scim/v2/Users/1", "version": 'W/"1"'}


def load_user(body: dict) -> dict:
    return load_resource(USER_RESOURCE, {"userName": "bjensen", **body})


def load_error(resource_type, body) -> ScimError:
    with pytest.raises(ScimError) as caught:
        load_resource(resource_type, body)
    return caught.value


def full_user() -> dict:
    document = load_user({
        "externalId": "ext-1",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs",
        "active": True,
        "emails": [{"value": "b@example.com", "type": "work", "primary": True}, {"value": "b@home.test"}],
        ENT: {"department": "R&D", "manager": {"value": "42"}},
    })
    return dump_resource(USER_RESOURCE, document, id="1", meta=META,
                         extra={"groups": [{"value": "g1", "display": "Admins", "type": "direct"}]})


# --- load_resource -------------------------------------------------------------------------------------------


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


# --- dump_resource -------------------------------------------------------------------------------------------


def test_dump_orders_schemas_id_external_id_core_extension_extra_then_meta() -> None:
    out = full_user()
    assert list(out) == ["schemas", "id", "externalId", "userName", "name", "displayName", "active", "emails",
                         ENT, "groups", "meta"]
    assert out["schemas"] == [USER_SCHEMA, ENT]


def test_dump_lists_only_the_extensions_present() -> None:
    out = dump_resource(USER_RESOURCE, {"userName": "bjensen"}, id="1", meta=META)
    assert out["schemas"] == [USER_SCHEMA]
    group = dump_resource(GROUP_RESOURCE, {"displayName": "g"}, id="g", meta={"resourceType": "Group"},
                          extra={"members": [{"value": "u1", "$ref": "https://x/Users/u1"}]})
    assert group["schemas"] == [GROUP_SCHEMA]
    assert group["members"] == [{"value": "u1", "$ref": "https://x/Users/u1"}]


def test_stored_documents_carry_json_types_that_match_the_schema() -> None:
    document = load_resource(USER_RESOURCE, {"userName": "bjensen", "active": "true",
                                             "emails": [{"value": "b@x.com", "primary": "True"}]})
    out = dump_resource(USER_RESOURCE, document, id=17, meta=META)  # type: ignore[arg-type]
    assert out["id"] == "17"
    assert out["active"] is True and out["emails"][0]["primary"] is True


def test_stored_documents_are_in_schema_order_whatever_the_input_order() -> None:
    document = load_resource(USER_RESOURCE, {"emails": [{"value": "b@x.com"}], "active": True, "userName": "b",
                                             "externalId": "e", ENT: {"department": "x"}, "name": {"givenName": "B"}})
    assert list(document) == ["externalId", "userName", "name", "active", "emails", ENT]


def test_loaded_document_round_trips_through_dump_and_load() -> None:
    out = full_user()
    document = load_resource(USER_RESOURCE, out)
    assert dump_resource(USER_RESOURCE, document, id="1", meta=META, extra={"groups": out["groups"]}) == out


# --- projection ----------------------------------------------------------------------------------------------


def test_parse_attribute_list_splits_commas_and_treats_blank_as_absent() -> None:
    assert parse_attribute_list("userName, name.givenName") == ["userName", "name.givenName"]
    assert parse_attribute_list(None) is None
    assert parse_attribute_list("") is None
    assert parse_attribute_list(" , ") is None


def test_attributes_returns_only_those_plus_always_returned() -> None:
    out = project(full_user(), USER_RESOURCE, ["USERNAME"], None)
    assert out == {"schemas": [USER_SCHEMA, ENT], "id": "1", "userName": "bjensen"}


def test_attributes_select_sub_attributes_in_every_value() -> None:
    out = project(full_user(), USER_RESOURCE, ["name.givenName", "emails.value", "meta.lastModified"], None)
    assert out["name"] == {"givenName": "Barbara"}
    assert out["emails"] == [{"value": "b@example.com"}, {"value": "b@home.test"}]
    assert out["meta"] == {"lastModified": "2024-01-02T00:00:00Z"}
    assert "displayName" not in out


def test_attributes_accept_urn_qualified_names() -> None:
    out = project(full_user(), USER_RESOURCE, [f"{ENT}:department", f"{USER_SCHEMA}:displayName"], None)
    assert out[ENT] == {"department": "R&D"}
    assert out["displayName"] == "Babs"
    whole = project(full_user(), USER_RESOURCE, [ENT.lower()], None)
    assert whole[ENT] == {"department": "R&D", "manager": {"value": "42"}}
    manager = project(full_user(), USER_RESOURCE, [f"{ENT}:manager.value"], None)
    assert manager[ENT] == {"manager": {"value": "42"}}


def test_meta_is_returned_by_default() -> None:
    assert project(full_user(), USER_RESOURCE, None, None) == full_user()


def test_excluded_attributes_drop_attributes_and_sub_attributes() -> None:
    out = project(full_user(), USER_RESOURCE, None, ["emails", "name.familyName", f"{ENT}:manager", "meta"])
    assert "emails" not in out
    assert "meta" not in out
    assert out["name"] == {"givenName": "Barbara"}
    assert out[ENT] == {"department": "R&D"}


def test_excluded_attributes_never_drops_id() -> None:
    out = project(full_user(), USER_RESOURCE, None, ["id", "schemas", "userName"])
    assert out["id"] == "1"
    assert out["schemas"] == [USER_SCHEMA, ENT]
    assert "userName" not in out


def test_wants_attribute_lets_the_caller_skip_loading_members() -> None:
    assert wants_attribute(GROUP_RESOURCE, None, None, "members")
    assert not wants_attribute(GROUP_RESOURCE, None, ["members"], "members")
    assert not wants_attribute(GROUP_RESOURCE, None, ["MEMBERS"], "members")
    assert wants_attribute(GROUP_RESOURCE, None, ["members.display"], "members")
    assert not wants_attribute(GROUP_RESOURCE, ["displayName"], None, "members")
    assert wants_attribute(GROUP_RESOURCE, ["members.value"], None, "members")
    assert wants_attribute(GROUP_RESOURCE, ["displayName"], None, "id")
    assert wants_attribute(USER_RESOURCE, [ENT], None, f"{ENT}:manager")
    assert not wants_attribute(USER_RESOURCE, None, ["groups"], "groups")


def test_list_response_counts_items_on_this_page() -> None:
    response = list_response([{"id": "1"}, {"id": "2"}], total=10, start_index=3)
    assert response == {"schemas": [LIST_RESPONSE], "totalResults": 10, "startIndex": 3, "itemsPerPage": 2,
                        "Resources": [{"id": "1"}, {"id": "2"}]}


# --- SearchRequest -------------------------------------------------------------------------------------------


def test_search_request_is_parsed_into_snake_case_fields() -> None:
    request = load_search_request({
        "schemas": [SEARCH_REQUEST], "attributes": ["userName", "name.givenName"],
        "excludedAttributes": "emails, groups", "filter": 'userName eq "a"', "sortBy": "userName",
        "sortOrder": "DESCENDING", "startIndex": 2, "count": 5,
    })
    assert request == SearchRequest(attributes=["userName", "name.givenName"], excluded_attributes=["emails", "groups"],
                                    filter='userName eq "a"', sort_by="userName", sort_order="DESCENDING",
                                    start_index=2, count=5)


def test_search_request_defaults_are_none_and_paging_is_kept_as_sent() -> None:
    assert load_search_request({"schemas": [SEARCH_REQUEST]}) == SearchRequest()
    request = load_search_request({"schemas": [SEARCH_REQUEST], "startIndex": 0, "count": -4})
    assert (request.start_index, request.count) == (0, -4)  # list_parameters reads them as it does a query's


def test_list_parameters_clamp_paging_and_check_sort_order() -> None:
    assert (start_index(None), start_index(0), start_index(-5), start_index(7), start_index(10**30)) == (
        1, 1, 1, 7, MAX_START_INDEX)
    assert (page_size(None, 50, 200), page_size(-4, 50, 200), page_size(10**30, 50, 200)) == (50, 0, 200)
    assert (is_descending(None), is_descending("Ascending"), is_descending("DESCENDING")) == (False, False, True)
    with pytest.raises(ScimError) as caught:
        is_descending("up")
    assert caught.value.scim_type == "invalidValue" and "'up'" in caught.value.detail


def test_search_request_requires_its_schema_urn() -> None:
    for body in ({}, {"schemas": [LIST_RESPONSE]}, {"schemas": "nope"}, []):
        with pytest.raises(ScimError) as caught:
            load_search_request(body)
        assert (caught.value.status, caught.value.scim_type) == (400, "invalidSyntax")


def test_search_request_rejects_malformed_members() -> None:
    for bad in ({"sortOrder": 1}, {"count": "many"}, {"filter": 3}, {"attributes": [1]}, {"startIndex": True}):
        with pytest.raises(ScimError) as caught:
            load_search_request({"schemas": [SEARCH_REQUEST], **bad})
        assert caught.value.scim_type == "invalidSyntax"
        assert next(iter(bad)) in caught.value.detail


# -- the cap on values of a multi-valued attribute -----------------------------------------------------------------

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


def test_a_comma_inside_a_value_filter_does_not_split_the_attribute_list() -> None:
    assert parse_attribute_list('userName, emails[value eq "a],b" or type eq work].value ,name.givenName') == [
        "userName", 'emails[value eq "a],b" or type eq work].value', "name.givenName"]


def test_a_value_filtered_attribute_is_wanted_and_narrowed_not_dropped() -> None:
    group = {"schemas": [GROUP_SCHEMA], "id": "g", "displayName": "g",
             "members": [{"value": "u1", "type": "User"}, {"value": "u2", "type": "User"}]}
    picked = ['members[value eq "u2"]']
    assert wants_attribute(GROUP_RESOURCE, picked, None, "members")
    assert wants_attribute(GROUP_RESOURCE, None, picked, "members")  # only the matching values are excluded
    assert project(group, GROUP_RESOURCE, picked, None)["members"] == [{"value": "u2", "type": "User"}]
    assert project(group, GROUP_RESOURCE, None, picked)["members"] == [{"value": "u1", "type": "User"}]
    # Asked for without a filter too: every value.
    assert len(project(group, GROUP_RESOURCE, [*picked, "members.value"], None)["members"]) == 2


def test_value_filters_in_attributes_have_a_work_limit_per_resource() -> None:
    from app.protocol.errors import ScimError
    from app.protocol.projection import MAX_PROJECTION_WORK

    members = [{"value": f"u{i}", "type": "User"} for i in range(4_000)]
    group = {"schemas": [GROUP_SCHEMA], "id": "g", "displayName": "g", "members": members}
    one = project(group, GROUP_RESOURCE, ['members[value eq "u3999"]'], None)
    assert one["members"] == [members[-1]]  # 4,000 comparisons: well inside
    chain = " or ".join(["value pr"] * 256)
    assert MAX_PROJECTION_WORK < 4_000 * 256
    for attributes, excluded in (([f"members[{chain}]"], None), (None, [f"members[{chain}]"])):
        with pytest.raises(ScimError) as caught:
            project(group, GROUP_RESOURCE, attributes, excluded)
        assert caught.value.scim_type == "invalidFilter" and "1,000,000" in caught.value.detail
