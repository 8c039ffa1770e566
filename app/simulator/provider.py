"""An identity provider at work: it sends its dialect's requests and remembers the ids rollcall gave back, as
JumpCloud remembers the SP id of every user and group it provisioned.

Every unexpected answer raises ProviderError with the reply, so a caller can say what the provider saw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from app.simulator.client import LIST_RESPONSE, Reply, Request, ScimClient
from app.simulator.dialects import Dialect, Person


class ProviderError(Exception):
    """An answer the provider would not accept; `reply` is what it got, `expected` what it wanted."""

    def __init__(self, expected: str, reply: Reply) -> None:
        super().__init__(f"expected {expected}; got {reply.summary()}")
        self.expected = expected
        self.reply = reply


@dataclass
class Group:
    id: str
    display_name: str
    member_ids: list[str] = field(default_factory=list)


@dataclass
class Provider:
    """One provider's view of the directory it pushes: user and group ids as rollcall assigned them."""

    dialect: Dialect
    client: ScimClient
    # Told of every resource rollcall creates, before anything else is sent: the selftest's cleanup list.
    on_created: Callable[[str, str, str], None] = lambda kind, resource_id, name: None
    user_ids: dict[str, str] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)

    async def send(self, request: Request, *expected: int) -> Reply:
        reply = await self.client.send(request)
        if reply.status not in expected:
            raise ProviderError(" or ".join(str(status) for status in expected), reply)
        return reply

    async def lookup(self, request: Request) -> list[dict]:
        reply = await self.send(request, 200)
        body = reply.body
        if not isinstance(body, dict) or LIST_RESPONSE not in body.get("schemas", []) \
                or not isinstance(body.get("totalResults"), int):
            raise ProviderError("a SCIM ListResponse with totalResults", reply)
        resources = body.get("Resources", [])
        if not isinstance(resources, list):
            raise ProviderError("a ListResponse whose Resources is a list", reply)
        return resources

    def _created_id(self, reply: Reply, kind: str, name: str) -> str:
        body = reply.body if isinstance(reply.body, dict) else {}
        resource_id = body.get("id")
        if not isinstance(resource_id, str) or not resource_id:
            # JumpCloud fails Test Connection on a non-string id (§2.1).
            raise ProviderError("a created resource with a string id", reply)
        attribute = "userName" if kind == "user" else "displayName"
        given = body.get(attribute)
        if not isinstance(given, str) or given.casefold() != name.casefold():
            # Not the resource it asked for: it is never taken for the provider's own, so never changed or deleted.
            raise ProviderError(f"the created {kind} with {attribute} {name!r}", reply)
        self.on_created(kind, resource_id, name)
        return resource_id

    async def test_connection(self, test_user: Person, test_group: str) -> None:
        """JumpCloud's Test Connection (§2.2): look the test user up, create it and a throwaway group, put the
        user in the group and rename it, then delete both."""
        found = await self.lookup(self.dialect.connection_probe(test_user.user_name))
        if any(item.get("userName", "").lower() == test_user.user_name.lower() for item in found):
            raise ProviderError(f"no user named {test_user.user_name} yet (Test Connection needs a new e-mail)",
                                self.client.exchanges[-1])
        user_id = await self.create_user(test_user)
        reply = await self.send(self.dialect.create_group(test_group, []), 201)
        group_id = self._created_id(reply, "group", test_group)
        await self.send(self.dialect.add_members(group_id, test_group, [user_id], [user_id]), 200, 204)
        await self.send(self.dialect.rename_group(group_id, test_group + "-renamed", [user_id]), 200, 204)
        await self.send(self.dialect.delete_group(group_id), 204)
        await self.send(self.dialect.delete_user(user_id), 204)
        self.user_ids.pop(test_user.user_name, None)

    async def create_user(self, person: Person) -> str:
        reply = await self.send(self.dialect.create_user(person), 201)
        user_id = self._created_id(reply, "user", person.user_name)
        self.user_ids[person.user_name] = user_id
        return user_id

    async def provision(self, person: Person) -> str:
        """The user's id in rollcall: looked up first, created when not found, updated when found (R1-R3)."""
        if person.user_name in self.user_ids:
            return self.user_ids[person.user_name]
        found = _named(await self.lookup(self.dialect.lookup_user(person.user_name)), "userName", person.user_name)
        if found is not None:
            user_id = found
            self.user_ids[person.user_name] = user_id
            await self.send(self.dialect.update_user(user_id, person), 200, 204)
            # Only activated users are pushed (§1): one taken over is made active, whatever rollcall had.
            await self.send(self.dialect.set_active(user_id, person, True), 200, 204)
            return user_id
        return await self.create_user(person)

    async def update(self, person: Person) -> None:
        await self.send(self.dialect.update_user(self.user_ids[person.user_name], person), 200, 204)

    async def add_to_group(self, display_name: str, people: list[Person]) -> None:
        """Members added to a bound group: each provisioned, then the group created (at its first members) or
        updated (R7/R8); a group of that name already in rollcall is taken over (L2)."""
        ids = [await self.provision(person) for person in people]
        group = self.groups.get(display_name)
        if group is None:
            found = _named(await self.lookup(self.dialect.lookup_group(display_name)), "displayName", display_name)
            if found is not None:
                group = self.groups[display_name] = Group(found, display_name)
            else:
                reply = await self.send(self.dialect.create_group(display_name, ids), 201)
                group_id = self._created_id(reply, "group", display_name)
                group = self.groups[display_name] = Group(group_id, display_name)
                inline = [m.get("value") for m in (reply.body or {}).get("members", []) if isinstance(m, dict)]
                group.member_ids = [member_id for member_id in ids if member_id in inline]
        added = [member_id for member_id in ids if member_id not in group.member_ids]
        if added:
            now = [*group.member_ids, *added]
            await self.send(self.dialect.add_members(group.id, display_name, added, now), 200, 204)
            group.member_ids = now

    async def remove_from_group(self, display_name: str, people: list[Person]) -> None:
        group = self.groups[display_name]
        removed = [self.user_ids[person.user_name] for person in people]
        now = [member_id for member_id in group.member_ids if member_id not in removed]
        await self.send(self.dialect.remove_members(group.id, display_name, removed, now), 200, 204)
        group.member_ids = now

    async def rename_group(self, display_name: str, new_name: str) -> None:
        group = self.groups.pop(display_name)
        await self.send(self.dialect.rename_group(group.id, new_name, group.member_ids), 200, 204)
        group.display_name = new_name
        self.groups[new_name] = group

    async def set_active(self, person: Person, active: bool) -> None:
        await self.send(self.dialect.set_active(self.user_ids[person.user_name], person, active), 200, 204)

    async def delete_user(self, person: Person) -> None:
        user_id = self.user_ids.pop(person.user_name)
        await self.send(self.dialect.delete_user(user_id), 204)
        for group in self.groups.values():
            if user_id in group.member_ids:
                group.member_ids.remove(user_id)

    async def delete_group(self, display_name: str) -> None:
        group = self.groups.pop(display_name)
        await self.send(self.dialect.delete_group(group.id), 204)


def _named(resources: list[dict], attribute: str, name: str) -> str | None:
    """The id of the resource that really has this name. Never just the first result: a server that ignores the
    filter (or a proxy that drops the query string) answers with everyone, and the first of them is somebody else,
    whom the selftest would then update and delete."""
    for resource in resources:
        value = resource.get(attribute)
        if isinstance(value, str) and value.casefold() == name.casefold() and isinstance(resource.get("id"), str):
            return resource["id"]
    return None
