"""Projection (app/protocol/projection.py, RFC 7644 §3.4.2.5, §3.9)."""

from __future__ import annotations

import pytest

from app.protocol.errors import ScimError
from app.protocol.projection import project, wants_attribute
from app.protocol.schema_defs import (
    GROUP_RESOURCE,
    GROUP_SCHEMA,
    USER_RESOURCE,
    USER_SCHEMA,
)
from tests.protocol.conftest import ENT, full_user


def test_attributes_returns_only_those_plus_always_returned() -> None:
    out = project(full_user(), USER_RESOURCE, ["USERNAME"], None)
    assert out == {"schemas": [USER_SCHEMA, ENT], "id": "1", "userName": "bjensen"}


def test_attributes_select_sub_attributes_in_every_value() -> None:
    out = project(full_user(), USER_RESOURCE, ["name.givenName", "emails.value", "meta.lastModified"], None)
    assert out["name"] == {"givenName": "Barbara"}
    assert out["emails"] == [{"value": "b@example.com"}, {"value": "b@home.test"}]
    assert out["meta"] == {"lastModified": "2024-01-02T00:00:00Z"}
    assert "displayName" not in out


def test_attributes_accept_urn_qualified_names() -> None:
    out = project(full_user(), USER_RESOURCE, [f"{ENT}:department", f"{USER_SCHEMA}:displayName"], None)
    assert out[ENT] == {"department": "R&D"}
    assert out["displayName"] == "Babs"
    whole = project(full_user(), USER_RESOURCE, [ENT.lower()], None)
    assert whole[ENT] == {"department": "R&D", "manager": {"value": "42"}}
    manager = project(full_user(), USER_RESOURCE, [f"{ENT}:manager.value"], None)
    assert manager[ENT] == {"manager": {"value": "42"}}


def test_meta_is_returned_by_default() -> None:
    assert project(full_user(), USER_RESOURCE, None, None) == full_user()


def test_excluded_attributes_drop_attributes_and_sub_attributes() -> None:
    out = project(full_user(), USER_RESOURCE, None, ["emails", "name.familyName", f"{ENT}:manager", "meta"])
    assert "emails" not in out
    assert "meta" not in out
    assert out["name"] == {"givenName": "Barbara"}
    assert out[ENT] == {"department": "R&D"}


def test_excluded_attributes_never_drops_id() -> None:
    out = project(full_user(), USER_RESOURCE, None, ["id", "schemas", "userName"])
    assert out["id"] == "1"
    assert out["schemas"] == [USER_SCHEMA, ENT]
    assert "userName" not in out


def test_wants_attribute_lets_the_caller_skip_loading_members() -> None:
    assert wants_attribute(GROUP_RESOURCE, None, None, "members")
    assert not wants_attribute(GROUP_RESOURCE, None, ["members"], "members")
    assert not wants_attribute(GROUP_RESOURCE, None, ["MEMBERS"], "members")
    assert wants_attribute(GROUP_RESOURCE, None, ["members.display"], "members")
    assert not wants_attribute(GROUP_RESOURCE, ["displayName"], None, "members")
    assert wants_attribute(GROUP_RESOURCE, ["members.value"], None, "members")
    assert wants_attribute(GROUP_RESOURCE, ["displayName"], None, "id")
    assert wants_attribute(USER_RESOURCE, [ENT], None, f"{ENT}:manager")
    assert not wants_attribute(USER_RESOURCE, None, ["groups"], "groups")


def test_a_value_filtered_attribute_is_wanted_and_narrowed_not_dropped() -> None:
    group = {"schemas": [GROUP_SCHEMA], "id": "g", "displayName": "g",
             "members": [{"value": "u1", "type": "User"}, {"value": "u2", "type": "User"}]}
    picked = ['members[value eq "u2"]']
    assert wants_attribute(GROUP_RESOURCE, picked, None, "members")
    assert wants_attribute(GROUP_RESOURCE, None, picked, "members")  # only the matching values are excluded
    assert project(group, GROUP_RESOURCE, picked, None)["members"] == [{"value": "u2", "type": "User"}]
    assert project(group, GROUP_RESOURCE, None, picked)["members"] == [{"value": "u1", "type": "User"}]
    # Asked for without a filter too: every value.
    assert len(project(group, GROUP_RESOURCE, [*picked, "members.value"], None)["members"]) == 2


def test_value_filters_in_attributes_have_a_work_limit_per_resource() -> None:
    from app.protocol.projection import MAX_PROJECTION_WORK

    members = [{"value": f"u{i}", "type": "User"} for i in range(4_000)]
    group = {"schemas": [GROUP_SCHEMA], "id": "g", "displayName": "g", "members": members}
    one = project(group, GROUP_RESOURCE, ['members[value eq "u3999"]'], None)
    assert one["members"] == [members[-1]]  # 4,000 comparisons: well inside
    chain = " or ".join(["value pr"] * 256)
    assert MAX_PROJECTION_WORK < 4_000 * 256
    for attributes, excluded in (([f"members[{chain}]"], None), (None, [f"members[{chain}]"])):
        with pytest.raises(ScimError) as caught:
            project(group, GROUP_RESOURCE, attributes, excluded)
        assert caught.value.scim_type == "invalidFilter" and "1,000,000" in caught.value.detail
