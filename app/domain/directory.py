"""The directory of Users and Groups: what each SCIM operation does, in one transaction each.

Views hand in parsed requests; this module validates through the protocol layer, runs the storage
calls inside one Database transaction, and hands back rendered SCIM resources.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import aiosqlite

from app.domain.clock import utc_now
from app.protocol import errors
from app.protocol.filters import Filter
from app.protocol.patch import MemberChange, apply_patch, parse_patch_request
from app.protocol.resources import dump_resource, list_response, load_resource, project, wants_attribute
from app.protocol.schema_defs import GROUP_RESOURCE, RESOURCE_TYPES, USER_RESOURCE, ResourceType
from app.storage import resources as store
from app.storage.database import Database
from app.storage.filter_sql import compile_filter, compile_member_filter, compile_sort


@dataclass(frozen=True)
class ListQuery:
    """A list or search request (RFC 7644 §3.4.2, §3.4.3), already parsed."""

    filter: Filter | None = None
    start_index: int = 1
    count: int = 100
    sort_by: str | None = None
    descending: bool = False
    attributes: list[str] | None = None
    excluded: list[str] | None = None


@dataclass(frozen=True)
class Rendered:
    """A resource as the client sees it, with the ETag that goes in the header."""

    body: dict[str, Any]
    etag: str
    location: str


def etag_of(version: int) -> str:
    return f'W/"{version}"'


def new_id() -> str:
    # 128 random bits, URL-safe: ids are strings (JumpCloud rejects numbers) and unguessable.
    return secrets.token_hex(16)


class Directory:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reads -------------------------------------------------------------------------------------
    async def get(self, resource_type: ResourceType, resource_id: str, base_url: str,
                  attributes: list[str] | None = None, excluded: list[str] | None = None) -> Rendered:
        async with self.db.read() as conn:
            current = await store.get(conn, resource_type, resource_id)
            if current is None:
                raise _not_found(resource_type, resource_id)
            extras = await self._extras(conn, resource_type, [current.id], base_url, attributes, excluded)
        return self._render(resource_type, current, base_url, extras[current.id], attributes, excluded)

    async def search(self, resource_type: ResourceType, query: ListQuery, base_url: str) -> dict[str, Any]:
        return await self._search([resource_type], query, base_url)

    async def search_all(self, query: ListQuery, base_url: str) -> dict[str, Any]:
        """POST /.search at the root (RFC 7644 §3.4.3): Users, then Groups, as one list."""
        return await self._search(list(RESOURCE_TYPES), query, base_url)

    async def _search(self, resource_types: list[ResourceType], query: ListQuery, base_url: str) -> dict[str, Any]:
        plans = []
        rejected: list[errors.ScimError] = []
        for resource_type in resource_types:
            try:
                where, params = compile_filter(resource_type, query.filter) if query.filter else ("1", [])
                order_by = compile_sort(resource_type, query.sort_by) if query.sort_by else None
            except errors.ScimError as error:
                # Across types, a filter on an attribute one type lacks simply matches none of that type.
                if len(resource_types) == 1:
                    raise
                rejected.append(error)
                continue
            plans.append((resource_type, where, params, order_by))
        if not plans:
            raise rejected[0]
        total, offset, room = 0, query.start_index - 1, query.count
        resources: list[dict[str, Any]] = []
        async with self.db.read() as conn:
            for resource_type, where, params, order_by in plans:
                matched, found = await store.search(conn, resource_type, where, params, order_by, query.descending,
                                                    room, offset)
                total += matched
                offset = max(0, offset - matched)
                room -= len(found)
                extras = await self._extras(conn, resource_type, [r.id for r in found], base_url,
                                            query.attributes, query.excluded)
                resources.extend(
                    self._render(resource_type, r, base_url, extras[r.id], query.attributes, query.excluded).body
                    for r in found
                )
        return list_response(resources, total, query.start_index)

    # -- writes ------------------------------------------------------------------------------------
    async def create(self, resource_type: ResourceType, body: Any, base_url: str,
                     attributes: list[str] | None = None, excluded: list[str] | None = None) -> Rendered:
        document = load_resource(resource_type, body)
        members = _member_ids(document.pop("members", None))
        now = utc_now()
        async with self.db.write() as conn:
            try:
                created = await store.insert(conn, resource_type, new_id(), document, now)
            except store.UniquenessConflict:
                raise _conflict(resource_type, document) from None
            if members:
                await _add_members(conn, created.id, members, now)
            extras = await self._extras(conn, resource_type, [created.id], base_url, attributes, excluded)
        return self._render(resource_type, created, base_url, extras[created.id], attributes, excluded)

    async def replace(self, resource_type: ResourceType, resource_id: str, body: Any, base_url: str,
                      if_match: str | None = None, attributes: list[str] | None = None,
                      excluded: list[str] | None = None) -> Rendered:
        document = load_resource(resource_type, body)
        # A PUT without `members` leaves the membership alone: a rename must never empty a role group.
        members = document.pop("members", None)
        now = utc_now()
        async with self.db.write() as conn:
            current = await self._current(conn, resource_type, resource_id, if_match)
            try:
                updated = await store.update(conn, resource_type, current, document, now)
            except store.UniquenessConflict:
                raise _conflict(resource_type, document) from None
            if members is not None:
                await _apply_member_changes(conn, resource_id, [MemberChange("replace", _member_ids(members))], now)
            extras = await self._extras(conn, resource_type, [resource_id], base_url, attributes, excluded)
        return self._render(resource_type, updated, base_url, extras[resource_id], attributes, excluded)

    async def patch(self, resource_type: ResourceType, resource_id: str, body: Any, base_url: str,
                    if_match: str | None = None, attributes: list[str] | None = None,
                    excluded: list[str] | None = None) -> Rendered:
        operations = parse_patch_request(body)
        now = utc_now()
        async with self.db.write() as conn:
            current = await self._current(conn, resource_type, resource_id, if_match)
            result = apply_patch(resource_type, current.document, operations)
            document = load_resource(resource_type, result.document)
            document.pop("members", None)
            updated = current
            membership_changed = await _apply_member_changes(conn, resource_id, result.member_changes, now)
            if document != current.document:
                try:
                    updated = await store.update(conn, resource_type, current, document, now)
                except store.UniquenessConflict:
                    raise _conflict(resource_type, document) from None
            elif membership_changed:
                updated = await store.touch(conn, resource_type, current, now)
            extras = await self._extras(conn, resource_type, [resource_id], base_url, attributes, excluded)
        return self._render(resource_type, updated, base_url, extras[resource_id], attributes, excluded)

    async def delete(self, resource_type: ResourceType, resource_id: str, if_match: str | None = None) -> None:
        now = utc_now()
        async with self.db.write() as conn:
            await self._current(conn, resource_type, resource_id, if_match)
            if resource_type is USER_RESOURCE:
                # The groups lose a member, so their version and lastModified move too.
                await store.touch_groups(conn, await store.group_ids_of_user(conn, resource_id), now)
            await store.delete(conn, resource_type, resource_id)

    # -- helpers -----------------------------------------------------------------------------------
    async def _current(self, conn: aiosqlite.Connection, resource_type: ResourceType, resource_id: str,
                       if_match: str | None) -> store.StoredResource:
        current = await store.get(conn, resource_type, resource_id)
        if current is None:
            raise _not_found(resource_type, resource_id)
        if if_match is not None and not etag_matches(if_match, etag_of(current.version)):
            raise errors.precondition_failed(
                f"The {resource_type.name} has changed: its ETag is now {etag_of(current.version)}, "
                f"not {if_match}. Read it again and retry."
            )
        return current

    async def _extras(self, conn: aiosqlite.Connection, resource_type: ResourceType, ids: list[str],
                      base_url: str, attributes: list[str] | None, excluded: list[str] | None
                      ) -> dict[str, dict[str, Any]]:
        """The multi-valued attributes that live outside the document: User.groups, Group.members."""
        if resource_type is USER_RESOURCE:
            if not wants_attribute(resource_type, attributes, excluded, "groups"):
                return {i: {} for i in ids}
            groups = await store.groups_of(conn, ids)
            return {
                i: {"groups": [
                    {"value": g.group_id, "$ref": f"{base_url}/Groups/{g.group_id}", "display": g.display,
                     "type": "direct"}
                    for g in groups[i]
                ]} if groups[i] else {}
                for i in ids
            }
        if not wants_attribute(resource_type, attributes, excluded, "members"):
            return {i: {} for i in ids}
        members = await store.members_of(conn, ids)
        return {
            i: {"members": [
                {"value": member_id, "$ref": f"{base_url}/Users/{member_id}", "type": "User"}
                for member_id in members[i]
            ]} if members[i] else {}
            for i in ids
        }

    def _render(self, resource_type: ResourceType, stored: store.StoredResource, base_url: str,
                extra: dict[str, Any], attributes: list[str] | None, excluded: list[str] | None) -> Rendered:
        location = f"{base_url}{resource_type.endpoint}/{stored.id}"
        etag = etag_of(stored.version)
        meta = {"resourceType": resource_type.name, "created": stored.created,
                "lastModified": stored.last_modified, "location": location, "version": etag}
        body = dump_resource(resource_type, stored.document, id=stored.id, meta=meta, extra=extra)
        if attributes or excluded:
            body = project(body, resource_type, attributes, excluded)
        return Rendered(body, etag, location)


def etag_matches(header: str, etag: str) -> bool:
    """If-Match: `*` or a list of entity tags; weak and strong forms of our version compare equal."""
    wanted = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def _member_ids(members: list[dict[str, Any]] | None) -> tuple[str, ...]:
    if not members:
        return ()
    return tuple(dict.fromkeys(member["value"] for member in members))


async def _add_members(conn: aiosqlite.Connection, group_id: str, user_ids: tuple[str, ...], now: str) -> bool:
    missing = await store.missing_users(conn, user_ids)
    if missing:
        raise errors.invalid_value(
            f"No User has the id {', '.join(repr(m) for m in missing[:10])}"
            f"{' (and more)' if len(missing) > 10 else ''}: members must be the ids of existing Users."
        )
    return bool(await store.add_members(conn, group_id, user_ids, now))


async def _apply_member_changes(conn: aiosqlite.Connection, group_id: str, changes: list[MemberChange],
                                now: str) -> bool:
    changed = False
    for change in changes:
        if change.kind == "add":
            changed |= await _add_members(conn, group_id, change.ids, now)
        elif change.kind == "remove":
            changed |= bool(await store.remove_members(conn, group_id, change.ids))
        elif change.kind == "remove_where":
            assert change.filter is not None
            where, params = compile_member_filter(change.filter)
            doomed = await store.member_ids_where(conn, group_id, where, params)
            changed |= bool(await store.remove_members(conn, group_id, doomed))
        elif change.kind == "replace":
            wanted = set(change.ids)
            present = await store.all_member_ids(conn, group_id)
            changed |= bool(await store.remove_members(conn, group_id, [i for i in present if i not in wanted]))
            present_set = set(present)
            changed |= await _add_members(conn, group_id, tuple(i for i in change.ids if i not in present_set), now)
    return changed


def _not_found(resource_type: ResourceType, resource_id: str) -> errors.ScimError:
    return errors.not_found(f"No {resource_type.name} has the id {resource_id!r}.")


def _conflict(resource_type: ResourceType, document: dict[str, Any]) -> errors.ScimError:
    if resource_type is GROUP_RESOURCE:
        return errors.uniqueness(f"A Group named {document['displayName']!r} already exists (names are compared "
                                 "without regard to case); look it up with filter=displayName eq \"...\".")
    return errors.uniqueness(f"A User with userName {document['userName']!r} already exists (userNames are "
                             "compared without regard to case); look it up with filter=userName eq \"...\".")
