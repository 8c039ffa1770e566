"""The directory of Users and Groups: what each SCIM operation does, in one transaction each.

Views hand in parsed requests; this module validates through the protocol layer, runs the storage
calls inside one storage transaction (app/storage/interface.py), and hands back rendered SCIM resources.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import orjson

from app.domain import paging, roster
from app.domain.clock import utc_now
from app.domain.holds import NO_HOLDS, HoldPolicy
from app.domain.limits import Limits
from app.domain.member_cache import MemberCache, MembersKey
from app.domain.roles import RoleRules
from app.protocol import cursors, errors
from app.protocol.attribute_lists import has_value_filters
from app.protocol.filter_resolution import resolve_member_filter, resolve_search
from app.protocol.filters import Filter
from app.protocol.group_list import UserGroups, user_group
from app.protocol.member_list import member, members_json
from app.protocol.members import member_ids
from app.protocol.patch_engine import MemberChange, apply_patch, membership_changes_only
from app.protocol.patch_message import PatchOperation, parse_patch_request
from app.protocol.projection import ProjectionWork, names_sub_attribute, project, wants_attribute
from app.protocol.representation import PageFramer, dump_resource, list_response
from app.protocol.resolved import SearchQuery
from app.protocol.resource_loading import load_patched, load_resource
from app.protocol.schema_defs import GROUP_RESOURCE, RESOURCE_TYPES, USER_RESOURCE, ResourceType
from app.storage.errors import DocumentTooLarge, UniquenessConflict
from app.storage.interface import Storage, Transaction
from app.storage.records import Event, Membership, StoredResource


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
    # RFC 9865: None pages by startIndex; "" asks for the first page by cursor, anything else is a nextCursor
    # or previousCursor handed out before.
    cursor: str | None = None


@dataclass(frozen=True)
class Context:
    """Who is asking and how they want answers shaped: the same for every operation of a request."""

    base_url: str
    actor: str = roster.SYSTEM_ACTOR
    attributes: list[str] | None = None
    excluded: list[str] | None = None
    # What value filters in attributes/excludedAttributes may still cost this request's answer (one budget
    # for all the resources of a list page).
    projection: ProjectionWork = field(default_factory=ProjectionWork, compare=False)


@dataclass
class _Changes:
    """What one write did, for the change feed and for the roster to settle afterwards."""

    events: list[Event] = field(default_factory=list)
    touched_users: list[str] = field(default_factory=list)
    reason: str = roster.LEFT_ROLE_GROUPS
    # A group renamed into or out of a role-group name: all its members need their role settled.
    regranting_group: str | None = None
    # Member ids that named no User, skipped rather than stored (see _add_members), by group.
    skipped: dict[str, list[str]] = field(default_factory=dict)

    def described(self) -> dict[str, Any]:
        """What a hold says this write was: its user.* or group.* event, else the members it removed."""
        for event in self.events:
            if not event.type.startswith("group.member"):
                return {"type": event.type, **(event.data or {})}
        removed = [e for e in self.events if e.type == "group.member_removed"]
        if removed:
            return {"type": "group.member_removed", "groupId": removed[0].group_id, "count": len(removed)}
        return {"type": self.events[0].type if self.events else "unknown"}

    def membership(self, kind: str, group_id: str, user_ids: list[str], settles: bool = True) -> None:
        """Record member events; `settles`: whether the members' roles may change (the group is a role group)."""
        self.events.extend(Event(kind, user_id, group_id, {"groupId": group_id, "userId": user_id})
                           for user_id in user_ids)
        if settles:
            self.touched_users.extend(user_ids)


@dataclass(frozen=True)
class Rendered:
    """A resource as the client sees it, with the ETag that goes in the header."""

    body: dict[str, Any]
    etag: str
    location: str
    # Top-level values of `body` that are orjson.Fragments, by key, as the bytes they hold (the web layer sends
    # them as they are: app/web/spliced.py).
    spliced: dict[str, bytes] = field(default_factory=dict)


def etag_of(version: int) -> str:
    return f'W/"{version}"'


# A group.members_skipped event names at most this many of the ids it skipped (and counts them all), so that a
# push of thousands of stale ids does not write an event of a megabyte.
MAX_SKIPPED_LISTED = 100
# The warning about skipped ids quotes each of them up to this many characters (ids rollcall makes have 32).
LOGGED_ID_CHARS = 64

# Answers to writes on a group list its members only up to this many, the default page size
# (see Directory._written_extras).
MAX_ECHOED_MEMBERS = 100

