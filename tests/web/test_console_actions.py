"""The console's actions over real HTTP: tokens (create, shown once; revoke), webhooks (add, deliveries, remove),
holds (approve); destructive ones only after a confirmation page; a POST without its CSRF token, or with a wrong
one, is a 403 that changes nothing."""

from __future__ import annotations

import re

import pytest

from app.config import Settings
from tests.conftest import read_database_now
from tests.web.conftest import Console


def _tokens(db_path: str) -> dict[str, str | None]:
    return {record.name: record.revoked for record in read_database_now(db_path, lambda tx: tx.tokens.list_all())}


def _webhooks(db_path: str) -> list[str]:
    return [endpoint.url for endpoint in read_database_now(db_path, lambda tx: tx.webhooks.all())]


async def test_a_new_token_is_shown_once_and_listed_without_its_value(signed_in: Console, settings: Settings
                                                                     ) -> None:
    created = await signed_in.post("/console/tokens", {"csrf": await signed_in.csrf("/console/tokens"),
                                                       "name": "okta", "scopes": ["scim", "roster"]})
    assert created.status == 201
    value = re.search(r'<input id="new-token-value" readonly value="(rc_[^"]+)">', created.text).group(1)
    assert "shown this once" in created.text
    listed = await signed_in.get("/console/tokens")
    assert '<tr data-token-name="okta">' in listed.text and value not in listed.text
    # The token works, with the scopes chosen.
    api = await signed_in.client.get("/api/members", headers={"Authorization": f"Bearer {value}"})
    assert api.status == 200
    refused = await signed_in.post("/console/tokens", {"csrf": await signed_in.csrf(), "name": "bad name!"})
    assert refused.status == 400 and "Invalid token name" in refused.text and "bad name!" not in _tokens(
        settings.db_path)


async def test_revoking_a_token_asks_first_and_then_revokes(signed_in: Console, settings: Settings) -> None:
    await signed_in.post("/console/tokens", {"csrf": await signed_in.csrf(), "name": "old", "scopes": ["scim"]})
    asked = await signed_in.post("/console/tokens/old/revoke", {"csrf": await signed_in.csrf()})
    assert asked.status == 200 and "Revoke the token &#39;old&#39;?" in asked.text
    assert '<input type="hidden" name="confirm" value="yes">' in asked.text and ">Confirm</button>" in asked.text
    assert _tokens(settings.db_path)["old"] is None  # asking changed nothing
    done = await signed_in.post("/console/tokens/old/revoke", {"csrf": asked.csrf, "confirm": "yes"})
    assert done.status == 303 and done.headers["Location"] == "/console/tokens?notice=token-revoked"
    assert _tokens(settings.db_path)["old"] is not None
    assert "revoked" in (await signed_in.get("/console/tokens?notice=token-revoked")).text


async def test_revoking_the_sessions_own_token_signs_it_out(signed_in: Console) -> None:
    done = await signed_in.post("/console/tokens/console-admin/revoke", {"csrf": await signed_in.csrf(),
                                                                         "confirm": "yes"})
    assert done.status == 303 and done.headers["Location"] == "/"
    assert (await signed_in.get("/console/members")).status == 303


@pytest.mark.parametrize("csrf", [None, "", "wrong", "é"])
async def test_a_post_without_the_right_csrf_token_is_refused_and_changes_nothing(
        signed_in: Console, settings: Settings, csrf: str | None) -> None:
    sent = {} if csrf is None else {"csrf": csrf}
    before_tokens, before_hooks = _tokens(settings.db_path), _webhooks(settings.db_path)
    for path, form in (("/console/tokens", {"name": "sneaky", "scopes": ["admin"]}),
                       ("/console/tokens/console-admin/revoke", {"confirm": "yes"}),
                       ("/console/webhooks", {"url": "https://hooks.example.com/x"}),
                       ("/console/holds/1/approve", {"confirm": "yes"}),
                       ("/console/sign-out", {})):
        answer = await signed_in.post(path, {**form, **sent})
        assert answer.status == 403 and "security token" in answer.text, path
    assert _tokens(settings.db_path) == before_tokens and _webhooks(settings.db_path) == before_hooks
    assert (await signed_in.get("/console/members")).status == 200  # still signed in: sign-out was refused too


