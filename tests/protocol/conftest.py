"""Shared helpers of the protocol tests: documents and calls the PATCH and resource tests both build on."""

from __future__ import annotations

from typing import Any

import pytest

from app.protocol.errors import ScimError
from app.protocol.patch_engine import PatchResult, apply_patch
from app.protocol.patch_message import parse_patch_request
from app.protocol.representation import dump_resource
from app.protocol.resource_loading import load_resource
from app.protocol.schema_defs import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_RESOURCE,
    PATCH_OP,
    USER,
    USER_RESOURCE,
)

# -- PATCH -------------------------------------------------------------------------------------------------

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
EMAILS = USER.attribute("emails")
assert EMAILS is not None


def bjensen() -> dict[str, Any]:
    return {
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs Jensen",
        "emails": [
            {"value": "bjensen@work.example.com", "type": "work", "primary": True},
            {"value": "babs@home.example.com", "type": "home"},
        ],
        "addresses": [{"type": "home", "postalCode": "91608", "locality": "Hollywood"}],
        "active": True,
        "externalId": "e1",
        ENTERPRISE: {"department": "Tour", "manager": {"value": "id2"}},
    }


def team() -> dict[str, Any]:
    return {"displayName": "pipefy-members", "externalId": "jc-1"}


def message(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def patch_user(*operations: dict[str, Any], document: dict[str, Any] | None = None) -> PatchResult:
    return apply_patch(USER_RESOURCE, bjensen() if document is None else document,
                       parse_patch_request(message(*operations)))


def patch_group(*operations: dict[str, Any]) -> PatchResult:
    return apply_patch(GROUP_RESOURCE, team(), parse_patch_request(message(*operations)))


def scim_error(call: Any, *args: Any) -> ScimError:
    with pytest.raises(ScimError) as caught:
        call(*args)
    return caught.value


def user_error(*operations: dict[str, Any]) -> ScimError:
    return scim_error(patch_user, *operations)


def group_error(*operations: dict[str, Any]) -> ScimError:
    return scim_error(patch_group, *operations)


# -- resources -------------------------------------------------------------------------------------------

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