# Request bodies larger than this are validated on a worker thread, smaller ones on the event loop.
# marshmallow costs ~20 µs per value it checks (bench: a 2 KB User with 50 emails takes 1.1 ms, a 12 KB one
# 7 ms, 10,000 emails 180 ms) while a thread hop costs ~130 µs: below 4 KiB the loop loses at most a few
# milliseconds, and the IdPs' users (under 2 KB) never pay for a hop.
OFF_LOOP_BODY_BYTES = 4 * 1024
# A User body this many times --max-resource-bytes is refused before it is validated. Validation drops only
# schemas, id, meta, groups and unknown attributes, which identity providers send little of; a body four times
# the limit is refused rather than validated for a document that could not be stored anyway.
EARLY_REFUSAL_FACTOR = 4
# One thread validates every large body (and renders the answers heavy to project): validation is pure
# Python, so more threads would not validate faster (they share the GIL) but would each compete with the
# event loop for it. With one, the loop gets the GIL back at every switch interval and keeps answering
# (tests/reliability/test_event_loop.py: /healthz took 527 ms under 8 clients posting 60 KB bodies with
# asyncio's default pool of threads).
_VALIDATOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollcall-validate")
# How many times a PATCH is applied before its write to the resource as read, when another write keeps landing in
# between (each attempt re-reads it); the last resort applies it inside the write transaction (see Directory.patch).
PATCH_ATTEMPTS = 4
# A list page fetches User.groups for this many users at a time and Group.members for one group at a time,
# so that the extras held while a page is built stay near one resource's worth, not a page's.
_EXTRAS_BATCH = {"User": 100, "Group": 1}
# GET /Groups/{id}: a group of more members than this whose rendered members are not cached is read on a reader
# thread, so that one large group does not hold up the event loop (1,000 members render in about a millisecond).
LOOP_MEMBERS = 1000
# ... and the rendered members of a group of more than this many are cached (member_cache.py), up to
# MEMBER_CACHE_BYTES in all: 16 MiB holds a 100,000-member group (~140 bytes a member) or many smaller ones.
CACHED_MEMBERS = 100
MEMBER_CACHE_BYTES = 16 * 1024 * 1024

T = TypeVar("T")
log = logging.getLogger("rollcall.directory")
# A transaction: a body for Storage.write.
Write = Callable[[Transaction], T]
# What a write of a User or Group stores and its extras (User.groups, Group.members), for `render`.
Written = tuple[StoredResource, dict[str, Any]]


def new_id() -> str:
    # 128 random bits, URL-safe: ids are strings (JumpCloud rejects numbers) and unguessable.
    return secrets.token_hex(16)


