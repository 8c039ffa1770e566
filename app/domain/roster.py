"""The organization's roster, kept in step with every change inside the change's own transaction.

Nothing here decides a role (that is roles.RoleRules); this module compares what the roster says
with what the data now implies for the users a change touched, writes the difference, and records
it as member.* events. Because it always derives from the current data, two requests that move a
user between role groups give the right role after both, in either order, and lose nothing.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from app.domain.clock import utc_now
from app.domain.roles import RoleRules
from app.protocol.folding import fold_case
from app.protocol.schema_defs import USER_RESOURCE
from app.storage import resources as resources_store
from app.storage import roster as store
from app.storage.database import Database
from app.storage.resources import Membership
from app.storage.roster import Event, RosterEntry

SYSTEM_ACTOR = "rollcall"
_RULES_KEY = "role_rules"

# Why a user left the roster, when the data alone does not say (it says user-deleted and deactivated).
LEFT_ROLE_GROUPS = "left-role-groups"
GROUP_DELETED = "group-deleted"


def settle(conn: sqlite3.Connection, rules: RoleRules, user_ids: Sequence[str], *, actor: str, now: str,
                 reason: str = LEFT_ROLE_GROUPS) -> list[Event]:
    """Bring the roster entries of `user_ids` in line with the data, and return the events it wrote."""
    if not user_ids:
        return []
    user_ids = list(dict.fromkeys(user_ids))
    inputs = store.role_inputs(conn, user_ids)
    previous = store.entries(conn, user_ids)
    joined_or_changed: list[RosterEntry] = []
    left: list[str] = []
    events: list[Event] = []
    for user_id in user_ids:
        facts = inputs.get(user_id)
        role = rules.role_of_user(facts.active, facts.group_names) if facts else None
        before = previous.get(user_id)
        if before is None and role is not None:
            assert facts is not None
            joined_or_changed.append(RosterEntry(user_id, facts.user_name, role, now))
            events.append(Event("member.joined", user_id, data={"userId": user_id, "userName": facts.user_name,
                                                                  "role": role,
                                                                  "groups": _granting(rules, role, facts)}))
        elif before is not None and role is None:
            why = "user-deleted" if facts is None else "deactivated" if not facts.active else reason
            left.append(user_id)
            events.append(Event("member.left", user_id, data={
                "userId": user_id, "userName": facts.user_name if facts else before.user_name,
                "role": before.role, "reason": why}))
        elif before is not None and role is not None:
            assert facts is not None
            if role != before.role or facts.user_name != before.user_name:
                joined_or_changed.append(RosterEntry(user_id, facts.user_name, role, before.since))
            if role != before.role:
                events.append(Event("member.role_changed", user_id, data={
                    "userId": user_id, "userName": facts.user_name, "from": before.role, "to": role,
                    "groups": _granting(rules, role, facts)}))
    store.put_entries(conn, joined_or_changed)
    store.drop_entries(conn, left)
    store.append_events(conn, events, now, actor)
    return events


def _granting(rules: RoleRules, role: str, facts: store.RoleInputs) -> list[str]:
    """The displayNames of the user's groups that grant `role` (none for a default role): recorded in the event, so
    that the roster at a past moment can say which groups gave each member their role then."""
    return sorted(name for name in facts.group_names if rules.role_of_group(name) == role)


def reconcile_if_rules_changed(conn: sqlite3.Connection, rules: RoleRules, now: str) -> int:
    """After a restart with another --group-prefix or --default-role, re-derive everyone's role once."""
    fingerprint = rules.fingerprint()
    if store.get_setting(conn, _RULES_KEY) == fingerprint:
        return 0
    events = settle(conn, rules, store.all_user_ids(conn), actor=SYSTEM_ACTOR, now=now)
    store.put_setting(conn, _RULES_KEY, fingerprint)
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

    def __init__(self, db: Database, rules: RoleRules) -> None:
        self.db = db
        self.rules = rules

    async def members(self, at: str | None = None, role: str | None = None, q: str | None = None,
                      after: str | None = None, limit: int | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of members, in userName order, and the cursor of the next page (None after the last).

        `at` (stored format): the roster as it was then, replayed from the change feed; a moment not yet past is
        the live roster. `role`, `q` (contained in userName, displayName or an e-mail, without regard to case) and
        `after` (a cursor from an earlier page) narrow it; `limit` None means every member."""
        query = store.MemberQuery(role, fold_case(q) if q else None, decode_cursor(after) if after else None,
                                  None if limit is None else limit + 1)
        live = at is None or at >= utc_now()

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            if live:
                listed = store.members(conn, query)
                groups = resources_store.groups_of(conn, [m["id"] for m in listed])
                for m in listed:
                    m["groups"] = self._granting(m["role"], groups[m["id"]])
            else:
                assert at is not None
                listed = store.members_at(conn, at, query)
                for m in listed:
                    m["groups"] = m["recordedGroups"] or []
            return listed

        listed = await self.db.read(read)
        more = limit is not None and len(listed) > limit
        page = listed[:limit] if limit is not None else listed
        cursor = encode_cursor(page[-1]["sortKey"], page[-1]["id"]) if more else None
        return [{k: v for k, v in m.items() if k not in ("sortKey", "recordedGroups")} for m in page], cursor

    async def explain(self, user_id: str) -> dict[str, Any] | None:
        """One user, member or not: status, role, every group and what it grants, the last role change."""
        def read(conn: sqlite3.Connection) -> dict[str, Any] | None:
            user = resources_store.get(conn, USER_RESOURCE, user_id)
            if user is None:
                return None
            entry = store.entries(conn, [user_id]).get(user_id)
            groups = resources_store.groups_of(conn, [user_id])[user_id]
            active = user.document.get("active") is not False
            role = entry.role if entry else None
            return {
                "id": user_id,
                "userName": user.document["userName"],
                "displayName": user.document.get("displayName"),
                "active": active,
                "status": "member" if role else "deactivated" if not active else "no-role",
                "role": role,
                "since": entry.since if entry else None,
                "defaultRole": self.rules.default_role,
                "groups": [{"id": g.group_id, "displayName": g.display, "grants": self.rules.role_of_group(g.display)}
                           for g in groups],
                "lastChange": store.last_member_event(conn, user_id),
            }

        return await self.db.read(read)

    async def events(self, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        return await self.db.read(lambda conn: store.events_after(conn, after, limit))

    def _granting(self, role: str, groups: list[Membership]) -> list[str]:
        return [g.display for g in groups if self.rules.role_of_group(g.display) == role]
