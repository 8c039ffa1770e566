"""What each identity provider sends, request by request: one class per provider, each building the exact
requests that provider is known to send (../shared/jumpcloud-client.md §3-§4 and §9, and the traffic recorded in
tests/web/test_users.py, tests/web/test_groups.py and tests/protocol/test_patch_engine.py).

These classes only build requests; `provider.py` sends them and remembers the ids rollcall assigns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from app.simulator.client import ENTERPRISE_SCHEMA, GROUP_SCHEMA, PATCH_OP, USER_SCHEMA, Request


@dataclass(frozen=True)
class Person:
    """Someone in the provider's directory."""

    user_name: str
    given_name: str
    family_name: str
    external_id: str = ""

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()

    @property
    def email(self) -> str:
        return self.user_name if "@" in self.user_name else f"{self.user_name}@example.invalid"


def _eq(attribute: str, value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{attribute} eq "{escaped}"'


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


class Dialect:
    """The requests every provider sends, in JumpCloud's spelling; subclasses override what they send otherwise."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    # Query flags the provider appends to every request (Entra's tenant URL may carry one).
    base_url_flags: ClassVar[tuple[tuple[str, str | None], ...]] = ()

    def connection_probe(self, test_user_name: str) -> Request:
        """The first request of the provider's Test Connection."""
        return self.lookup_user(test_user_name)

    def lookup_user(self, user_name: str) -> Request:
        return Request("GET", "/Users", (("filter", _eq("userName", user_name)),), event="user_lookup_provision")

    def create_user(self, person: Person, active: bool = True) -> Request:
        return Request("POST", "/Users", body={
            "schemas": [USER_SCHEMA],
            "userName": person.user_name,
            "name": {"givenName": person.given_name, "familyName": person.family_name},
            "displayName": person.display_name,
            "emails": [{"value": person.email, "type": "work", "primary": True}],
            "userType": "Employee",
            "active": active,
        }, event="user_create_provision")

    def update_user(self, user_id: str, person: Person) -> Request:
        # One replace per changed attribute, path form (§4.3, [3P-claim] S19).
        return Request("PATCH", f"/Users/{user_id}", body=_patch(
            {"op": "replace", "path": "name.givenName", "value": person.given_name},
            {"op": "replace", "path": "name.familyName", "value": person.family_name},
            {"op": "replace", "path": "displayName", "value": person.display_name},
        ), event="user_update_provision")

    def set_active(self, user_id: str, person: Person, active: bool) -> Request:
        return Request("PATCH", f"/Users/{user_id}", body=_patch(
            {"op": "replace", "path": "active", "value": active}),
            event="user_update_provision" if active else "user_deprovision")

    def delete_user(self, user_id: str) -> Request:
        return Request("DELETE", f"/Users/{user_id}", event="user_delete_provision")

    def get_user(self, user_id: str) -> Request:
        return Request("GET", f"/Users/{user_id}", event="user_lookup_provision")

    def lookup_group(self, display_name: str) -> Request:
        return Request("GET", "/Groups", (("filter", _eq("displayName", display_name)),), event="group_lookup")

    def create_group(self, display_name: str, member_ids: list[str]) -> Request:
        # JumpCloud creates a group only once it has members, with them inline (§3.2 R7, §8 groupCreate: lazy).
        body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": display_name}
        if member_ids:
            body["members"] = [{"value": member_id} for member_id in member_ids]
        return Request("POST", "/Groups", body=body, event="group_create_provision")

    def add_members(self, group_id: str, display_name: str, added: list[str], now: list[str]) -> Request:
        return Request("PATCH", f"/Groups/{group_id}", body=_patch(
            {"op": "add", "path": "members", "value": [{"value": member_id} for member_id in added]}),
            event="group_update_provision")

    def remove_members(self, group_id: str, display_name: str, removed: list[str], now: list[str]) -> Request:
        # A value array, not the RFC filter form (§3.2 R9): a server that empties the group here is a known bug.
        return Request("PATCH", f"/Groups/{group_id}", body=_patch(
            {"op": "remove", "path": "members", "value": [{"value": member_id} for member_id in removed]}),
            event="group_update_provision")

    def rename_group(self, group_id: str, new_name: str, member_ids: list[str]) -> Request:
        return Request("PATCH", f"/Groups/{group_id}", body=_patch(
            {"op": "replace", "path": "displayName", "value": new_name}), event="group_update_provision")

    def delete_group(self, group_id: str) -> Request:
        return Request("DELETE", f"/Groups/{group_id}", event="group_delete_provision")


class JumpCloud(Dialect):
    """JumpCloud's Custom SCIM integration: the default profile of §8 ("most evidence")."""

    name = "jumpcloud"
    title = "JumpCloud"


class Okta(Dialect):
    """Okta: `startIndex=1&count=2` to test credentials, paged lookups, PUT for user updates and group membership,
    path-less replace to deactivate (§9, S25)."""

    name = "okta"
    title = "Okta"

    def connection_probe(self, test_user_name: str) -> Request:
        return Request("GET", "/Users", (("startIndex", "1"), ("count", "2")), event="test_credentials")

    def lookup_user(self, user_name: str) -> Request:
        return Request("GET", "/Users", (("filter", _eq("userName", user_name)), ("startIndex", "1"),
                                         ("count", "100")), event="user_lookup_provision")

    def create_user(self, person: Person, active: bool = True) -> Request:
        body: dict[str, Any] = {
            "schemas": [USER_SCHEMA],
            "userName": person.user_name,
            "name": {"givenName": person.given_name, "familyName": person.family_name},
            "emails": [{"primary": True, "value": person.email, "type": "work"}],
            "displayName": person.display_name,
            "locale": "en-US",
            "groups": [],
            "active": active,
        }
        if person.external_id:
            body["externalId"] = person.external_id
        return Request("POST", "/Users", body=body, event="user_create_provision")

    def update_user(self, user_id: str, person: Person) -> Request:
        created = self.create_user(person).body
        return Request("PUT", f"/Users/{user_id}", body={**created, "id": user_id}, event="user_update_provision")

    def set_active(self, user_id: str, person: Person, active: bool) -> Request:
        return Request("PATCH", f"/Users/{user_id}", body=_patch({"op": "replace", "value": {"active": active}}),
                       event="user_update_provision" if active else "user_deprovision")

    def lookup_group(self, display_name: str) -> Request:
        return Request("GET", "/Groups", (("filter", _eq("displayName", display_name)), ("startIndex", "1"),
                                          ("count", "100")), event="group_lookup")

    def create_group(self, display_name: str, member_ids: list[str]) -> Request:
        return Request("POST", "/Groups", body={"schemas": [GROUP_SCHEMA], "displayName": display_name,
                                                "members": [{"value": member_id} for member_id in member_ids]},
                       event="group_create_provision")

    def _put_group(self, group_id: str, display_name: str, member_ids: list[str]) -> Request:
        return Request("PUT", f"/Groups/{group_id}", body={
            "schemas": [GROUP_SCHEMA], "id": group_id, "displayName": display_name,
            "members": [{"value": member_id} for member_id in member_ids]}, event="group_update_provision")

    def add_members(self, group_id: str, display_name: str, added: list[str], now: list[str]) -> Request:
        return self._put_group(group_id, display_name, now)

    def remove_members(self, group_id: str, display_name: str, removed: list[str], now: list[str]) -> Request:
        return self._put_group(group_id, display_name, now)

    def rename_group(self, group_id: str, new_name: str, member_ids: list[str]) -> Request:
        return Request("PATCH", f"/Groups/{group_id}", body=_patch(
            {"op": "replace", "value": {"id": group_id, "displayName": new_name}}), event="group_update_provision")


class Entra(Dialect):
    """Microsoft Entra ID: the `aadOptscim062020` tenant-URL flag, capitalised ops, booleans as strings,
    externalId lookups, value-array removes (§9, S26, S27)."""

    name = "entra"
    title = "Entra"
    base_url_flags = (("aadOptscim062020", None),)

    def connection_probe(self, test_user_name: str) -> Request:
        # Entra's Test Connection asks for a user that cannot exist (a random GUID as userName).
        return Request("GET", "/Users", (("filter", _eq("userName", test_user_name)),), event="test_credentials")

    def lookup_by_external_id(self, external_id: str) -> Request:
        return Request("GET", "/Users", (("filter", _eq("externalId", external_id)),), event="user_lookup_provision")

    def create_user(self, person: Person, active: bool = True) -> Request:
        return Request("POST", "/Users", body={
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
            "externalId": person.external_id,
            "userName": person.user_name,
            "active": active,
            "displayName": person.display_name,
            "emails": [{"primary": True, "type": "work", "value": person.email}],
            "name": {"formatted": person.display_name, "familyName": person.family_name,
                     "givenName": person.given_name},
            ENTERPRISE_SCHEMA: {"department": "Selftest"},
        }, event="user_create_provision")

    def update_user(self, user_id: str, person: Person) -> Request:
        return Request("PATCH", f"/Users/{user_id}", body=_patch(
            {"op": "Replace", "path": "displayName", "value": person.display_name},
            {"op": "Replace", "path": "name.givenName", "value": person.given_name},
            {"op": "Add", "path": 'emails[type eq "work"].value', "value": person.email},
            {"op": "Replace", "path": f"{ENTERPRISE_SCHEMA}:department", "value": "Selftest"},
        ), event="user_update_provision")

    def set_active(self, user_id: str, person: Person, active: bool) -> Request:
        return Request("PATCH", f"/Users/{user_id}", body=_patch(
            {"op": "Replace", "path": "active", "value": "True" if active else "False"}),
            event="user_update_provision" if active else "user_deprovision")

    def lookup_group(self, display_name: str) -> Request:
        return Request("GET", "/Groups", (("excludedAttributes", "members"),
                                          ("filter", _eq("displayName", display_name))), event="group_lookup")

    def create_group(self, display_name: str, member_ids: list[str]) -> Request:
        return Request("POST", "/Groups", body={"schemas": [GROUP_SCHEMA], "externalId": display_name,
                                                "displayName": display_name, "members": []},
                       event="group_create_provision")

    def add_members(self, group_id: str, display_name: str, added: list[str], now: list[str]) -> Request:
        return Request("PATCH", f"/Groups/{group_id}", body=_patch(
            {"op": "Add", "path": "members", "value": [{"value": member_id} for member_id in added]}),
            event="group_update_provision")

    def remove_members(self, group_id: str, display_name: str, removed: list[str], now: list[str]) -> Request:
        return Request("PATCH", f"/Groups/{group_id}", body=_patch(
            {"op": "Remove", "path": "members", "value": [{"value": member_id} for member_id in removed]}),
            event="group_update_provision")

    def rename_group(self, group_id: str, new_name: str, member_ids: list[str]) -> Request:
        return Request("PATCH", f"/Groups/{group_id}", body=_patch(
            {"op": "Replace", "path": "displayName", "value": new_name}), event="group_update_provision")

    def membership_probe(self, group_id: str, user_id: str) -> Request:
        """Entra's question whether `user_id` is in the group: a list of 1 or 0."""
        return Request("GET", "/Groups", (("excludedAttributes", "members"),
                                          ("filter", f'{_eq("id", group_id)} and members[{_eq("value", user_id)}]')),
                       event="group_lookup")


DIALECTS: dict[str, type[Dialect]] = {dialect.name: dialect for dialect in (JumpCloud, Okta, Entra)}
