"""The SCIM representation of stored documents and lists (app/protocol/representation.py, RFC 7643 §3, §8,
RFC 7644 §3.4.2)."""

from __future__ import annotations

from app.protocol.representation import dump_resource, list_response
from app.protocol.resource_loading import load_resource
from app.protocol.schema_defs import (
    GROUP_RESOURCE,
    GROUP_SCHEMA,
    LIST_RESPONSE,
    USER_RESOURCE,
    USER_SCHEMA,
)
from tests.protocol.conftest import ENT, META, full_user


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


def test_list_response_counts_items_on_this_page() -> None:
    response = list_response([{"id": "1"}, {"id": "2"}], total=10, start_index=3)
    assert response == {"schemas": [LIST_RESPONSE], "totalResults": 10, "startIndex": 3, "itemsPerPage": 2,
                        "Resources": [{"id": "1"}, {"id": "2"}]}