class Directory:
    def __init__(self, db: Storage, rules: RoleRules, limits: Limits | None = None,
                 holds: HoldPolicy = NO_HOLDS, *, point_searches: bool = True) -> None:
        self.db = db
        # False: every search takes the general path (count, page), which tests compare the point path with.
        self.point_searches = point_searches
        self.rules = rules
        self.limits = limits or Limits()
        self._hints = paging.PageHints(db)
        self._cursor_key: bytes | None = None
        self.holds = holds
        self.member_cache = MemberCache(MEMBER_CACHE_BYTES)

    # -- reads -------------------------------------------------------------------------------------
    async def get(self, resource_type: ResourceType, resource_id: str, ctx: Context) -> Rendered:
        if resource_type is GROUP_RESOURCE and not (ctx.attributes or ctx.excluded):
            return await self._get_group(resource_id, ctx)
        if resource_type is GROUP_RESOURCE and _excludes_only_members(ctx):
            # What the projection would make of a Group without members is the Group: no projection to run.
            return await self.db.lookup(lambda tx: self.render(
                GROUP_RESOURCE, (self._group(tx, resource_id), {}), replace(ctx, excluded=None)))

        def read(tx: Transaction) -> tuple[StoredResource, dict[str, Any]]:
            current = tx.resources.get(resource_type, resource_id)
            if current is None:
                raise _not_found(resource_type, resource_id)
            return current, self._extras(tx, resource_type, [current.id], ctx)[current.id]

        if _projects_heavily(ctx):
            return await self.db.read(lambda tx: self.render(resource_type, read(tx), ctx))
        return self.render(resource_type, await self.db.lookup(read), ctx)

    async def _get_group(self, group_id: str, ctx: Context) -> Rendered:
        """A Group in its default representation, its members spliced in as JSON text: from the cache when the
        group's version has not moved since they were rendered, on the event loop when the group is small, and
        else on a reader thread."""
        def on_loop(tx: Transaction) -> tuple[StoredResource, bytes | None]:
            current = self._group(tx, group_id)
            members = self.member_cache.get(_members_key(current, ctx))
            if members is None and not tx.members.has_more_than(group_id, LOOP_MEMBERS):
                members = self._group_members(tx, current, ctx)
            return current, members

        def on_thread(tx: Transaction) -> tuple[StoredResource, bytes | None]:
            current = self._group(tx, group_id)  # again: the version of this snapshot's members
            return current, self.member_cache.get(_members_key(current, ctx)) or self._group_members(tx, current, ctx)

        current, members = await self.db.lookup(on_loop)
        if members is None:
            current, members = await self.db.read(on_thread)
        if not members:
            return self.render(GROUP_RESOURCE, (current, {}), ctx)
        rendered = self.render(GROUP_RESOURCE, (current, {"members": orjson.Fragment(members)}), ctx)
        return replace(rendered, spliced={"members": members})

    def _group(self, tx: Transaction, group_id: str) -> StoredResource:
        current = tx.resources.get(GROUP_RESOURCE, group_id)
        if current is None:
            raise _not_found(GROUP_RESOURCE, group_id)
        return current

    def _group_members(self, tx: Transaction, current: StoredResource, ctx: Context) -> bytes:
        """The group's members as a JSON array (b"" when it has none), cached when the group is large."""
        ids = tx.members.member_ids(current.id)
        if not ids:
            return b""
        rendered = members_json(ids, ctx.base_url)
        if len(ids) > CACHED_MEMBERS:
            self.member_cache.put(_members_key(current, ctx), rendered)
        return rendered

    async def search(self, resource_type: ResourceType, query: ListQuery, base_url: str) -> dict[str, Any]:
        return await self._search([resource_type], query, base_url)

    async def search_all(self, query: ListQuery, base_url: str) -> dict[str, Any]:
        """POST /.search at the root (RFC 7644 §3.4.3): Users, then Groups, as one list."""
        return await self._search(list(RESOURCE_TYPES), query, base_url)

    async def _search(self, resource_types: list[ResourceType], query: ListQuery, base_url: str) -> dict[str, Any]:
        def compiled(resource_type: ResourceType, absent_unknown: bool) -> SearchQuery:
            return resolve_search(resource_type, query.filter, query.sort_by, query.descending, absent_unknown)

        compiled_for: dict[str, SearchQuery | None] = {}
        rejected: list[errors.ScimError] = []
        for resource_type in resource_types:
            try:
                compiled_for[resource_type.name] = compiled(resource_type, absent_unknown=False)
            except errors.ScimError as error:
                if len(resource_types) == 1:
                    raise
                rejected.append(error)
                compiled_for[resource_type.name] = None
        if len(rejected) == len(resource_types):
            raise rejected[0]  # names something no type has (or is wrong for every type)
        searches = []
        for resource_type in resource_types:
            search = compiled_for[resource_type.name]
            if search is None:
                # Across types, an attribute one type lacks is absent from its resources (a Group has no
                # userName: `not (userName pr)` lists every Group); a type the filter is wrong for matches none.
                try:
                    search = compiled(resource_type, absent_unknown=True)
                except errors.ScimError:
                    continue
            searches.append(search)
        ctx = Context(base_url, attributes=query.attributes, excluded=query.excluded)
        point = self._point_search(searches, query, ctx)
        if point is not None:
            answer = await self.db.lookup(lambda tx: self._point_answer(tx, point, ctx))
            if answer is not None:
                return answer
        budget = self.limits.max_page_bytes
        shape, key, position = "", b"", None
        if query.cursor is not None:
            if self._cursor_key is None:
                self._cursor_key = await self.db.write(paging.cursor_key)
            shape, key = paging.shape_of(searches), self._cursor_key
            position = cursors.decode(query.cursor, shape, key, int(time.time())) if query.cursor else None

        def render(tx: Transaction, search: SearchQuery, found: list[StoredResource],
                   page: list[orjson.Fragment], used: int) -> tuple[int, int]:
            return self._render_page(tx, search.resource_type, found, ctx, page, used, budget)

        def read(tx: Transaction) -> paging.Page:
            # Before the first statement, so that the generation is no newer than the snapshot (paging.PageHints).
            generation = self._hints.generation()
            if query.cursor is not None:
                return paging.cursor_page(tx, self._hints, generation, searches, position, query.count, budget,
                                          render)
            return paging.index_page(tx, self._hints, generation, searches, query.start_index, query.count,
                                     budget, render)

        # The engine decides where a search runs (SQLite: a point read such as the identity provider's `userName eq`
        # lookup on the event loop, anything that may walk a table on a reader thread); a heavy projection is CPU
        # work of ours, which never runs on the loop.
        page = await self.db.read(read) if _projects_heavily(ctx) else await self.db.search(read, searches)
        if query.cursor is None:
            return list_response(page.resources, page.total, query.start_index)
        issued = int(time.time())

        def cursor(at: cursors.Position | None) -> str | None:
            return None if at is None else cursors.encode(at, shape, key, issued)

        return list_response(page.resources, page.total, None, next_cursor=cursor(page.next_position),
                             previous_cursor=cursor(page.previous_position))

    def _point_search(self, searches: list[SearchQuery], query: ListQuery, ctx: Context) -> SearchQuery | None:
        """The search when it may be answered as a point search (`userName eq "..."`, `externalId eq`, `id eq`, an
        identity provider's every lookup): one type, one equality (SearchQuery.equality), the first page by
        startIndex with room for a resource, and no sort (nothing to order) or heavy projection (which renders off
        the loop). Anything else takes the general path of count and page (see _point_answer)."""
        if not self.point_searches or len(searches) != 1 or query.cursor is not None or query.sort_by is not None \
                or query.start_index != 1 or query.count < 1 or _projects_heavily(ctx):
            return None
        return searches[0] if searches[0].equality() is not None else None

    def _point_answer(self, tx: Transaction, search: SearchQuery, ctx: Context) -> dict[str, Any] | None:
        """The ListResponse of a point search from one index seek, exactly as the general path makes it
        (totalResults, startIndex 1, itemsPerPage, Resources): when the engine finds at most one match; None, for
        the general path, when the engine cannot seek (Resources.find) or more than one resource matches."""
        found = tx.resources.find(search, 2)
        if found is None or len(found) > 1:
            return None
        resource_type = search.resource_type
        extras = self._extras(tx, resource_type, [r.id for r in found], ctx)
        resources = [self.render(resource_type, (stored, extras[stored.id]), ctx).body for stored in found]
        return list_response(resources, len(resources), 1)

    def _render_page(self, tx: Transaction, resource_type: ResourceType, found: list[StoredResource],
                     ctx: Context, page: list[orjson.Fragment], used: int, budget: int) -> tuple[int, int]:
        """Render `found` onto `page`, each resource encoded once, until the page's bytes would pass `budget`
        (the first resource of a page always goes in, so that paging moves on). Returns how many went in
        and the page's bytes."""
        step = _EXTRAS_BATCH[resource_type.name]
        # Without a projection, the body is framed here as `render` frames it, minus what a list does not
        # answer with (Rendered's ETag and Location): a page frames 100 resources.
        plain = not (ctx.attributes or ctx.excluded)
        framer = PageFramer(resource_type, f"{ctx.base_url}{resource_type.endpoint}/", etag_of)
        user_groups = UserGroups(ctx.base_url) if plain and resource_type is USER_RESOURCE else None
        encode, append, fragment = framer.encode, page.append, orjson.Fragment  # looked up once, not per resource
        for start in range(0, len(found), step):
            batch = found[start:start + step]
            ids = [r.id for r in batch]
            extras: dict[str, dict[str, Any]] = {}
            groups: dict[str, list[Membership]] = {}
            if user_groups is not None:
                groups = tx.members.groups_of(ids)  # User.groups as JSON text, each group encoded once
            else:
                extras = self._extras(tx, resource_type, ids, ctx)
            for position, stored in enumerate(batch, start):
                if not plain:
                    encoded = orjson.dumps(self.render(resource_type, (stored, extras[stored.id]), ctx).body)
                else:
                    if user_groups is not None:
                        held = groups[stored.id]
                        extra = framer.member("groups", user_groups.json(held)) if held else b""
                    else:
                        extra = b"".join(framer.member(name, orjson.dumps(value))
                                         for name, value in extras[stored.id].items())
                    # An engine hands a page's documents over as their JSON text; a record made otherwise is encoded.
                    encoded = encode(stored.document_json or orjson.dumps(stored.document), stored.id,
                                     stored.created, stored.last_modified, stored.version, extra)
                size = len(encoded)
                if page and used + size > budget:
                    return position, used
                append(fragment(encoded))
                used += size
        return len(found), used

    # -- writes ------------------------------------------------------------------------------------
    async def create(self, resource_type: ResourceType, body: Any, ctx: Context) -> Rendered:
        document = await self._validated(resource_type, body)
        return await self._answer(resource_type, await self.db.write(self.creating(resource_type, document, ctx)), ctx)

    def creating(self, resource_type: ResourceType, document: dict[str, Any], ctx: Context,
                 resource_id: str | None = None) -> Write[Written]:
        """The transaction of a POST of `document` (as `validate` made it), to run with Storage.write: the
        resource, its members, its events and the roster. `resource_id` is the id to give it (a new one if None)."""
        members = member_ids(document.pop("members", None))
        created_id = resource_id or new_id()
        now = utc_now()

        def write(tx: Transaction) -> Written:
            changes = _Changes()
            try:
                created = tx.resources.insert(resource_type, created_id, document, now, self.limits.max_resource_bytes)
            except UniquenessConflict:
                raise _conflict(resource_type, document) from None
            except DocumentTooLarge as error:
                raise self._too_large(resource_type, error.size) from None
            changes.events.append(_resource_event(resource_type, "created", created.id, document))
            if resource_type is USER_RESOURCE:
                changes.touched_users.append(created.id)
            elif members:
                added = _add_members(tx, created.id, members, now, changes)
                changes.membership("group.member_added", created.id, added,
                                   settles=self.rules.role_of_group(document["displayName"]) is not None)
            self._finish(tx, changes, ctx, now)
            if resource_type is USER_RESOURCE:
                return created, {}  # a User just created is in no group: no query for its groups
            return created, self._written_extras(tx, resource_type, created.id, ctx)

        return write

    async def replace(self, resource_type: ResourceType, resource_id: str, body: Any, ctx: Context,
                      if_match: str | None = None) -> Rendered:
        document = await self._validated(resource_type, body)
        write = self.replacing(resource_type, resource_id, document, ctx, if_match)
        return await self._answer(resource_type, await self.db.write(write), ctx)

    def replacing(self, resource_type: ResourceType, resource_id: str, document: dict[str, Any], ctx: Context,
                  if_match: str | None = None) -> Write[Written]:
        """The transaction of a PUT of `document` (as `validate` made it, before the write), to run with
        Storage.write. A PUT replaces whatever is there, so it has no base to go stale."""
        # A PUT without `members` leaves the membership alone: a rename must never empty a role group.
        members = document.pop("members", None)
        change = [MemberChange("replace", member_ids(members))] if members is not None else []
        return self._updating(resource_type, resource_id, ctx, if_match, lambda _: (document, change))

    async def patch(self, resource_type: ResourceType, resource_id: str, body: Any, ctx: Context,
                    if_match: str | None = None) -> Rendered:
        """Parse, apply and validate before the write, against the resource as read; the write transaction only
        checks that the resource is still what the PATCH was applied to (optimistic), writes, and settles the
        roster. When another write landed in between, the PATCH is applied again to what that write left (with
        If-Match, the write transaction answers 412 instead)."""
        size = encoded_size(body)
        operations = await off_loop_if_large(size, parse_patch_request, body)
        member_changes = await off_loop_if_large(size, membership_changes_only, resource_type, operations)
        if member_changes is not None:
            # Only a Group's membership changes (an identity provider adding or removing a member): nothing to apply
            # to the document or to validate, and the deltas apply to the membership as it is when written, so
            # there is no resource to read first.
            write = self._updating(resource_type, resource_id, ctx, if_match,
                                   lambda current: (current.document, member_changes))
            return await self._answer(resource_type, await self.db.write(write), ctx)
        for _ in range(PATCH_ATTEMPTS):
            base = await self.db.lookup(lambda tx: self._current(tx, resource_type, resource_id, if_match))
            work = None if size is None else size + (encoded_size(base.document) or OFF_LOOP_BODY_BYTES)
            prepared = await off_loop_if_large(work, prepare_patch, resource_type, base, operations)
            try:
                written = await self.db.write(self.patching_prepared(resource_type, prepared, ctx, if_match))
            except _BaseMoved:
                continue
            return await self._answer(resource_type, written, ctx)
        # Other writes to this resource landed between every read and write: apply the PATCH inside the
        # transaction, where none can, so that contention on one resource slows a PATCH rather than failing it.
        write = self.patching(resource_type, resource_id, operations, ctx, if_match)
        return await self._answer(resource_type, await self.db.write(write), ctx)

    def patching_prepared(self, resource_type: ResourceType, prepared: PreparedPatch, ctx: Context,
                          if_match: str | None = None) -> Write[Written]:
        """The transaction of a PATCH applied and validated beforehand (prepare_patch), to run with Storage.write:
        it writes `prepared.document` as it is, if the resource's document is still the one the PATCH was applied
        to, and raises _BaseMoved otherwise. Member changes are deltas applied to the membership as it is now, so
        concurrent member PATCHes of one group never conflict; a group's version moved by one of them alone does
        not make another PATCH stale either, since membership is not part of the document."""
        base = prepared.base

        def unless_moved(current: StoredResource) -> tuple[dict[str, Any], list[MemberChange]]:
            if _moved(base, current):
                raise _BaseMoved
            return prepared.document, prepared.member_changes

        return self._updating(resource_type, base.id, ctx, if_match, unless_moved)

    def patching(self, resource_type: ResourceType, resource_id: str, operations: list[PatchOperation],
                 ctx: Context, if_match: str | None = None, prepared: PreparedPatch | None = None) -> Write[Written]:
        """The transaction of a PATCH that writes `prepared` (see prepare_patches) if the resource is still what it
        was applied to, and otherwise applies `operations` inside it, to the resource as the transaction reads it:
        for Bulk operations (an earlier operation of the same transaction may have changed the resource) and for
        a PATCH whose optimistic attempts all lost (see patch)."""
        def patched(current: StoredResource) -> tuple[dict[str, Any], list[MemberChange]]:
            done = prepared if prepared is not None and not _moved(prepared.base, current) else \
                prepare_patch(resource_type, current, operations)
            return done.document, done.member_changes

        return self._updating(resource_type, resource_id, ctx, if_match, patched)

    async def prepare_patches(self, patches: list[tuple[ResourceType, str, list[PatchOperation]]], size: int | None
                              ) -> list[PreparedPatch | None]:
        """Bulk's PATCHes applied and validated before their transaction, to the resources as read now (for
        `patching`); None for one that cannot be (its resource does not exist yet, or the PATCH fails against it),
        which is then applied in the transaction and answered as its own request would be. `size`: the body's."""
        def read(tx: Transaction) -> list[StoredResource | None]:
            return [tx.resources.get(resource_type, resource_id) for resource_type, resource_id, _ in patches]

        bases = await self.db.read(read)
        return await off_loop_if_large(size, _prepare_each, patches, bases)

    async def delete(self, resource_type: ResourceType, resource_id: str, ctx: Context,
                     if_match: str | None = None) -> None:
        await self.db.write(self.deleting(resource_type, resource_id, ctx, if_match))

    def deleting(self, resource_type: ResourceType, resource_id: str, ctx: Context,
                 if_match: str | None = None) -> Write[None]:
        """The transaction of a DELETE, to run with Storage.write."""
        now = utc_now()

        def write(tx: Transaction) -> None:
            changes = _Changes()
            current = self._current(tx, resource_type, resource_id, if_match)
            if resource_type is USER_RESOURCE:
                group_ids = tx.members.groups_of_user(resource_id)
                # The groups lose a member, so their version and lastModified move too.
                tx.resources.touch_groups(group_ids, now)
                for group_id in group_ids:
                    changes.membership("group.member_removed", group_id, [resource_id])
                changes.touched_users.append(resource_id)
            else:
                changes.membership("group.member_removed", resource_id, tx.members.all_of(resource_id))
                changes.reason = roster.GROUP_DELETED
            tx.resources.delete(resource_type, resource_id)
            changes.events.append(_resource_event(resource_type, "deleted", resource_id, current.document))
            self._finish(tx, changes, ctx, now)

        return write

    def _updating(self, resource_type: ResourceType, resource_id: str, ctx: Context, if_match: str | None,
                  change: Callable[[StoredResource], tuple[dict[str, Any], list[MemberChange]]]
                  ) -> Write[Written]:
        """PUT and PATCH: read, change, write and settle the roster in one transaction."""
        now = utc_now()

        def write(tx: Transaction) -> Written:
            changes = _Changes()
            current = self._current(tx, resource_type, resource_id, if_match)
            document, member_changes = change(current)
            membership_changed = _apply_member_changes(tx, resource_id, member_changes, now, changes,
                                                       settles=self._grants_roles(resource_type, current, document))
            updated = current
            if document != current.document:
                try:
                    updated = tx.resources.update(resource_type, current, document, now,
                                           self.limits.max_resource_bytes)
                except UniquenessConflict:
                    raise _conflict(resource_type, document) from None
                except DocumentTooLarge as error:
                    raise self._too_large(resource_type, error.size) from None
                changes.events.extend(self._update_events(resource_type, current, document, changes))
                if resource_type is USER_RESOURCE and _display(current.document) != _display(document):
                    # Its groups list it by this name (members[].display): their versions move with it, so that
                    # an ETag or If-None-Match on a group never vouches for a stale name.
                    tx.resources.touch_groups(tx.members.groups_of_user(resource_id), now)
            elif membership_changed:
                updated = tx.resources.touch(resource_type, current, now)
            self._finish(tx, changes, ctx, now)
            return updated, self._written_extras(tx, resource_type, resource_id, ctx)

        return write

    def _grants_roles(self, resource_type: ResourceType, current: StoredResource, document: dict[str, Any]) -> bool:
        """Whether a change to this group's membership may change its members' roles: it is a role group, before
        or after this write (a rename between the two settles all its members anyway, see _update_events)."""
        return resource_type is GROUP_RESOURCE and any(
            self.rules.role_of_group(d["displayName"]) is not None for d in (current.document, document))

    def _update_events(self, resource_type: ResourceType, current: StoredResource,
                       document: dict[str, Any], changes: _Changes) -> list[Event]:
        if resource_type is USER_RESOURCE:
            if _role_inputs_changed(current.document, document):
                changes.touched_users.append(current.id)
            return [_resource_event(resource_type, "updated", current.id, document)]
        before, after = current.document["displayName"], document["displayName"]
        if before == after:
            return []
        if self.rules.role_of_group(before) != self.rules.role_of_group(after):
            changes.regranting_group = current.id
        return [Event("group.renamed", group_id=current.id,
                      data={"groupId": current.id, "from": before, "to": after})]

    def _finish(self, tx: Transaction, changes: _Changes, ctx: Context, now: str) -> None:
        """Record the request's events, then bring the roster in line for every user it touched."""
        if changes.regranting_group is not None:
            changes.touched_users.extend(tx.members.all_of(changes.regranting_group))
        for group_id, skipped in changes.skipped.items():
            changes.events.append(_skipped_event(group_id, skipped))
            # Ids are the client's text: %r keeps a newline in one from forging a log line, and each is cut to
            # LOGGED_ID_CHARS so that a few huge ids do not make a megabyte line (the event keeps them whole).
            quoted = ", ".join(repr(_logged_id(i)) for i in skipped[:10])
            log.warning("group %s: skipped %d member id(s) that name no User: %s%s", group_id, len(skipped), quoted,
                        " (and more)" if len(skipped) > 10 else "")
        tx.feed.append(changes.events, now, ctx.actor)
        roster.settle(tx, self.rules, changes.touched_users, actor=ctx.actor, now=now, reason=changes.reason,
                      policy=self.holds, change=changes.described())

    # -- helpers -----------------------------------------------------------------------------------
    async def _validated(self, resource_type: ResourceType, body: Any) -> dict[str, Any]:
        """The document of a POST or PUT body (`validate`), validated off the loop when it is large."""
        size = encoded_size(body)
        return await off_loop_if_large(size, self.validate, resource_type, body, size)

    def validate(self, resource_type: ResourceType, body: Any, size: int | None) -> dict[str, Any]:
        """The document of a POST or PUT body (load_resource), `size` its encoded_size; a User body far larger
        than a stored User may be is refused before it is validated."""
        if resource_type is USER_RESOURCE and size is not None \
                and size > EARLY_REFUSAL_FACTOR * self.limits.max_resource_bytes:
            raise self._too_large(resource_type, size, "its body holds")
        return load_resource(resource_type, body)

    def _too_large(self, resource_type: ResourceType, size: int, what: str = "it would be stored as"
                   ) -> errors.ScimError:
        limit = self.limits.max_resource_bytes
        return errors.ScimError(
            413, f"The {resource_type.name} is too large: {what} {size:,} bytes of JSON, and a {resource_type.name} "
                 f"may hold at most {limit:,} (the server's --max-resource-bytes). Send fewer or shorter values.")

    def _current(self, tx: Transaction, resource_type: ResourceType, resource_id: str,
                 if_match: str | None) -> StoredResource:
        current = tx.resources.get(resource_type, resource_id)
        if current is None:
            raise _not_found(resource_type, resource_id)
        if if_match is not None and not etag_matches(if_match, etag_of(current.version)):
            raise errors.precondition_failed(
                f"The {resource_type.name} has changed: its ETag is now {etag_of(current.version)}, "
                f"not {if_match}. Read it again and retry."
            )
        return current

    def _written_extras(self, tx: Transaction, resource_type: ResourceType, resource_id: str,
                        ctx: Context) -> dict[str, Any]:
        """User.groups or Group.members for the answer to a write. A large group's members are left out
        of it: echoing 100,000 ids after adding one would make every add cost as much as the group is big.
        GET /Groups/{id} still lists them all."""
        if resource_type is GROUP_RESOURCE and tx.members.has_more_than(resource_id, MAX_ECHOED_MEMBERS):
            return {}
        return self._extras(tx, resource_type, [resource_id], ctx)[resource_id]

    def _extras(self, tx: Transaction, resource_type: ResourceType, ids: list[str], ctx: Context
                ) -> dict[str, dict[str, Any]]:
        """The multi-valued attributes that live outside the document: User.groups, Group.members."""
        if resource_type is USER_RESOURCE:
            if not wants_attribute(resource_type, ctx.attributes, ctx.excluded, "groups"):
                return {i: {} for i in ids}
            groups = tx.members.groups_of(ids)
            return {
                i: {"groups": [user_group(g.group_id, g.display, ctx.base_url) for g in groups[i]]} if groups[i] else {}
                for i in ids
            }
        if not wants_attribute(resource_type, ctx.attributes, ctx.excluded, "members"):
            return {i: {} for i in ids}
        # members.display is read only when the projection names it (returned="request" in schema_defs).
        with_display = any(names_sub_attribute(GROUP_RESOURCE, paths, "members", "display")
                           for paths in (ctx.attributes, ctx.excluded))
        if not with_display:  # the ids as plain strings: no record per member
            listed = {i: tx.members.member_ids(i) for i in ids}
            return {i: {"members": [member(u, ctx.base_url) for u in listed[i]]} if listed[i] else {} for i in ids}
        members = tx.members.of_groups(ids, with_display)
        return {
            i: {"members": [{**member(m.user_id, ctx.base_url), "display": m.display} for m in members[i]]}
            if members[i] else {}
            for i in ids
        }

    async def _answer(self, resource_type: ResourceType, written: Written, ctx: Context) -> Rendered:
        """The answer to a write: `render`, on a worker thread when the projection is heavy (_projects_heavily)."""
        if _projects_heavily(ctx):
            return await asyncio.get_running_loop().run_in_executor(
                _VALIDATOR, functools.partial(self.render, resource_type, written, ctx))
        return self.render(resource_type, written, ctx)

    def render(self, resource_type: ResourceType, written: Written, ctx: Context) -> Rendered:
        """A stored resource and its extras (User.groups, Group.members) as the client sees it."""
        stored, extra = written
        location = f"{ctx.base_url}{resource_type.endpoint}/{stored.id}"
        etag = etag_of(stored.version)
        meta = {"resourceType": resource_type.name, "created": stored.created,
                "lastModified": stored.last_modified, "location": location, "version": etag}
        body = dump_resource(resource_type, stored.document, id=stored.id, meta=meta, extra=extra)
        if ctx.attributes or ctx.excluded:
            body = project(body, resource_type, ctx.attributes, ctx.excluded, ctx.projection)
        return Rendered(body, etag, location)


