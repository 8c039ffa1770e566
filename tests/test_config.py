"""Settings (app/config.py): validated once, with errors that name the option and what it accepts."""

from __future__ import annotations

import dataclasses

import pytest

from app.config import Settings


@pytest.mark.parametrize(("field", "value", "message"), [
    ("durability", "fulll", "--durability must be one of normal, full, not 'fulll'"),
    ("log_format", "jsno", "--log-format must be one of text, json, not 'jsno'"),
])
def test_a_misspelt_choice_is_refused_with_the_choices(field: str, value: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Settings(**{field: value})
    assert str(caught.value) == message


def test_durability_chooses_sqlite_synchronous() -> None:
    assert (Settings().synchronous, Settings(durability="full").synchronous) == ("NORMAL", "FULL")


def test_rules_and_hold_policy_are_built_once_per_settings() -> None:
    settings = Settings(group_prefix="acme", default_role="guest")
    assert settings.rules is settings.rules and settings.hold_policy is settings.hold_policy
    assert settings.rules.role_of_group("ACME-Administrators-emea") == "admin"
    changed = dataclasses.replace(settings, group_prefix="other")
    assert changed.rules.prefix == "other" and changed.rules.default_role == "guest"
