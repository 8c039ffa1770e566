"""The route table: every URL rollcall answers, in one place."""

from __future__ import annotations

from aiohttp import web

from app.protocol.schema_defs import GROUP_RESOURCE, USER_RESOURCE
from app.web import api_views, bulk_views, forward_views, ops_views, scim_views, token_views, webhook_views
from app.web.keys import METRICS
from app.web.middleware import Handler
from app.web.route_paths import scim_path


def _scim(path: str) -> str:
    """A SCIM endpoint's route pattern: its names in any case, slashes as clients send them (see route_paths)."""
    return scim_path(path)


def _add_get(resource: web.Resource, handler: Handler) -> None:
    """GET and HEAD, as router.add_get does: HEAD is answered wherever GET is (RFC 9110 §9.3.2)."""
    resource.add_route("GET", handler)
    resource.add_route("HEAD", handler)


def setup_routes(app: web.Application) -> None:
    router = app.router
    for resource_type in (USER_RESOURCE, GROUP_RESOURCE):
        views = scim_views.ResourceViews(resource_type)
        name = resource_type.endpoint.strip("/")
        router.add_post(_scim(f"{name}/.search"), views.search)
        collection = router.add_resource(_scim(name), name=f"{name.lower()}")
        _add_get(collection, views.list)
        collection.add_route("POST", views.create)
        item = router.add_resource(_scim(name + "/{id}"), name=f"{name.lower()}-item")
        _add_get(item, views.get)
        item.add_route("PUT", views.replace)
        item.add_route("PATCH", views.patch)
        item.add_route("DELETE", views.delete)
    router.add_post(_scim(".search"), scim_views.search_all)
    router.add_post(_scim("Bulk"), bulk_views.bulk)
    router.add_route("*", _scim("Me"), scim_views.me)
    router.add_get(_scim("ServiceProviderConfig"), scim_views.service_provider_config)
    router.add_get(_scim("ResourceTypes"), scim_views.resource_types)
    router.add_get(_scim("ResourceTypes/{id}"), scim_views.resource_type)
    router.add_get(_scim("Schemas"), scim_views.schemas)
    router.add_get(_scim("Schemas/{id}"), scim_views.schema)
    router.add_get("/api/members", api_views.members)
    router.add_get("/api/members/{id}", api_views.member)
    router.add_get("/api/events", api_views.events)
    router.add_get("/api/holds", api_views.holds)
    router.add_get("/api/holds/{id}", api_views.hold)
    router.add_post("/api/holds/{id}/approve", api_views.approve_hold)
    token_list = router.add_resource("/api/tokens", name="tokens")
    _add_get(token_list, token_views.list_tokens)
    token_list.add_route("POST", token_views.create)
    router.add_delete("/api/tokens/{name}", token_views.revoke)
    router.add_post("/api/tokens/{name}/rotate", token_views.rotate)
    forward = router.add_resource("/auth/forward", name="forward-auth")
    _add_get(forward, forward_views.forward)
    for method in forward_views.METHODS:
        if method not in ("GET", "HEAD"):
            forward.add_route(method, forward_views.forward)
    # The admin scope, by prefix (app/domain/scopes.py).
    router.add_get("/api/webhooks", webhook_views.listing)
    router.add_post("/api/webhooks", webhook_views.add)
    item = router.add_resource("/api/webhooks/{id}")
    _add_get(item, webhook_views.one)
    item.add_route("DELETE", webhook_views.remove)
    router.add_get("/api/webhooks/{id}/deliveries", webhook_views.deliveries)
    router.add_post("/api/webhooks/{id}/redeliver", webhook_views.redeliver)
    router.add_post("/api/webhooks/{id}/rotate-secret", webhook_views.rotate_secret)
    router.add_get("/healthz", ops_views.healthz)
    router.add_get("/readyz", ops_views.readyz)
    if METRICS in app:
        router.add_get("/metrics", ops_views.metrics)