def encoded_size(body: Any) -> int | None:
    """The body's size as JSON re-encodes it (~1 ms per MiB), so whitespace and escapes do not count; None when
    it is nested too deeply to encode (validation refuses it, with a better message than an encoder would)."""
    try:
        return len(orjson.dumps(body))
    except orjson.JSONEncodeError:
        return None


async def off_loop_if_large(size: int | None, function: Callable[..., T], *args: Any) -> T:
    """`function(*args)`, on a worker thread when the body it validates (`size` bytes, None if unknown) is large
    enough to hold up the event loop."""
    if size is None or size > OFF_LOOP_BODY_BYTES:
        return await asyncio.get_running_loop().run_in_executor(_VALIDATOR, functools.partial(function, *args))
    return function(*args)


@dataclass(frozen=True)
class PreparedPatch:
    """A PATCH applied and validated outside the write transaction: the resource as it was read, and the document
    (as load_resource made it) and member changes the PATCH makes of it."""

    base: StoredResource
    document: dict[str, Any]
    member_changes: list[MemberChange]


def prepare_patch(resource_type: ResourceType, base: StoredResource, operations: list[PatchOperation]
                  ) -> PreparedPatch:
    """Apply `operations` to `base` and validate the result (marshmallow): CPU work that belongs before the write,
    not on the single writer thread, where it would queue every other write."""
    result = apply_patch(resource_type, base.document, operations)
    document = load_patched(resource_type, base.document, result.document)
    document.pop("members", None)
    return PreparedPatch(base, document, result.member_changes)


