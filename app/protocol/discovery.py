"""The discovery endpoints (RFC 7644 §4, RFC 7643 §5-§7), rendered from `schema_defs`.

Nothing here is hand-written per attribute: /Schemas and /ResourceTypes describe exactly what the
resource schemas in `resource_loading.py` accept, because both read the same definitions.
"""

from __future__ import annotations

from typing import Any

from app.protocol.cursors import CURSOR_TIMEOUT_SECONDS
from app.protocol.schema_defs import (
    RESOURCE_TYPE_SCHEMA,
    RESOURCE_TYPES,
    SCHEMA_SCHEMA,
    SCHEMAS,
    SERVICE_PROVIDER_CONFIG_SCHEMA,
    Attribute,
    ResourceType,
    Schema,
)

__all__ = ["resource_types", "schemas", "service_provider_config"]


def _base(base_url: str) -> str:
    return base_url.rstrip("/")


def service_provider_config(base_url: str, *, max_results: int, default_page_size: int, bulk_max_operations: int,
                            bulk_max_payload_bytes: int) -> dict[str, Any]:
    """ServiceProviderConfig (RFC 7643 §5), with RFC 9865 §4's `pagination`."""
    return {
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "patch": {"supported": True},
        # RFC 7644 §3.7.4: the limits a Bulk request is refused with 413 above.
        "bulk": {"supported": True, "maxOperations": bulk_max_operations, "maxPayloadSize": bulk_max_payload_bytes},
        "filter": {"supported": True, "maxResults": max_results},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        # Both methods; index stays the default, as RFC 9865 §2.4 advises a server that had only index paging.
        "pagination": {
            "cursor": True,
            "index": True,
            "defaultPaginationMethod": "index",
            "defaultPageSize": default_page_size,
            "maxPageSize": max_results,
            "cursorTimeout": CURSOR_TIMEOUT_SECONDS,
        },
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "Authentication with a bearer token in the Authorization header (RFC 6750).",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{_base(base_url)}/ServiceProviderConfig",
        },
    }


def _resource_type(resource_type: ResourceType, base_url: str) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": resource_type.name,
        "name": resource_type.name,
        "endpoint": resource_type.endpoint,
        "description": resource_type.description,
        "schema": resource_type.schema.id,
    }
    if resource_type.extensions:
        # Extensions are optional for clients: a User without enterprise attributes is valid.
        rendered["schemaExtensions"] = [{"schema": ext.id, "required": False} for ext in resource_type.extensions]
    rendered["meta"] = {
        "resourceType": "ResourceType",
        "location": f"{_base(base_url)}/ResourceTypes/{resource_type.name}",
    }
    return rendered


def resource_types(base_url: str) -> list[dict[str, Any]]:
    """Every ResourceType resource (RFC 7643 §6), in the order of `RESOURCE_TYPES`."""
    return [_resource_type(resource_type, base_url) for resource_type in RESOURCE_TYPES]


def _attribute(attribute: Attribute) -> dict[str, Any]:
    """One attribute as RFC 7643 §7 describes it, sub-attributes included."""
    rendered: dict[str, Any] = {
        "name": attribute.name,
        "type": attribute.type,
        "multiValued": attribute.multi_valued,
        "description": attribute.description,
        "required": attribute.required,
        "caseExact": attribute.case_exact,
        "mutability": attribute.mutability,
        "returned": attribute.returned,
        "uniqueness": attribute.uniqueness,
    }
    if attribute.canonical_values:
        rendered["canonicalValues"] = list(attribute.canonical_values)
    if attribute.type == "reference":
        # §7 requires referenceTypes on references; "uri" is the honest default when none is declared.
        rendered["referenceTypes"] = list(attribute.reference_types or ("uri",))
    if attribute.is_complex:
        rendered["subAttributes"] = [_attribute(sub) for sub in attribute.sub_attributes]
    return rendered


def _schema(schema: Schema, base_url: str) -> dict[str, Any]:
    return {
        "schemas": [SCHEMA_SCHEMA],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": [_attribute(attribute) for attribute in schema.attributes],
        "meta": {"resourceType": "Schema", "location": f"{_base(base_url)}/Schemas/{schema.id}"},
    }


def schemas(base_url: str) -> list[dict[str, Any]]:
    """Every Schema resource (RFC 7643 §7) for the resource types served, extensions included."""
    return [_schema(schema, base_url) for schema in SCHEMAS]
