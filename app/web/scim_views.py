"""SCIM endpoints: thin views that parse the request, call the directory, and shape the response."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from app.config import SCIM_PREFIX
from app.domain.directory import Context, ListQuery, Rendered, etag_matches
from app.protocol import discovery, errors, list_parameters
from app.protocol.attribute_lists import parse_attribute_list
from app.protocol.filters import parse_filter
from app.protocol.representation import list_response
from app.protocol.schema_defs import ResourceType
from app.protocol.search_request import load_search_request
from app.web.http import read_json, scim_response
from app.web.keys import DIRECTORY, SETTINGS, TOKEN_NAME
from app.web.spliced import spliced_response


def base_url(request: web.Request) -> str:
    settings = request.app[SETTINGS]
    if settings.base_url:
        return settings.base_url
    # The Host header itself: aiohttp's request.host falls back to socket.getfqdn(), a DNS lookup that would
    # block the event loop for every HTTP/1.0 request without one.
    host = request.headers.get("Host") or f"{settings.host}:{settings.port}"
    return f"{request.scheme}://{host}{SCIM_PREFIX}"


def _int_param(params: Mapping[str, Any], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise errors.invalid_value(f"{name} must be an integer, not {raw!r}.")
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise errors.invalid_value(f"{name} must be an integer, not {raw!r}.") from None


def list_query(request: web.Request, *, filter_text: str | None, start_index: int | None, count: int | None,
               sort_by: str | None, sort_order: str | None, attributes: list[str] | None,
               excluded: list[str] | None, cursor: str | None = None) -> ListQuery:
    settings = request.app[SETTINGS]
    if cursor is not None and start_index is not None:
        # RFC 9865 §2.4: the client picks one method per request; there is no meaning for a mix of the two.
        raise errors.invalid_value("startIndex and cursor cannot be used together: send startIndex to page by "
                                   "index, or cursor (empty for the first page) to page by cursor.")
    return ListQuery(
        filter=parse_filter(filter_text) if filter_text is not None else None,
        start_index=list_parameters.start_index(start_index),
        count=list_parameters.page_size(count, settings.default_page_size, settings.max_page_size),
        sort_by=sort_by or None,
        descending=list_parameters.is_descending(sort_order),
        attributes=attributes,
        excluded=excluded,
        cursor=cursor,
    )


async def search_query(request: web.Request) -> ListQuery:
    """The ListQuery of a POST .search body (RFC 7644 §3.4.3)."""
    body = load_search_request(await read_json(request))
    return list_query(
        request, filter_text=body.filter, start_index=body.start_index, count=body.count, sort_by=body.sort_by,
        sort_order=body.sort_order, attributes=body.attributes, excluded=body.excluded_attributes, cursor=body.cursor,
    )


def context(request: web.Request) -> Context:
    """Who asked (the token's name, for the change feed) and how they want resources shaped."""
    return Context(base_url(request), actor=request[TOKEN_NAME],
                   attributes=parse_attribute_list(request.query.get("attributes")),
                   excluded=parse_attribute_list(request.query.get("excludedAttributes")))


def _resource_response(rendered: Rendered, status: int = 200) -> web.Response:
    headers = {"ETag": rendered.etag}
    if status == 201:
        headers["Location"] = rendered.location
    if rendered.spliced:
        return spliced_response(rendered.body, rendered.spliced, status=status, headers=headers)
    return scim_response(rendered.body, status=status, headers=headers)


class ResourceViews:
    """The views of one resource type: /Users or /Groups."""

    def __init__(self, resource_type: ResourceType) -> None:
        self.resource_type = resource_type

    async def list(self, request: web.Request) -> web.Response:
        params = request.query
        ctx = context(request)
        query = list_query(
            request, filter_text=params.get("filter"), start_index=_int_param(params, "startIndex"),
            count=_int_param(params, "count"), sort_by=params.get("sortBy"), sort_order=params.get("sortOrder"),
            attributes=ctx.attributes, excluded=ctx.excluded, cursor=params.get("cursor"),
        )
        return scim_response(await request.app[DIRECTORY].search(self.resource_type, query, base_url(request)))

    async def search(self, request: web.Request) -> web.Response:
        query = await search_query(request)
        return scim_response(await request.app[DIRECTORY].search(self.resource_type, query, base_url(request)))

    async def create(self, request: web.Request) -> web.Response:
        rendered = await request.app[DIRECTORY].create(self.resource_type, await read_json(request), context(request))
        return _resource_response(rendered, status=201)

    async def get(self, request: web.Request) -> web.StreamResponse:
        rendered = await request.app[DIRECTORY].get(self.resource_type, request.match_info["id"], context(request))
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match and etag_matches(if_none_match, rendered.etag):
            return web.Response(status=304, headers={"ETag": rendered.etag})
        return _resource_response(rendered)

    async def replace(self, request: web.Request) -> web.Response:
        rendered = await request.app[DIRECTORY].replace(
            self.resource_type, request.match_info["id"], await read_json(request), context(request),
            request.headers.get("If-Match"))
        return _resource_response(rendered)

    async def patch(self, request: web.Request) -> web.Response:
        rendered = await request.app[DIRECTORY].patch(
            self.resource_type, request.match_info["id"], await read_json(request), context(request),
            request.headers.get("If-Match"))
        return _resource_response(rendered)

    async def delete(self, request: web.Request) -> web.Response:
        await request.app[DIRECTORY].delete(self.resource_type, request.match_info["id"], context(request),
                                            request.headers.get("If-Match"))
        return web.Response(status=204)


async def search_all(request: web.Request) -> web.Response:
    query = await search_query(request)
    return scim_response(await request.app[DIRECTORY].search_all(query, base_url(request)))


async def me(request: web.Request) -> web.Response:
    """/Me (RFC 7644 §3.11) names the User the request authenticated as; a rollcall token belongs to a client."""
    raise errors.ScimError(
        501, "rollcall has no authenticated user resource: a bearer token belongs to a client, such as an identity "
             "provider, not to a User, so /Me names no one (RFC 7644 §3.11). Use /Users/{id} instead.")


# -- discovery (RFC 7644 §4) -----------------------------------------------------------------------

async def service_provider_config(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return scim_response(discovery.service_provider_config(
        base_url(request), max_results=settings.max_page_size, default_page_size=settings.default_page_size,
        bulk_max_operations=settings.bulk_max_operations, bulk_max_payload_bytes=settings.bulk_max_payload_bytes))


def _listed(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return list_response(resources, len(resources), 1)


def _one_of(items: list[dict[str, Any]], wanted: str, kind: str) -> web.Response:
    for item in items:
        if item["id"] == wanted:
            return scim_response(item)
    known = ", ".join(item["id"] for item in items)
    raise errors.not_found(f"No {kind} has the id {wanted!r}; rollcall serves {known}.")


async def resource_types(request: web.Request) -> web.Response:
    return scim_response(_listed(discovery.resource_types(base_url(request))))


async def resource_type(request: web.Request) -> web.Response:
    return _one_of(discovery.resource_types(base_url(request)), request.match_info["id"], "ResourceType")


async def schemas(request: web.Request) -> web.Response:
    return scim_response(_listed(discovery.schemas(base_url(request))))


async def schema(request: web.Request) -> web.Response:
    return _one_of(discovery.schemas(base_url(request)), request.match_info["id"], "Schema")
