"""What a webhook endpoint may be, what it matches, and the retry schedule."""

from __future__ import annotations

import base64

import pytest

from app.config import Settings
from app.domain import webhooks


def test_the_backoff_doubles_with_jitter_from_a_second_up_to_an_hour() -> None:
    policy = webhooks.RetryPolicy()
    assert policy.retry_for == 3 * 24 * 3600
    for failures, ceiling in ((1, 1), (2, 2), (3, 4), (10, 512), (12, 2048), (13, 3600), (500, 3600)):
        delays = [policy.delay(failures) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (failures, min(delays), max(delays))
        assert len(set(delays)) > 1, "jitter"


@pytest.mark.parametrize(("pattern", "event_type", "expected"), [
    ("member.*", "member.joined", True), ("member.*", "member.role_changed", True),
    ("member.*", "members.joined", False), ("member.*", "group.created", False),
    ("*", "hold.placed", True), ("member.left", "member.left", True), ("member.left", "member.joined", False),
])
def test_patterns_match_families_exact_types_and_everything(pattern: str, event_type: str, expected: bool) -> None:
    assert webhooks.matches(webhooks.check_patterns([pattern]), event_type) is expected


def test_secrets_are_standard_webhooks_secrets() -> None:
    secrets = {webhooks.new_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert secret.startswith("whsec_") and 24 <= len(base64.b64decode(secret[6:], validate=True)) <= 64


def test_the_signature_is_what_standardwebhooks_verifies() -> None:
    import time

    from standardwebhooks import Webhook

    secret = webhooks.new_secret()
    event = {"seq": 7, "time": "2026-10-01T00:00:00.000000Z", "type": "member.joined", "token": "t", "userName": "é"}
    body = webhooks.payload(event)
    headers = webhooks.signed_headers(secret, 7, body, int(time.time()))
    assert headers["webhook-id"] == "evt_7"
    assert Webhook(secret).verify(body, headers) == {"type": "member.joined", "timestamp": event["time"],
                                                     "data": event}
    with pytest.raises(Exception, match="signature"):
        Webhook(webhooks.new_secret()).verify(body, headers)


@pytest.mark.parametrize("field", ["webhook_backoff_base", "webhook_backoff_cap", "webhook_retry_for",
                                   "webhook_timeout"])
def test_webhook_settings_are_validated(field: str) -> None:
    with pytest.raises(ValueError, match=field.replace("_", "-")):
        Settings(**{field: 0})
