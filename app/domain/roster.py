"""The organization's roster, kept in step with every change inside the change's own transaction.

Nothing here decides a role (that is roles.RoleRules); this module compares what the roster says
with what the data now implies for the users a change touched, writes the difference, and records
it as member.* events. Because it always derives from the current data, two requests that move a
user between role groups give the right role after both, in either order, and lose nothing.
The one exception is what a hold keeps (holds.py): a held departure waits, decided here, in the same transaction.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from app.domain import holds
from app.domain.clock import utc_now
from app.domain.holds import NO_HOLDS, HoldPolicy
from app.domain.roles import ROLES, RoleRules
from app.protocol.folding import fold_case
from app.protocol.schema_defs import USER_RESOURCE
from app.storage.interface import Storage, Transaction
from app.storage.records import Event, MemberQuery, Membership, RoleInputs, RosterEntry

SYSTEM_ACTOR = "rollcall"
_RULES_KEY = "role_rules"

# Why a user left the roster, when the data alone does not say (it says user-deleted and deactivated).
LEFT_ROLE_GROUPS = "left-role-groups"
GROUP_DELETED = "group-deleted"


def settle(tx: Transaction, rules: RoleRules, user_ids: Sequence[str], *, actor: str, now: str,
           reason: str = LEFT_ROLE_GROUPS, policy: HoldPolicy = NO_HOLDS,
           change: dict[str, Any] | None = None) -> list[Event]:
    """Bring the roster entries of `user_ids` in line with the data, and return the events it wrote.

    Under `policy`, the departures of a change that takes the window's count above the threshold are held whole,
    and so is a change that would leave the organization with no admin (see holds.py); `change` describes the
    change for the hold. A held person whose departure the data no longer implies is released."""
    if not user_ids:
        return []
    user_ids = list(dict.fromkeys(user_ids))
    inputs = tx.roster.role_inputs(user_ids)
    previous = tx.roster.entries(user_ids)
    held = tx.holds.held_now(user_ids)
    joined_or_changed: list[RosterEntry] = []
    departures: list[holds.Departure] = []
    demotions: list[holds.Departure] = []
    events: list[Event] = []
    released_from: set[int] = set()
    admins_gained = 0
    for user_id in user_ids:
        facts = inputs.get(user_id)
        role = rules.role_of_user(facts.active, facts.group_names) if facts else None
        before = previous.get(user_id)
        kept = held.get(user_id)
        if kept is not None:
            if holds.still_follows(kept, role):
                continue  # still held: the roster keeps them as they were
            tx.holds.settle(kept.hold_id, [user_id], "released")
            released_from.add(kept.hold_id)
        if before is None and role is not None:
            assert facts is not None
            joined_or_changed.append(RosterEntry(user_id, facts.user_name, role, now))
            events.append(Event("member.joined", user_id, data={"userId": user_id, "userName": facts.user_name,
                                                                  "role": role,
                                                                  "groups": _granting(rules, role, facts)}))
            admins_gained += role == "admin"
        elif before is not None and role is None:
            why = "user-deleted" if facts is None else "deactivated" if not facts.active else reason
            departures.append(holds.Departure(user_id, facts.user_name if facts else before.user_name, before.role,
                                              None, why))
        elif before is not None and role is not None:
            assert facts is not None
            if role != before.role and before.role == "admin":
                demotions.append(holds.Departure(user_id, facts.user_name, before.role, role, reason))
                continue
            if role != before.role or facts.user_name != before.user_name:
                joined_or_changed.append(RosterEntry(user_id, facts.user_name, role, before.since))
            if role != before.role:
                events.append(Event("member.role_changed", user_id, data={
                    "userId": user_id, "userName": facts.user_name, "from": before.role, "to": role,
                    "groups": _granting(rules, role, facts)}))
                admins_gained += role == "admin"
    change = change or {"type": "rules.changed"}
    if departures and policy.enabled:
        window = tx.holds.window_since(policy.window_start(now))
        if policy.is_mass_removal(window.left_unapproved + len(departures), window.members_at_start):
            events.append(holds.open_hold(tx, holds.MASS_REMOVAL, departures, actor=actor, now=now, change=change))
            departures = []
    admin_losses = [d for d in (*departures, *demotions) if d.role == "admin"]
    if admin_losses and policy.enabled:
        admins = tx.holds.admins_not_held()
        if admins > 0 and admins - len(admin_losses) + admins_gained <= 0:
            events.append(holds.open_hold(tx, holds.LAST_ADMIN, admin_losses, actor=actor, now=now, change=change))
            departures = [d for d in departures if d.role != "admin"]
            demotions = []
    for demoted in demotions:
        assert demoted.becomes is not None
        joined_or_changed.append(RosterEntry(demoted.user_id, demoted.user_name, demoted.becomes,
                                             previous[demoted.user_id].since))
        events.append(Event("member.role_changed", demoted.user_id, data={
            "userId": demoted.user_id, "userName": demoted.user_name, "from": demoted.role, "to": demoted.becomes,
            "groups": _granting(rules, demoted.becomes, inputs[demoted.user_id])}))
    for departed in departures:
        events.append(Event("member.left", departed.user_id, data={
            "userId": departed.user_id, "userName": departed.user_name, "role": departed.role,
            "reason": departed.reason}))
    events += holds.cancel_if_empty(tx, released_from, actor=actor, now=now)
    tx.roster.put(joined_or_changed)
    tx.roster.drop([d.user_id for d in departures])
    tx.feed.append(events, now, actor)
    return events


def _granting(rules: RoleRules, role: str, facts: RoleInputs) -> list[str]:
    """The displayNames of the user's groups that grant `role` (none for a default role): recorded in the event, so
    that the roster at a past moment can say which groups gave each member their role then."""
    return sorted(name for name in facts.group_names if rules.role_of_group(name) == role)


def reconcile_if_rules_changed(tx: Transaction, rules: RoleRules, now: str,
                               policy: HoldPolicy = NO_HOLDS) -> int:
    """After a restart with another --group-prefix or --default-role, re-derive everyone's role once (a prefix
    mistyped on restart would empty the roster: under `policy`, that is a mass removal, held like any other)."""
    fingerprint = rules.fingerprint()
    if tx.settings.get(_RULES_KEY) == fingerprint:
        return 0
    events = settle(tx, rules, tx.roster.all_user_ids(), actor=SYSTEM_ACTOR, now=now, policy=policy,
                    change={"type": "rules.changed", "rules": fingerprint})
    tx.settings.put(_RULES_KEY, fingerprint)
    return len(events)


# -- reading the roster -----------------------------------------------------------------------------

def encode_cursor(sort_key: str, user_id: str) -> str:
    """Where a page of members ended, as `?after=` carries it: opaque to clients, read only by decode_cursor."""
    return base64.urlsafe_b64encode(json.dumps([sort_key, user_id], ensure_ascii=False).encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    """ValueError for anything encode_cursor did not make."""
    try:
        key, user_id = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (ValueError, TypeError, UnicodeError):
        raise ValueError(f"after={cursor!r} is not a cursor this server gave; use the `next` of the page "
                         "before.") from None
    if not isinstance(key, str) or not isinstance(user_id, str):
        raise ValueError(f"after={cursor!r} is not a cursor this server gave; use the `next` of the page before.")
    return key, user_id


class RosterReader:
    """Answers "who is a member, with which role, and why" from the database."""

    def __init__(self, db: Storage, rules: RoleRules) -> None:
        self.db = db
        self.rules = rules

    async def members(self, at: str | None = None, role: str | None = None, q: str | None = None,
                      after: str | None = None, limit: int | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of members, in userName order, and the cursor of the next page (None after the last).

        `at` (stored format): the roster as it was then, replayed from the change feed; a moment not yet past is
        the live roster. `role`, `q` (contained in userName, displayName or an e-mail, without regard to case) and
        `after` (a cursor from an earlier page) narrow it; `limit` None means every member."""
        query = MemberQuery(role, fold_case(q) if q else None, decode_cursor(after) if after else None,
                                  None if limit is None else limit + 1)
        live = at is None or at >= utc_now()

        def read(tx: Transaction) -> list[dict[str, Any]]:
            if live:
                listed = tx.roster.members(query)
                groups = tx.members.groups_of([m["id"] for m in listed])
                for m in listed:
                    m["groups"] = self._granting(m["role"], groups[m["id"]])
            else:
                assert at is not None
                listed = tx.roster.members_at(at, query)
                for m in listed:
                    m["groups"] = m["recordedGroups"] or []
            return listed

        listed = await self.db.read(read)
        more = limit is not None and len(listed) > limit
        page = listed[:limit] if limit is not None else listed
        cursor = encode_cursor(page[-1]["sortKey"], page[-1]["id"]) if more else None
        return [{k: v for k, v in m.items() if k not in ("sortKey", "recordedGroups")} for m in page], cursor

    async def explain(self, user_id: str) -> dict[str, Any] | None:
        """One user, member or not: status, role, every group and what it grants, the last role change, and the
        hold that keeps them on the roster, if one does (even once the user is deleted)."""
        def read(tx: Transaction) -> dict[str, Any] | None:
            user = tx.resources.get(USER_RESOURCE, user_id)
            entry = tx.roster.entries([user_id]).get(user_id)
            kept = tx.holds.held_now([user_id]).get(user_id)
            if user is None and kept is None:
                return None
            groups = tx.members.groups_of([user_id])[user_id]
            active = user is not None and user.document.get("active") is not False
            role = entry.role if entry else None
            status = "held" if kept else "member" if role else "deactivated" if not active else "no-role"
            explained = {
                "id": user_id,
                "userName": user.document["userName"] if user else kept.user_name if kept else None,
                "displayName": user.document.get("displayName") if user else None,
                "active": active,
                "status": status,
                "role": role,
                "since": entry.since if entry else None,
                "defaultRole": self.rules.default_role,
                "groups": [{"id": g.group_id, "displayName": g.display, "grants": self.rules.role_of_group(g.display)}
                           for g in groups],
                "lastChange": tx.feed.last_member_event(user_id),
            }
            if kept is not None:
                hold = tx.holds.get(kept.hold_id)
                assert hold is not None
                explained["hold"] = {"id": hold.id, "cause": hold.cause, "opened": hold.opened, "token": hold.actor,
                                     "change": hold.change, "reason": kept.reason, "becomes": kept.becomes}
            return explained

        return await self.db.read(read)

    async def events(self, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        return await self.db.read(lambda tx: tx.feed.after(after, limit))

    async def role_counts(self) -> dict[str, int]:
        """Members per role right now, every role named (0 when none has it)."""
        counts = await self.db.read(lambda tx: tx.roster.role_counts())
        return {role: counts.get(role, 0) for role in ROLES}

    async def timeline(self, user_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """One user's events from the change feed, newest first."""
        return await self.db.read(lambda tx: tx.feed.of_user(user_id, limit))

    async def recent_events(self, before: int | None = None, kind: str | None = None, limit: int = 100
                            ) -> list[dict[str, Any]]:
        """The change feed newest first, below seq `before`; `kind` a type or a family of types (`member`)."""
        return await self.db.read(lambda tx: tx.feed.newest(before, kind, limit))

    async def membership_times(self, user_id: str) -> dict[str, str]:
        """When the user joined each of their groups (group id -> stored time): the console's why-sentence says
        since when a role group has granted the role."""
        return await self.db.read(lambda tx: tx.members.joined(user_id))

    async def named(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events with the current userName (`userName`) and group name (`groupName`) of the ids they carry
        filled in where the event itself names none (a membership event carries ids only); a user or group since
        deleted keeps its id."""
        user_ids = list({e["userId"] for e in events if e.get("userId") and not e.get("userName")})
        group_ids = list({e["groupId"] for e in events if e.get("groupId") and not e.get("displayName")})
        if not user_ids and not group_ids:
            return events
        users, groups = await self.db.read(lambda tx: tx.resources.names_of(user_ids, group_ids))
        return [{**e, **({"userName": users[e["userId"]]} if e.get("userId") in users and not e.get("userName")
                         else {}),
                 **({"groupName": groups[e["groupId"]]} if e.get("groupId") in groups else {})} for e in events]

    async def groups(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Groups with their member count and the role each grants (None for most): role groups first, then by
        name."""
        found = await self.db.read(lambda tx: tx.resources.group_summaries(limit))
        listed = [{"id": g.group_id, "displayName": g.display, "members": g.members,
                   "grants": self.rules.role_of_group(g.display)} for g in found]
        return sorted(listed, key=lambda g: g["grants"] is None)  # stable: by name within each part

    def _granting(self, role: str, groups: list[Membership]) -> list[str]:
        return [g.display for g in groups if self.rules.role_of_group(g.display) == role]
