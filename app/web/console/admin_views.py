"""The console's administration pages: tokens, webhooks and holds, over the same domain calls as the API and the
CLI. Every action is a POST (the guard checks its CSRF token); a destructive one renders a confirmation page
first, and acts only on the second POST, which says confirm=yes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.domain import scopes, tokens, webhooks
from app.domain.clock import parse_duration
from app.protocol import errors
from app.web.console import wording
from app.web.console.keys import SESSION
from app.web.console.render import error_page, render, see_other
from app.web.keys import DATABASE, HOLDS

NOTICES = {
    "token-revoked": "The token was revoked; sessions it opened have ended.",
    "webhook-removed": "The webhook was removed.",
    "hold-approved": "The hold was approved: its changes are on the roster now.",
}


async def _form(request: web.Request) -> dict[str, Any]:
    form = await request.post()
    return {key: form.getall(key) if key in ("scopes",) else form.get(key) for key in form}


def _confirm(request: web.Request, form: dict[str, Any], title: str, question: str, back: str,
             keep: dict[str, str] | None = None) -> web.Response | None:
    """The confirmation page, unless this POST is the confirmed one (None then)."""
    if form.get("confirm") == "yes":
        return None
    return render(request, "confirm.html", {"title": title, "question": question, "action": request.path,
                                            "keep": keep or {}, "back": back})


def _notice(request: web.Request) -> str:
    return NOTICES.get(request.query.get("notice", ""), "")


# -- tokens ------------------------------------------------------------------------------------------------------

async def tokens_page(request: web.Request, *, status: int = 200, error: str = "",
                      created: dict[str, Any] | None = None) -> web.Response:
    listed = await tokens.list_tokens(request.app[DATABASE])
    return render(request, "tokens.html", {
        "tokens": listed, "scope_names": scopes.ALL_SCOPES, "decode": scopes.decode, "when": wording.when,
        "error": error, "created": created, "notice": _notice(request),
        "mine": request[SESSION].token_name}, status=status)


async def create_token(request: web.Request) -> web.Response:
    form = await _form(request)
    name = str(form.get("name") or "").strip()
    expires = str(form.get("expires") or "").strip()
    try:
        chosen = scopes.parse_scopes([str(s) for s in form.get("scopes") or []])
        seconds = parse_duration(expires) if expires else None
        token = await tokens.create_token(request.app[DATABASE], name, chosen, seconds)
    except (tokens.TokenError, scopes.ScopeError, ValueError) as error:
        return await tokens_page(request, status=400, error=str(error))
    return await tokens_page(request, status=201, created={"name": name, "token": token, "scopes": chosen})


async def revoke_token(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    form = await _form(request)
    own = name == request[SESSION].token_name
    asked = _confirm(request, form, "Revoke a token", f"Revoke the token {name!r}? Whatever uses it stops working "
                     "at once" + (", and this session ends: you signed in with it." if own else "."), "/console/tokens")
    if asked is not None:
        return asked
    try:
        await tokens.revoke_token(request.app[DATABASE], name)
    except tokens.TokenError as error:
        return await tokens_page(request, status=404, error=str(error))
    return see_other("/" if own else "/console/tokens?notice=token-revoked")


# -- webhooks ----------------------------------------------------------------------------------------------------

def _webhook_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound()
    return int(raw)


async def webhooks_page(request: web.Request, *, status: int = 200, error: str = "",
                        created: dict[str, Any] | None = None, form: dict[str, Any] | None = None) -> web.Response:
    return render(request, "webhooks.html", {
        "webhooks": await webhooks.listing(request.app[DATABASE]), "error": error, "created": created,
        "form": form or {}, "notice": _notice(request), "when": wording.when}, status=status)


async def add_webhook(request: web.Request) -> web.Response:
    form = await _form(request)
    url = str(form.get("url") or "").strip()
    patterns = [p.strip() for p in str(form.get("events") or "").replace(",", " ").split() if p.strip()]
    try:
        endpoint, secret = await webhooks.add(request.app[DATABASE], url, patterns or None,
                                              str(form.get("description") or "").strip() or None)
    except webhooks.WebhookError as error:
        return await webhooks_page(request, status=400, error=str(error), form=form)
    return await webhooks_page(request, status=201, created={**endpoint, "secret": secret})


async def webhook(request: web.Request) -> web.Response:
    webhook_id = _webhook_id(request)
    db = request.app[DATABASE]
    try:
        endpoint = await webhooks.one(db, webhook_id)
        attempts = await webhooks.deliveries(db, webhook_id)
    except webhooks.WebhookNotFound:
        return error_page(request, 404, "No such webhook", f"No webhook has the id {webhook_id}.")
    return render(request, "webhook.html", {"webhook": endpoint, "deliveries": attempts, "when": wording.when})


async def remove_webhook(request: web.Request) -> web.Response:
    webhook_id = _webhook_id(request)
    form = await _form(request)
    db = request.app[DATABASE]
    try:
        endpoint = await webhooks.one(db, webhook_id)
        asked = _confirm(request, form, "Remove a webhook", f"Remove the webhook to {endpoint['url']}? It gets no "
                         "more deliveries, and its delivery history goes with it.", "/console/webhooks")
        if asked is not None:
            return asked
        await webhooks.remove(db, webhook_id)
    except webhooks.WebhookNotFound:
        return error_page(request, 404, "No such webhook", f"No webhook has the id {webhook_id}.")
    return see_other("/console/webhooks?notice=webhook-removed")


# -- holds -------------------------------------------------------------------------------------------------------

def _hold_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound()
    return int(raw)


async def holds_page(request: web.Request, *, status: int = 200, error: str = "") -> web.Response:
    holds = request.app[HOLDS]
    shown = [await holds.show(h["id"]) for h in await holds.open_holds()]
    return render(request, "holds.html", {"holds": [h for h in shown if h], "error": error,
                                          "notice": _notice(request), "when": wording.when}, status=status)


async def approve_hold(request: web.Request) -> web.Response:
    hold_id = _hold_id(request)
    form = await _form(request)
    holds = request.app[HOLDS]
    shown = await holds.show(hold_id)
    if shown is None or shown["state"] != "open":
        return await holds_page(request, status=404, error=f"Hold {hold_id} is not open; nothing to approve.")
    leave_no_admin = form.get("leave_no_admin") == "yes"
    asked = _confirm(request, form, "Approve a hold", f"Approve hold {hold_id}? The {shown['count']} "
                     f"{'person' if shown['count'] == 1 else 'people'} it keeps leave the roster or change role "
                     "now, as the identity provider asked.", "/console/holds",
                     keep={"leave_no_admin": "yes"} if leave_no_admin else None)
    if asked is not None:
        return asked
    try:
        await holds.approve(hold_id, request[SESSION].token_name, leave_no_admin=leave_no_admin)
    except errors.ScimError as error:
        return await holds_page(request, status=error.status, error=error.detail)
    return see_other("/console/holds?notice=hold-approved")