async def test_a_csrf_token_of_another_session_is_refused(signed_in: Console, settings: Settings) -> None:
    theirs = await signed_in.csrf()
    await signed_in.post("/console/sign-out", {"csrf": theirs})
    await signed_in.sign_in()
    answer = await signed_in.post("/console/tokens", {"csrf": theirs, "name": "stale"})
    assert answer.status == 403 and "stale" not in _tokens(settings.db_path)


async def test_webhooks_are_added_shown_with_deliveries_and_removed_after_confirmation(
        signed_in: Console, settings: Settings) -> None:
    added = await signed_in.post("/console/webhooks", {"csrf": await signed_in.csrf(), "description": "HR <sync>",
                                                       "url": "https://hooks.example.com/rollcall",
                                                       "events": "member.* hold.*"})
    assert added.status == 201 and re.search(r'id="new-webhook-secret" readonly value="whsec_', added.text)
    listed = await signed_in.get("/console/webhooks")
    [webhook_id] = re.findall(r'<tr data-webhook-id="(\d+)">', listed.text)
    assert "HR &lt;sync&gt;" in listed.text and "whsec_" not in listed.text
    shown = await signed_in.get(f"/console/webhooks/{webhook_id}")
    assert shown.status == 200 and "member.*, hold.*" in shown.text and "No deliveries yet." in shown.text
    bad = await signed_in.post("/console/webhooks", {"csrf": await signed_in.csrf(), "url": "ftp://x"})
    assert bad.status == 400 and 'role="alert"' in bad.text
    asked = await signed_in.post(f"/console/webhooks/{webhook_id}/remove", {"csrf": await signed_in.csrf()})
    assert asked.status == 200 and "Remove the webhook to https://hooks.example.com/rollcall?" in asked.text
    assert _webhooks(settings.db_path) == ["https://hooks.example.com/rollcall"]
    done = await signed_in.post(f"/console/webhooks/{webhook_id}/remove", {"csrf": asked.csrf, "confirm": "yes"})
    assert done.status == 303 and _webhooks(settings.db_path) == []
    assert (await signed_in.get(f"/console/webhooks/{webhook_id}")).status == 404
    assert (await signed_in.get("/console/webhooks/abc")).status == 404


async def test_a_hold_is_approved_after_confirmation(signed_in: Console, settings: Settings) -> None:
    scim = signed_in.scim
    users = [await scim.create_user(f"w{n}@acme.com") for n in range(5)]
    group = await scim.create_group("rollcall-members", [u["id"] for u in users])
    assert (await scim.delete(f"/Groups/{group['id']}")).status == 204  # five of five leave: a mass removal
    holds = await signed_in.get("/console/holds")
    [hold_id] = re.findall(r'<li data-hold-id="(\d+)">', holds.text)
    assert "mass-removal" in holds.text and "w0@acme.com" in holds.text and ">Approve</button>" in holds.text
    members = await signed_in.get("/console/members")
    assert members.text.count('<span class="badge held">held</span>') == 5
    asked = await signed_in.post(f"/console/holds/{hold_id}/approve", {"csrf": holds.csrf})
    assert asked.status == 200 and f"Approve hold {hold_id}?" in asked.text and ">Confirm</button>" in asked.text
    assert re.findall(r'<li data-hold-id="(\d+)">', (await signed_in.get("/console/holds")).text) == [hold_id]
    done = await signed_in.post(f"/console/holds/{hold_id}/approve", {"csrf": asked.csrf, "confirm": "yes"})
    assert done.status == 303 and done.headers["Location"] == "/console/holds?notice=hold-approved"
    after = await signed_in.get("/console/holds?notice=hold-approved")
    assert 'id="no-holds"' in after.text and "approved" in after.text
    assert 'id="no-members"' in (await signed_in.get("/console/members")).text
    events = await signed_in.get("/console/events?type=hold")
    assert f"hold {hold_id} approved" in events.text and "by console-admin" in events.text
    again = await signed_in.post(f"/console/holds/{hold_id}/approve", {"csrf": asked.csrf, "confirm": "yes"})
    assert again.status == 404 and "not open" in again.text