def _prepare_each(patches: list[tuple[ResourceType, str, list[PatchOperation]]],
                  bases: list[StoredResource | None]) -> list[PreparedPatch | None]:
    prepared: list[PreparedPatch | None] = []
    for (resource_type, _, operations), base in zip(patches, bases, strict=True):
        try:
            prepared.append(None if base is None else prepare_patch(resource_type, base, operations))
        except errors.ScimError:
            prepared.append(None)
    return prepared


def _moved(base: StoredResource, current: StoredResource) -> bool:
    """Whether a PATCH applied to `base` may differ applied to `current`: the document changed. A version moved
    by membership alone does not count, since a PATCH's member changes are deltas applied to the membership as it
    is when they are written."""
    return current.version != base.version and current.document != base.document


class _BaseMoved(Exception):
    """The resource a PATCH was applied to changed before the PATCH's write transaction (see Directory.patch)."""


def etag_matches(header: str, etag: str) -> bool:
    """If-Match: `*` or a list of entity tags; weak and strong forms of our version compare equal."""
    wanted = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def _add_members(tx: Transaction, group_id: str, user_ids: tuple[str, ...], now: str, changes: _Changes
                 ) -> list[str]:
    """Add the members that are Users; returns the ids that were not members before.

    An id that names no User is skipped (noted in `changes`), not refused: identity providers take a 400 as
    final (Okta does not retry), so one stale id would cost every valid member of the push their access.
    The skipped ids are never stored, so no membership ever dangles. Which ids were skipped is asked only
    when some id was not added (it names no User, was a member already, or is repeated): not for an
    identity provider's usual add of a new member."""
    added = tx.members.add_users(group_id, user_ids, now)
    if len(added) < len(user_ids):
        new = set(added)
        missing = tx.members.missing_users([i for i in user_ids if i not in new])
        if missing:
            changes.skipped.setdefault(group_id, []).extend(missing)
    return added


