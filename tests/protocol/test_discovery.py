"""Discovery endpoints (RFC 7644 §4), checked against what scim2-tester's models make of them."""

from __future__ import annotations

import scim2_models

from app.protocol.discovery import resource_types, schemas, service_provider_config
from app.protocol.representation import dump_resource
from app.protocol.resource_loading import load_resource
from app.protocol.schema_defs import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    RESOURCE_TYPE_SCHEMA,
    SCHEMA_SCHEMA,
    SCHEMAS,
    SERVICE_PROVIDER_CONFIG_SCHEMA,
    USER_RESOURCE,
    USER_SCHEMA,
)

BASE = "https://example.test/scim/v2"


def config() -> dict:
    return service_provider_config(BASE + "/", max_results=200, default_page_size=50, bulk_max_operations=1000,
                                   bulk_max_payload_bytes=1048576)


def by_name(attributes: list[dict], name: str) -> dict:
    return next(a for a in attributes if a["name"] == name)


def provider() -> scim2_models.ScimProvider:
    return scim2_models.ScimProvider.from_discovery(
        [scim2_models.Schema.model_validate(s) for s in schemas(BASE)],
        [scim2_models.ResourceType.model_validate(r) for r in resource_types(BASE)],
        scim2_models.ServiceProviderConfig.model_validate(config()),
    )


def test_service_provider_config_announces_patch_filter_sort_etag_and_bulk() -> None:
    spc = config()
    assert spc["schemas"] == [SERVICE_PROVIDER_CONFIG_SCHEMA]
    assert spc["patch"] == {"supported": True}
    assert spc["bulk"] == {"supported": True, "maxOperations": 1000, "maxPayloadSize": 1048576}
    assert spc["filter"] == {"supported": True, "maxResults": 200}
    assert spc["changePassword"] == {"supported": False}
    assert spc["sort"] == {"supported": True}
    assert spc["etag"] == {"supported": True}
    (scheme,) = spc["authenticationSchemes"]
    assert scheme["type"] == "oauthbearertoken" and scheme["name"] == "OAuth Bearer Token" and scheme["primary"]
    assert spc["meta"] == {"resourceType": "ServiceProviderConfig", "location": BASE + "/ServiceProviderConfig"}


def test_resource_types_name_their_schema_and_optional_extensions() -> None:
    user, group = resource_types(BASE)
    assert user["schemas"] == [RESOURCE_TYPE_SCHEMA]
    assert (user["id"], user["name"], user["endpoint"], user["schema"]) == ("User", "User", "/Users", USER_SCHEMA)
    assert user["schemaExtensions"] == [{"schema": ENTERPRISE_USER_SCHEMA, "required": False}]
    assert user["meta"] == {"resourceType": "ResourceType", "location": BASE + "/ResourceTypes/User"}
    assert (group["id"], group["endpoint"], group["schema"]) == ("Group", "/Groups", GROUP_SCHEMA)
    assert group.get("schemaExtensions", []) == []


def test_schemas_describe_every_schema_from_schema_defs() -> None:
    rendered = schemas(BASE)
    assert [s["id"] for s in rendered] == [s.id for s in SCHEMAS]
    for schema, definition in zip(rendered, SCHEMAS, strict=True):
        assert schema["schemas"] == [SCHEMA_SCHEMA]
        assert [a["name"] for a in schema["attributes"]] == [a.name for a in definition.attributes]
        assert schema["meta"] == {"resourceType": "Schema", "location": f"{BASE}/Schemas/{definition.id}"}


def test_schema_attributes_use_the_rfc7643_7_representation() -> None:
    user = schemas(BASE)[0]
    user_name = by_name(user["attributes"], "userName")
    assert user_name == {
        "name": "userName", "type": "string", "multiValued": False, "description": user_name["description"],
        "required": True, "caseExact": False, "mutability": "readWrite", "returned": "default",
        "uniqueness": "server",
    }
    password = by_name(user["attributes"], "password")
    assert (password["mutability"], password["returned"]) == ("writeOnly", "never")
    emails = by_name(user["attributes"], "emails")
    assert emails["multiValued"] is True
    assert by_name(emails["subAttributes"], "type")["canonicalValues"] == ["work", "home", "other"]
    groups = by_name(user["attributes"], "groups")
    assert by_name(groups["subAttributes"], "$ref")["referenceTypes"] == ["Group"]
    assert "subAttributes" not in user_name and "canonicalValues" not in user_name


def test_discovery_round_trips_through_scim2_models_and_builds_a_provider() -> None:
    built = provider()
    user_model = built.model_for("User")
    assert user_model is not None
    assert ENTERPRISE_USER_SCHEMA in user_model.get_extension_models()
    assert built.model_for_endpoint("/Groups") is not None
    assert built.config is not None and built.config.bulk.supported is True


def test_dumped_user_validates_against_the_model_built_from_discovery() -> None:
    document = load_resource(USER_RESOURCE, {
        "userName": "bjensen", "active": "True", "emails": [{"value": "b@example.com", "primary": True}],
        ENTERPRISE_USER_SCHEMA: {"department": "R&D", "manager": {"value": "42"}},
    })
    meta = {"resourceType": "User", "created": "2024-01-01T00:00:00Z", "lastModified": "2024-01-01T00:00:00Z",
            "location": BASE + "/Users/1", "version": 'W/"1"'}
    dumped = dump_resource(USER_RESOURCE, document, id="1", meta=meta)
    user = provider().model_for("User").model_validate(dumped)
    assert user.user_name == "bjensen"
    assert user[ENTERPRISE_USER_SCHEMA].department == "R&D"
