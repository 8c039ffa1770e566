"""Loading a PATCHed document by its changed attributes only (resource_loading.load_patched): for any PATCH of
any stored document, the same document, or the same SCIM error (status, scimType, detail), as loading it whole."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.protocol.errors import ScimError
from app.protocol.patch_engine import apply_patch
from app.protocol.patch_message import parse_patch_request
from app.protocol.resource_loading import load_patched, load_resource
from app.protocol.schema_defs import GROUP_RESOURCE, PATCH_OP, USER_RESOURCE, ResourceType
from tests.protocol.conftest import ENTERPRISE, bjensen, team

# Values of every JSON kind, valid and not for the attributes below: the types the fields coerce ("True", 1.0),
# those they refuse (1 for a boolean, NUL, blank required strings), and lists with several primaries.
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from([1.0, 1.5, "", " ", "x", "X", "True", "false",
                                                                    "a\x00b", "2024-01-01T00:00:00Z", "2024-01-01"]),
)
EMAIL = st.fixed_dictionaries({}, optional={"value": SCALARS, "type": st.sampled_from(["work", "home", 3]),
                                            "primary": SCALARS, "VALUE": SCALARS})
VALUES = st.one_of(
    SCALARS,
    st.lists(EMAIL, max_size=3),
    EMAIL,
    st.fixed_dictionaries({}, optional={"givenName": SCALARS, "familyName": SCALARS, "FAMILYNAME": SCALARS}),
    st.fixed_dictionaries({}, optional={"department": SCALARS, "manager": st.one_of(SCALARS, EMAIL)}),
    st.lists(SCALARS, max_size=2),
)
PATHS = st.sampled_from([
    None, "userName", "USERNAME", "active", "displayName", "nickName", "name", "name.givenName", "name.familyName",
    "emails", 'emails[type eq "work"]', 'emails[type eq "work"].value', "emails.primary", "addresses",
    "externalId", "title", "x509Certificates", "roles", f"{ENTERPRISE}:department", f"{ENTERPRISE}:manager",
    ENTERPRISE, "urn:ietf:params:scim:schemas:core:2.0:User:nickName", "members",
])
PATHLESS_KEYS = st.sampled_from(["userName", "UserName", "active", "ACTIVE", "displayName", "name", "emails",
                                 "Emails", ENTERPRISE, ENTERPRISE.upper(), f"{ENTERPRISE}:department", "title",
                                 "urn:ietf:params:scim:schemas:core:2.0:User:title", "unknownThing", "id"])
OPERATION = st.one_of(
    st.fixed_dictionaries({"op": st.sampled_from(["add", "replace", "remove"]), "path": PATHS, "value": VALUES}),
    st.fixed_dictionaries({"op": st.sampled_from(["add", "replace"]),
                           "value": st.dictionaries(PATHLESS_KEYS, VALUES, max_size=3)}),
)
STORED = st.sampled_from([
    bjensen(),
    {"userName": "u"},
    {"userName": "u", "active": False, "emails": [{"value": "a@x", "primary": True}, {"value": "b@x"}]},
    {"userName": "u", ENTERPRISE: {"department": "D"}, "x509Certificates": [{"value": "TUlJ"}]},
])


def outcome(load: Any) -> tuple[Any, ...]:
    try:
        document = load()
    except ScimError as error:
        return ("error", error.status, error.scim_type, error.detail)
    # Byte for byte, so that True and 1, or two key orders, are different documents.
    return ("document", orjson.dumps(document))


def check(resource_type: ResourceType, body: dict[str, Any], operations: list[dict[str, Any]]) -> None:
    stored = load_resource(resource_type, body)
    stored.pop("members", None)
    try:
        patched = apply_patch(resource_type, stored, parse_patch_request(
            {"schemas": [PATCH_OP], "Operations": operations})).document
    except ScimError:
        return  # refused before validation: nothing to compare
    assert outcome(lambda: load_patched(resource_type, stored, patched)) == \
        outcome(lambda: load_resource(resource_type, patched))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STORED, st.lists(OPERATION, min_size=1, max_size=3))
def test_any_user_patch_loads_as_the_whole_document_would(body: dict[str, Any],
                                                           operations: list[dict[str, Any]]) -> None:
    check(USER_RESOURCE, body, operations)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries({"op": st.sampled_from(["add", "replace", "remove"]),
                                       "path": st.sampled_from(["displayName", "DISPLAYNAME", "externalId"]),
                                       "value": SCALARS}), min_size=1, max_size=3))
def test_any_group_patch_loads_as_the_whole_document_would(operations: list[dict[str, Any]]) -> None:
    check(GROUP_RESOURCE, team(), operations)


def test_removing_a_required_attribute_is_the_same_error() -> None:
    stored = load_resource(USER_RESOURCE, bjensen())
    patched = {name: value for name, value in stored.items() if name != "userName"}
    assert outcome(lambda: load_patched(USER_RESOURCE, stored, patched)) == \
        ("error", 400, "invalidValue", "userName is required")


def test_a_changed_attribute_is_loaded_and_the_rest_kept_in_schema_order() -> None:
    stored = load_resource(USER_RESOURCE, bjensen())
    patched = {**stored, "active": "False", "name": {"givenName": "B", "familyName": "J"}}
    document = load_patched(USER_RESOURCE, stored, patched)
    assert document == {**stored, "active": False, "name": {"givenName": "B", "familyName": "J"}}
    assert list(document) == list(stored)


def test_a_value_equal_but_of_another_type_counts_as_changed() -> None:
    stored = load_resource(USER_RESOURCE, {"userName": "u", "active": True})
    assert outcome(lambda: load_patched(USER_RESOURCE, stored, {**stored, "active": 1})) == \
        ("error", 400, "invalidValue", "active must be a boolean, got 1")