def _apply_member_changes(tx: Transaction, group_id: str, member_changes: list[MemberChange],
                          now: str, changes: _Changes, settles: bool = True) -> bool:
    """Apply PATCH/PUT membership changes in order; True when the membership is different afterwards."""
    added: list[str] = []
    removed: list[str] = []
    for change in member_changes:
        if change.kind == "add":
            added += _add_members(tx, group_id, change.ids, now, changes)
        elif change.kind == "remove":
            removed += tx.members.remove(group_id, change.ids)
        elif change.kind == "remove_where":
            assert change.filter is not None
            removed += tx.members.remove(group_id, tx.members.matching(group_id, resolve_member_filter(change.filter)))
        elif change.kind == "replace":
            wanted = set(change.ids)
            present = tx.members.all_of(group_id)
            removed += tx.members.remove(group_id, [i for i in present if i not in wanted])
            present_set = set(present)
            added += _add_members(tx, group_id, tuple(i for i in change.ids if i not in present_set), now, changes)
    changes.membership("group.member_added", group_id, added, settles)
    changes.membership("group.member_removed", group_id, removed, settles)
    return bool(added or removed)


_MEMBERS_PATHS = frozenset({"members", f"{GROUP_RESOURCE.schema.id.lower()}:members"})


def _excludes_only_members(ctx: Context) -> bool:
    """excludedAttributes=members (the whole attribute, by name or URN), and nothing else to project."""
    return not ctx.attributes and bool(ctx.excluded) and all(p.lower() in _MEMBERS_PATHS for p in ctx.excluded or ())


