"""`rollcall selftest`: each provider's dialect replayed against a deployment, one check at a time.

Safe on a live organization: everything it creates is named `rollcall-selftest-<run>-…` (unique per run, no
role-group name for any prefix, so nobody's role changes), it touches nothing else, and it removes all it
created however it ends. It first proves that the token can delete what it creates, and refuses to go on if not.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from app.simulator.checks import LOCATION_CAUSE, Diagnoser, base_url_warnings, location_problem
from app.simulator.client import GROUP_SCHEMA, PATCH_OP, USER_SCHEMA, Reply, Request, ScimClient, encode_query
from app.simulator.dialects import DIALECTS, Dialect, Entra, Person
from app.simulator.provider import Provider, ProviderError

MARKER = "rollcall-selftest"
ROLE_GROUP_WORDS = ("-administrators", "-members", "-guests")
# A large group update, as a provider sends when many members change at once; a proxy's body limit below this
# breaks real syncs long before it breaks a test connection.
LARGE_BODY_BYTES = 256 * 1024


def could_be_role_group(display_name: str) -> bool:
    """Whether `display_name` starts with `<prefix>-administrators` (or -members, -guests) for some prefix."""
    folded = display_name.casefold()
    return any(word in folded for word in ROLE_GROUP_WORDS)


@dataclass
class Check:
    idp: str
    name: str
    ok: bool
    warning: bool = False
    seen: str = ""
    cause: str = ""


class Refused(Exception):
    """The selftest must not go on (the token cannot clean up after itself)."""


class CheckFailed(Exception):
    def __init__(self, seen: str, cause: str) -> None:
        super().__init__(seen)
        self.seen = seen
        self.cause = cause


@dataclass
class Created:
    kind: str  # "user" or "group"
    id: str
    name: str


@dataclass
class Outcome:
    checks: list[Check] = field(default_factory=list)
    left_behind: list[Created] = field(default_factory=list)
    removed: int = 0
    interrupted: bool = False
    refused: str | None = None

    @property
    def passed(self) -> int:
        return sum(1 for check in self.checks if check.ok and not check.warning)

    @property
    def failed(self) -> int:
        return sum(1 for check in self.checks if not check.ok)

    def as_json(self) -> dict[str, Any]:
        return {"checks": [asdict(check) for check in self.checks], "passed": self.passed, "failed": self.failed,
                "removed": self.removed, "leftBehind": [asdict(item) for item in self.left_behind],
                "interrupted": self.interrupted, "refused": self.refused}


class Selftest:
    def __init__(self, base_url: str, token: str, idps: list[str],
                 report: Callable[[Check], None] = lambda check: None) -> None:
        self.base_url = base_url
        self.token = token
        self.idps = idps
        self.report = report
        self.run_id = secrets.token_hex(4)
        self.prefix = f"{MARKER}-{self.run_id}-"
        self.created: list[Created] = []
        self.outcome = Outcome()

    # -- bookkeeping -----------------------------------------------------------------------------------------

    def name(self, *parts: str) -> str:
        name = self.prefix + "-".join(parts)
        assert not could_be_role_group(name), name
        return name

    def person(self, idp: str, n: int) -> Person:
        return Person(f"{self.name(idp, str(n))}@selftest.invalid", "Selftest", f"{idp.capitalize()} {n}",
                      external_id=self.name(idp, str(n), "ext"))

    def remember(self, kind: str, resource_id: str, name: str) -> None:
        if not name.startswith(self.prefix) and not name.lower().startswith(self.prefix):
            raise AssertionError(f"the selftest created {name!r}, outside its own names")
        self.created.append(Created(kind, resource_id, name))

    def record(self, check: Check) -> None:
        self.outcome.checks.append(check)
        self.report(check)

    async def check(self, idp: str, name: str, diagnoser: Diagnoser, title: str,
                    action: Callable[[], Awaitable[None]]) -> bool:
        try:
            await action()
        except ProviderError as error:
            found = await diagnoser.diagnose(error.reply, title)
            self.record(Check(idp, name, False, seen=f"{found.seen} (expected {error.expected})", cause=found.cause))
            return False
        except CheckFailed as error:
            self.record(Check(idp, name, False, seen=error.seen, cause=error.cause))
            return False
        self.record(Check(idp, name, True))
        return True

    # -- the run ---------------------------------------------------------------------------------------------

    async def run(self) -> Outcome:
        async with ScimClient(self.base_url, self.token) as client:
            try:
                await self._run(client)
            except Refused as error:
                self.outcome.refused = str(error)
            except asyncio.CancelledError:
                self.outcome.interrupted = True
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()  # handled: the cleanup's own timeouts must not take it for a pending cancel
            finally:
                await self.cleanup(client)
        return self.outcome

    async def _run(self, client: ScimClient) -> None:
        for warning in base_url_warnings(self.base_url):
            self.record(Check("setup", warning, True, warning=True))
        diagnoser = Diagnoser(client, self.base_url)
        if not await self._setup(client, diagnoser):
            return
        for idp in self.idps:
            await self._provider(DIALECTS[idp](), diagnoser)

    async def _setup(self, client: ScimClient, diagnoser: Diagnoser) -> bool:
        """Reach rollcall with the token, then prove that the token can remove what it creates."""
        async def reach() -> None:
            reply = await client.send(Request("GET", "/Users", (("count", "1"),)))
            if reply.status != 200 or not reply.is_scim:
                raise ProviderError("200 and a SCIM ListResponse", reply)

        if not await self.check("setup", "rollcall answers at the Base URL with this token", diagnoser,
                                "every provider", reach):
            return False
        probe_user = Person(f"{self.name('probe')}@selftest.invalid", "Selftest", "Probe")
        created: dict[str, Reply] = {}

        async def create() -> None:
            # Created inactive: even under --default-role member it never reaches the roster.
            reply = await client.send(Request("POST", "/Users", body={
                "schemas": [USER_SCHEMA], "userName": probe_user.user_name, "active": False}))
            if reply.status != 201 or not isinstance((reply.body or {}).get("id"), str) \
                    or reply.body.get("userName") != probe_user.user_name:
                raise ProviderError("201 and the created user", reply)
            self.remember("user", reply.body["id"], probe_user.user_name)
            created["user"] = reply

        if not await self.check("setup", "a user can be created (POST /Users)", diagnoser, "every provider", create):
            return False

        async def addresses() -> None:
            problem = location_problem(created["user"], self.base_url)
            if problem is not None:
                raise CheckFailed(f"every provider would be sent locations it cannot use: {problem}", LOCATION_CAUSE)

        await self.check("setup", "rollcall's answers name the Base URL used (Location, meta.location)", diagnoser,
                         "every provider", addresses)
        user_id = created["user"].body["id"]
        reply = await client.send(Request("DELETE", f"/Users/{user_id}"))
        if reply.status != 204:
            found = await diagnoser.diagnose(reply, "the selftest")
            self.record(Check("setup", "the token can delete what it creates (DELETE /Users)", False,
                              seen=found.seen, cause=found.cause))
            raise Refused("stopped before any provider check: this token can create a user but not delete it, so "
                          "the selftest could not remove what it creates on a live organization. Use a token that "
                          "may delete, and run it again")
        self.record(Check("setup", "the token can delete what it creates (DELETE /Users)", True))
        group_name = self.name("probe", "group")

        async def create_group() -> None:
            reply = await client.send(Request("POST", "/Groups", body={"schemas": [GROUP_SCHEMA],
                                                                       "displayName": group_name}))
            if reply.status != 201 or not isinstance((reply.body or {}).get("id"), str) \
                    or reply.body.get("displayName") != group_name:
                raise ProviderError("201 and the created group", reply)
            self.remember("group", reply.body["id"], group_name)
            created["group"] = reply

        if not await self.check("setup", "a group with no role can be created (POST /Groups)", diagnoser,
                                "every provider", create_group):
            return False
        group_id = created["group"].body["id"]

        async def large() -> None:
            # Removing ids that are no members changes nothing, whatever the size.
            one = len(json.dumps({"value": f"{MARKER}-absent-{0:012d}"})) + 2  # with its ", "
            ghosts = [{"value": f"{MARKER}-absent-{n:012d}"} for n in range(LARGE_BODY_BYTES // one)]
            body = {"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": "members", "value": ghosts}]}
            reply = await client.send(Request("PATCH", f"/Groups/{group_id}", body=body))
            if reply.status not in (200, 204):
                raise ProviderError(f"200 to a {len(json.dumps(body)) // 1024} KiB group update", reply)

        await self.check("setup", f"a large group update ({LARGE_BODY_BYTES // 1024} KiB) gets through", diagnoser,
                         "a provider syncing a big group", large)
        reply = await client.send(Request("DELETE", f"/Groups/{group_id}"))
        deleted = Check("setup", "the token can delete what it creates (DELETE /Groups)", reply.status == 204)
        if not deleted.ok:
            found = await diagnoser.diagnose(reply, "the selftest")
            deleted.seen, deleted.cause = found.seen, found.cause
        self.record(deleted)
        if not deleted.ok:
            raise Refused("stopped before any provider check: this token can create a group but not delete it, so "
                          "the selftest could not remove what it creates on a live organization. Use a token that "
                          "may delete, and run it again")
        return True

    async def _provider(self, dialect: Dialect, diagnoser: Diagnoser) -> None:
        base = self.base_url
        if dialect.base_url_flags:
            base += ("&" if "?" in base else "?") + encode_query(dialect.base_url_flags)
        async with ScimClient(base, self.token) as client:
            provider = Provider(dialect, client, on_created=self.remember)
            for name, action in self._script(dialect, provider, client):
                if not await self.check(dialect.name, name, diagnoser, dialect.title, action):
                    return  # the later steps build on this one

    def _script(self, dialect: Dialect, provider: Provider, client: ScimClient
                ) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        idp = dialect.name
        first, second = self.person(idp, 1), self.person(idp, 2)
        group = self.name(idp, "group")
        renamed = self.name(idp, "group", "renamed")

        async def test_connection() -> None:
            if isinstance(dialect, Entra) or idp == "okta":
                await provider.lookup(dialect.connection_probe(self.name(idp, str(uuid.uuid4()))))
            else:
                await provider.test_connection(self.person(idp, 0), self.name(idp, "test", "group"))

        async def provision() -> None:
            await provider.provision(first)
            await provider.provision(second)

        async def lookup() -> None:
            found = await provider.lookup(dialect.lookup_user(first.user_name))
            if [item.get("id") for item in found] != [provider.user_ids[first.user_name]]:
                raise CheckFailed(f"{dialect.title} would have seen {len(found)} users for userName eq "
                                  f"{first.user_name!r}, not exactly the one it created",
                                  "the userName filter does not match exactly (does a proxy drop the query string?)")
            if isinstance(dialect, Entra):
                found = await provider.lookup(dialect.lookup_by_external_id(first.external_id))
                if [item.get("id") for item in found] != [provider.user_ids[first.user_name]]:
                    raise CheckFailed(f"Entra would have seen {len(found)} users for externalId eq "
                                      f"{first.external_id!r}", "the externalId filter does not match exactly")

        async def update() -> None:
            await provider.update(first)

        async def group_create() -> None:
            await provider.add_to_group(group, [first])

        async def group_add() -> None:
            await provider.add_to_group(group, [second])
            await self._members_are(client, dialect, provider.groups[group].id, provider.user_ids, [first, second])

        async def group_remove() -> None:
            await provider.remove_from_group(group, [second])
            await self._members_are(client, dialect, provider.groups[group].id, provider.user_ids, [first])
            if isinstance(dialect, Entra):  # Entra asks whether each is a member before and after it changes one
                for person, expected in ((first, 1), (second, 0)):
                    probe = dialect.membership_probe(provider.groups[group].id, provider.user_ids[person.user_name])
                    found = await provider.lookup(probe)
                    if len(found) != expected:
                        raise CheckFailed(f"Entra would have been told {person.user_name} is "
                                          f"{'not ' if not found else ''}a member",
                                          "the id eq ... and members[value eq ...] filter does not match exactly")

        async def rename() -> None:
            await provider.rename_group(group, renamed)

        async def deactivate() -> None:
            await provider.set_active(first, False)
            await self._active_is(client, dialect, provider.user_ids[first.user_name], False)
            await provider.set_active(first, True)
            await self._active_is(client, dialect, provider.user_ids[first.user_name], True)

        async def delete_group() -> None:
            await provider.delete_group(renamed)

        async def delete_users() -> None:
            for person in (first, second):
                user_id = provider.user_ids[person.user_name]
                await provider.delete_user(person)
                await provider.send(dialect.get_user(user_id), 404)

        return [
            (f"{dialect.title} Test Connection", test_connection),
            ("users are provisioned (lookup, then POST /Users)", provision),
            ("a user is found by its userName" + (" and externalId" if isinstance(dialect, Entra) else ""), lookup),
            ("a user's attributes are updated (" + ("PUT" if idp == "okta" else "PATCH") + ")", update),
            ("a group is created with its first member", group_create),
            ("a member is added (" + ("PUT" if idp == "okta" else "PATCH add") + ")", group_add),
            ("a member is removed, and only that one", group_remove),
            ("a group is renamed", rename),
            ("a user is deactivated and reactivated", deactivate),
            ("a group is deleted", delete_group),
            ("users are deleted", delete_users),
        ]

    async def _members_are(self, client: ScimClient, dialect: Dialect, group_id: str, ids: dict[str, str],
                           people: list[Person]) -> None:
        reply = await client.send(Request("GET", f"/Groups/{group_id}"))
        # str(): a member without a value stays in the count (as "None"), so that it still differs from `want`.
        have = sorted(str(m.get("value")) for m in (reply.body or {}).get("members", []) if isinstance(m, dict))
        want = sorted(ids[person.user_name] for person in people)
        if reply.status != 200 or have != want:
            raise CheckFailed(f"{dialect.title} would have left the group with members {have}, not {want} "
                              f"({reply.summary()})", "rollcall did not apply the membership change as sent")

    async def _active_is(self, client: ScimClient, dialect: Dialect, user_id: str, active: bool) -> None:
        reply = await client.send(Request("GET", f"/Users/{user_id}"))
        if reply.status != 200 or (reply.body or {}).get("active") is not active:
            raise CheckFailed(f"{dialect.title} would have left the user with active="
                              f"{(reply.body or {}).get('active')!r}, not {active}",
                              "rollcall did not apply the deactivation as sent")

    # -- cleanup ---------------------------------------------------------------------------------------------

    async def cleanup(self, client: ScimClient) -> None:
        """Remove everything this run created: what it knows of, then anything else with this run's names (a
        create whose answer was lost to an interruption). Nothing without this run's prefix is ever touched."""
        known = sorted(reversed(self.created), key=lambda item: item.kind != "group")  # groups first
        left = {item.id: item for item in known if not await self._remove(client, item)}
        for kind, attribute in (("group", "displayName"), ("user", "userName")):
            endpoint = "/Groups" if kind == "group" else "/Users"
            reply = await client.send(Request("GET", endpoint, (("filter", f'{attribute} sw "{self.prefix}"'),
                                                                ("count", "1000"))))
            for resource in (reply.body or {}).get("Resources", []) if reply.status == 200 else []:
                name = resource.get(attribute, "")
                if not isinstance(name, str) or not name.lower().startswith(self.prefix):
                    continue  # only this run's own names are ever removed
                item = Created(kind, resource["id"], name)
                self.created.append(item)
                if await self._remove(client, item):
                    left.pop(item.id, None)
                else:
                    left[item.id] = item
        self.outcome.removed = len({item.id for item in self.created}) - len(left)
        self.outcome.left_behind = list(left.values())
        if left:
            listed = ", ".join(f"{item.kind} {item.name} ({item.id})" for item in left.values())
            self.record(Check("cleanup", "everything the selftest created is removed", False, seen=f"left: {listed}",
                              cause="the token may not delete them (users were deactivated, so they are on nobody's "
                                    "roster): remove them by hand"))
        else:
            self.record(Check("cleanup", f"removed all {self.outcome.removed} resources it created; touched nothing "
                                         "else", True))

    async def _remove(self, client: ScimClient, item: Created) -> bool:
        """Whether `item` is gone now (deleted here, or before)."""
        endpoint = "/Groups" if item.kind == "group" else "/Users"
        reply = await client.send(Request("DELETE", f"{endpoint}/{item.id}"))
        if reply.status in (204, 404):
            return True
        if item.kind == "user":
            # It cannot be deleted: at least keep it off the roster.
            await client.send(Request("PATCH", f"/Users/{item.id}", body={
                "schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": False}]}))
        return False
