"""Where a role is decided: role groups by name prefix, highest role wins."""

from __future__ import annotations

import pytest

from app.domain.roles import RoleRules

RULES = RoleRules()


@pytest.mark.parametrize("name,role", [
    ("rollcall-administrators", "admin"), ("ROLLCALL-Administrators", "admin"),
    ("rollcall-members", "member"), ("rollcall-members-emea", "member"), ("Rollcall-Guests", "guest"),
    ("rollcall-member", None), ("members", None), ("JC-Test-Group", None), ("x-rollcall-members", None),
])
def test_role_groups_are_matched_by_prefix_without_regard_to_case(name: str, role: str | None) -> None:
    assert RULES.role_of_group(name) == role


def test_the_highest_role_among_role_groups_wins() -> None:
    assert RULES.role_of_user(True, ["rollcall-guests", "rollcall-administrators", "rollcall-members"]) == "admin"
    assert RULES.role_of_user(True, ["rollcall-guests", "other", "rollcall-members-emea"]) == "member"


def test_inactive_users_have_no_role() -> None:
    assert RULES.role_of_user(False, ["rollcall-administrators"]) is None


def test_default_role_applies_only_outside_role_groups() -> None:
    rules = RoleRules(default_role="guest")
    assert rules.role_of_user(True, []) == "guest"
    assert rules.role_of_user(True, ["some-team"]) == "guest"
    assert rules.role_of_user(True, ["rollcall-administrators"]) == "admin"
    assert RULES.role_of_user(True, ["some-team"]) is None


def test_the_prefix_is_configurable() -> None:
    rules = RoleRules(prefix="Pipefy")
    assert rules.role_of_group("pipefy-administrators-emea") == "admin"
    assert rules.role_of_group("rollcall-administrators") is None


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValueError):
        RoleRules(prefix=" ")
    with pytest.raises(ValueError):
        RoleRules(default_role="owner")
