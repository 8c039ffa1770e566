"""The SCIM representation of stored documents and lists (app/protocol/representation.py, RFC 7643 §3, §8,
RFC 7644 §3.4.2)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.protocol.errors import ScimError
from app.protocol.group_list import UserGroups, user_group
from app.protocol.representation import PageFramer, dump_resource, list_response
from app.protocol.resource_loading import load_resource
from app.protocol.schema_defs import (
    GROUP_RESOURCE,
    GROUP_SCHEMA,
    LIST_RESPONSE,
    USER_RESOURCE,
    USER_SCHEMA,
    ResourceType,
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


# -- PageFramer: a list page's framing of a stored document's JSON text, without parsing it -------------------

# Strings that could fool a splice: quotes, backslashes, non-ASCII, JSON's line separators, and the extension's
# own key written inside a value.
_TRICKY = st.one_of(st.text(max_size=12), st.sampled_from(
    [ENT, f'"{ENT}":', f'{{"{ENT}":{{}}}}', '"', "\\", '\\"', "é", "日本", "😀", "\u2028", "\x00", "\x7f", "meta"]))
_MEMBERS = st.lists(st.fixed_dictionaries({"value": _TRICKY, "$ref": _TRICKY, "display": _TRICKY,
                                           "type": st.just("direct")}), max_size=3)
_USER_BODY = st.fixed_dictionaries({"userName": _TRICKY.filter(lambda s: s.strip() != "")}, optional={
    "externalId": _TRICKY, "displayName": _TRICKY, "nickName": _TRICKY, "title": _TRICKY, "active": st.booleans(),
    "name": st.fixed_dictionaries({}, optional={"givenName": _TRICKY, "familyName": _TRICKY}),
    "emails": st.lists(st.fixed_dictionaries({"value": _TRICKY}, optional={"type": st.sampled_from(["work", "home"]),
                                                                          "primary": st.booleans()}), max_size=2),
    ENT: st.fixed_dictionaries({}, optional={"department": _TRICKY, "employeeNumber": _TRICKY,
                                             "manager": st.fixed_dictionaries({"value": _TRICKY})}),
    # The framing's own keys, which a client may send and the stored document must not keep.
    "id": _TRICKY, "schemas": st.just([USER_SCHEMA, ENT]), "meta": st.just({"resourceType": "User"}),
    "groups": _MEMBERS,
})
_GROUP_BODY = st.fixed_dictionaries({"displayName": _TRICKY.filter(lambda s: s.strip() != "")}, optional={
    "externalId": _TRICKY, "id": _TRICKY, "schemas": st.just([GROUP_SCHEMA]), "meta": st.just({"x": 1}),
})


def _stored(resource_type: ResourceType, body: dict[str, Any]) -> dict[str, Any]:
    try:
        document = load_resource(resource_type, body)
    except ScimError:
        assume(False)
    document.pop("members", None)  # kept apart from the document, as Directory.creating does
    return document


_META_OF = st.fixed_dictionaries({"created": _TRICKY, "lastModified": _TRICKY, "version": st.integers(min_value=0),
                                  "base_url": _TRICKY})


def _assert_framed_bytes_equal(resource_type: ResourceType, body: dict[str, Any], resource_id: str,
                               meta_of: dict[str, Any], extra: dict[str, Any], extra_json: bytes) -> None:
    """PageFramer's bytes for the stored `body` are orjson.dumps of dump_resource's dict, `extra_json` being what
    the page splices for `extra`."""
    document = _stored(resource_type, body)
    location = f"{meta_of['base_url']}{resource_type.endpoint}/"
    meta = {"resourceType": resource_type.name, "created": meta_of["created"], "lastModified": meta_of["lastModified"],
            "location": location + resource_id, "version": f'W/"{meta_of["version"]}"'}
    expected = orjson.dumps(dump_resource(resource_type, document, id=resource_id, meta=meta, extra=extra))
    framer = PageFramer(resource_type, location, lambda v: f'W/"{v}"')
    for _ in range(2):  # the second time from the framer's remembered encodings
        assert framer.encode(orjson.dumps(document), resource_id, meta_of["created"], meta_of["lastModified"],
                             meta_of["version"], extra_json) == expected


_MEMBERSHIPS = st.lists(st.tuples(_TRICKY, _TRICKY), max_size=3)


class _Membership:
    def __init__(self, group_id: str, display: str) -> None:
        self.group_id, self.display = group_id, display


@given(_USER_BODY, _TRICKY, _META_OF, _MEMBERSHIPS)
@settings(max_examples=400, deadline=None)
def test_a_pages_user_with_its_groups_as_json_text_is_the_dict_paths_bytes(
        body: dict[str, Any], resource_id: str, meta_of: dict[str, Any], memberships: list[tuple[str, str]]) -> None:
    # A list page renders User.groups as text (group_list.UserGroups) and splices it; a GET frames the dicts of
    # Directory._extras. Any id, timestamp or base URL, however it must be escaped, comes out as
    # orjson.dumps(meta) writes it.
    base_url = meta_of["base_url"]
    groups = [_Membership(group_id, display) for group_id, display in dict(memberships).items()]
    as_dicts = {"groups": [user_group(g.group_id, g.display, base_url) for g in groups]} if groups else {}
    framer = PageFramer(USER_RESOURCE, "", str)
    as_text = framer.member("groups", UserGroups(base_url).json(groups)) if groups else b""
    _assert_framed_bytes_equal(USER_RESOURCE, body, resource_id, meta_of, as_dicts, as_text)


@given(_GROUP_BODY, _TRICKY, _META_OF, _MEMBERS)
@settings(max_examples=200, deadline=None)
def test_a_pages_group_is_the_dict_paths_bytes(body: dict[str, Any], resource_id: str, meta_of: dict[str, Any],
                                               members: list[dict[str, str]]) -> None:
    extra = {"members": members} if members else {}
    members_json = PageFramer(GROUP_RESOURCE, "", str).member("members", orjson.dumps(members)) if members else b""
    _assert_framed_bytes_equal(GROUP_RESOURCE, body, resource_id, meta_of, extra, members_json)


def test_a_page_framers_group_without_members_has_no_stray_comma() -> None:
    framer = PageFramer(GROUP_RESOURCE, "https://h/Groups/", str)
    assert orjson.loads(framer.encode(b"{}", "g", "c", "m", 3)) == {
        "schemas": [GROUP_SCHEMA], "id": "g",
        "meta": {"resourceType": "Group", "created": "c", "lastModified": "m", "location": "https://h/Groups/g",
                 "version": "3"}}