def _members_key(group: StoredResource, ctx: Context) -> MembersKey:
    return MembersKey(group.id, ctx.base_url, group.created, group.version)


def _role_inputs_changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether a User's update may move its roster entry: the roster derives from its userName and active flag
    (and its role groups, which change through Group writes), so an update of other attributes leaves it as the
    last write settled it, and settling it again would only cost three queries on the writer."""
    return before.get("userName") != after.get("userName") or before.get("active") != after.get("active")


def _projects_heavily(ctx: Context) -> bool:
    """Whether rendering for `ctx` may cost more than the event loop can spare: value filters in attributes or
    excludedAttributes are bounded only per resource (MAX_PROJECTION_WORK, about half a second of Python), so a
    read or write answer projected with them runs on a thread, like a scan or a large body's validation."""
    return has_value_filters(ctx.attributes) or has_value_filters(ctx.excluded)


def _logged_id(text: str) -> str:
    return text if len(text) <= LOGGED_ID_CHARS else text[:LOGGED_ID_CHARS] + "…"


def _display(user: dict[str, Any]) -> str:
    """What a group shows for a member (as storage.members_of derives it): its displayName, else its userName."""
    return str(user.get("displayName") or user["userName"])


def _skipped_event(group_id: str, skipped: list[str]) -> Event:
    """One event per request and group that names the member ids it skipped (the first MAX_SKIPPED_LISTED)."""
    unique = list(dict.fromkeys(skipped))
    return Event("group.members_skipped", group_id=group_id, data={
        "groupId": group_id, "skipped": unique[:MAX_SKIPPED_LISTED], "skippedCount": len(unique)})


def _resource_event(resource_type: ResourceType, verb: str, resource_id: str, document: dict[str, Any]) -> Event:
    if resource_type is USER_RESOURCE:
        return Event(f"user.{verb}", user_id=resource_id,
                     data={"userId": resource_id, "userName": document["userName"]})
    return Event(f"group.{verb}", group_id=resource_id,
                 data={"groupId": resource_id, "displayName": document["displayName"]})


def _not_found(resource_type: ResourceType, resource_id: str) -> errors.ScimError:
    return errors.not_found(f"No {resource_type.name} has the id {resource_id!r}.")


def _conflict(resource_type: ResourceType, document: dict[str, Any]) -> errors.ScimError:
    if resource_type is GROUP_RESOURCE:
        return errors.uniqueness(f"A Group named {document['displayName']!r} already exists (names are compared "
                                 "without regard to case); look it up with filter=displayName eq \"...\".")
    return errors.uniqueness(f"A User with userName {document['userName']!r} already exists (userNames are "
                             "compared without regard to case); look it up with filter=userName eq \"...\".")
