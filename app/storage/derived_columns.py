"""The columns both engines keep beside a stored document, derived from it the same way: the names, their folded
keys, externalId, displayName, active and the search key for Users; the name, its key and externalId for Groups."""

from __future__ import annotations

from typing import Any

from app.protocol.folding import fold_case
from app.protocol.schema_defs import USER_RESOURCE, ResourceType
from app.storage.search_key import user_search_key


def derived_columns(resource_type: ResourceType, document: dict[str, Any]) -> tuple[Any, ...]:
    if resource_type is USER_RESOURCE:
        user_name = document["userName"]
        return (user_name, fold_case(user_name), document.get("externalId"), document.get("displayName"),
                0 if document.get("active") is False else 1, user_search_key(document))
    display_name = document["displayName"]
    return (display_name, fold_case(display_name), document.get("externalId"))
