"""The SearchRequest message (app/protocol/search_request.py, RFC 7644 §3.4.3)."""

from __future__ import annotations

import pytest

from app.protocol.errors import ScimError
from app.protocol.schema_defs import (
    LIST_RESPONSE,
    SEARCH_REQUEST,
)
from app.protocol.search_request import SearchRequest, load_search_request


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
