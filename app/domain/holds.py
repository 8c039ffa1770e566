"""The safety nets: a mass removal waits for a person, and the organization never loses its last admin.

The SCIM data is always stored as the identity provider sent it; only the roster waits. A hold keeps the people
a change would remove (or, for the last admin, demote) on the roster with their role until a person approves it,
or until the data no longer implies their departure (then they are released without ever having left). So the
roster always equals what the stored data implies, minus the held departures (`implied_roster` says what that is).

Holds are decided inside roster.settle, in the transaction of the change itself: a crash leaves the change and
its hold both committed, or neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.domain.clock import utc_now
from app.domain.roles import RoleRules
from app.protocol import errors
from app.storage.interface import Storage, Transaction
from app.storage.records import Event, Held, Hold, RosterEntry

MASS_REMOVAL = "mass-removal"
LAST_ADMIN = "last-admin"
DEFAULT_WINDOW_SECONDS = 600.0
DEFAULT_PERCENT = 10.0
DEFAULT_MINIMUM = 3
# hold.opened lists at most this many of the people it holds (and counts them all).
MAX_LISTED = 100


@dataclass(frozen=True)
class HoldPolicy:
    """When a change's departures are held: more than `percent` percent of the members at the start of the
    sliding window of `window_seconds`, and more than `minimum` people, leave within it. `enabled` False (--no-hold)
    turns both safety nets off: nothing new is held, and an approval no longer keeps the last admin."""

    enabled: bool = True
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    percent: float = DEFAULT_PERCENT
    minimum: int = DEFAULT_MINIMUM

    def __post_init__(self) -> None:
        if not 0 < self.window_seconds <= 7 * 24 * 3600:
            raise ValueError(f"--hold-window must be between 0 and 604800 seconds (7 days), not {self.window_seconds}")
        if not 0 <= self.percent <= 100:
            raise ValueError(f"--hold-percent must be between 0 and 100, not {self.percent}")
        if self.minimum < 0:
            raise ValueError(f"--hold-min must not be negative, not {self.minimum}")

    def is_mass_removal(self, departures: int, members_at_start: int) -> bool:
        """Whether `departures` in one window is above the threshold: above `minimum`, and above `percent` percent
        of `members_at_start`. With the defaults, 3 departures always pass; in an organization of 30 the 4th
        is held (4 > 3 and 4 > 10% of 30)."""
        return self.enabled and departures > self.minimum and departures * 100 > self.percent * members_at_start

    def window_start(self, now: str) -> str:
        """The start of the window ending at `now`, in the stored time format (see clock.utc_now)."""
        moment = datetime.strptime(now, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        return (moment - timedelta(seconds=self.window_seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


NO_HOLDS = HoldPolicy(enabled=False)


def still_follows(held: Held, role: str | None) -> bool:
    """Whether the data (which now gives `role`) still implies the change this person is held from: a departure
    for a mass removal, the loss of the admin role for the last admin."""
    if held.cause == LAST_ADMIN:
        return role != "admin"
    return role is None


@dataclass
class Departure:
    """A roster change settle would make that a hold may stop: a departure, or an admin's demotion."""

    user_id: str
    user_name: str
    role: str
    becomes: str | None
    reason: str


def open_hold(tx: Transaction, cause: str, people: list[Departure], *, actor: str, now: str,
              change: dict[str, Any]) -> Event:
    """Hold these people's changes; the hold.opened event for the feed."""
    hold_id = tx.holds.open(now, cause, actor, change, [
        Held(0, p.user_id, p.user_name, p.role, p.becomes, p.reason) for p in people])
    return Event("hold.opened", data={"holdId": hold_id, "cause": cause, "count": len(people), "change": change,
                                      "userIds": [p.user_id for p in people[:MAX_LISTED]]})


def cancel_if_empty(tx: Transaction, hold_ids: set[int], *, actor: str, now: str) -> list[Event]:
    """Close the holds among `hold_ids` whose people have all been released: hold.cancelled."""
    events = []
    for hold_id in sorted(hold_ids):
        if tx.holds.still_held(hold_id) == 0:
            hold = tx.holds.get(hold_id)
            assert hold is not None
            released = len(tx.holds.held_in(hold_id, still_held=False))
            tx.holds.close(hold_id, "cancelled", now, actor)
            events.append(Event("hold.cancelled", data={"holdId": hold_id, "cause": hold.cause,
                                                        "released": released}))
    return events


def implied_roster(tx: Transaction, rules: RoleRules) -> dict[str, str]:
    """Every user's role as the stored data implies it (user id → role), with no hold in the way."""
    implied = {}
    for user_id, facts in tx.roster.role_inputs(tx.roster.all_user_ids()).items():
        role = rules.role_of_user(facts.active, facts.group_names)
        if role is not None:
            implied[user_id] = role
    return implied


def expected_roster(tx: Transaction, rules: RoleRules) -> dict[str, str]:
    """What the roster must be: what the data implies, except that each held person keeps the role they are held
    with, as long as the data still implies the change they are held from (else they would have been released)."""
    expected = implied_roster(tx, rules)
    for user_id, held in tx.holds.held_now(tx.roster.all_user_ids()).items():
        if still_follows(held, expected.get(user_id)):
            expected[user_id] = held.role
    return expected


def approve(tx: Transaction, rules: RoleRules, policy: HoldPolicy, hold_id: int, *, actor: str,
            now: str, leave_no_admin: bool = False) -> dict[str, Any]:
    """Let a hold's changes happen now: ordinary member.left (with the original reason) and member.role_changed
    events, each naming the hold. While it would leave the organization with no admin, it takes a person's
    explicit word for it (`leave_no_admin`): one wrong click must not lock everyone out."""
    hold = tx.holds.get(hold_id)
    if hold is None:
        raise errors.not_found(f"No hold has the id {hold_id}; `rollcall holds` lists the open ones.")
    if hold.state != "open":
        raise errors.ScimError(409, f"Hold {hold_id} is {hold.state} already; there is nothing left to approve.")
    people = tx.holds.held_in(hold_id)
    ids = [p.user_id for p in people]
    inputs = tx.roster.role_inputs(ids)
    roles = {i: rules.role_of_user(f.active, f.group_names) for i, f in inputs.items()}
    applied = [p for p in people if still_follows(p, roles.get(p.user_id))]
    released = [p for p in people if not still_follows(p, roles.get(p.user_id))]
    loses_admins = any(p.role == "admin" for p in applied)
    regains = sum(1 for p in released if roles.get(p.user_id) == "admin")
    if policy.enabled and loses_admins and not leave_no_admin and tx.holds.admins_not_held() + regains == 0:
        raise errors.ScimError(409, f"Approving hold {hold_id} would leave the organization with no admin. Add "
                                    "another admin in the identity provider first, or say that no admin is what "
                                    "you want: `rollcall holds approve ID --leave-no-admin`, or "
                                    "POST /api/holds/ID/approve?leave_no_admin=true.")
    entries = tx.roster.entries(ids)
    applied_ids = {p.user_id for p in applied}
    events: list[Event] = []
    put: list[RosterEntry] = []
    drop: list[str] = []
    for person in people:
        before = entries.get(person.user_id)
        role = roles.get(person.user_id)
        facts = inputs.get(person.user_id)
        name = facts.user_name if facts else person.user_name
        tag = {"hold": hold_id} if person.user_id in applied_ids else {}
        if before is None:  # cannot happen while the hold keeps them; nothing to undo
            continue
        if role is None:
            drop.append(person.user_id)
            events.append(Event("member.left", person.user_id, data={
                "userId": person.user_id, "userName": name, "role": before.role, "reason": person.reason, **tag}))
        elif role != before.role or name != before.user_name:
            put.append(RosterEntry(person.user_id, name, role, before.since))
            if role != before.role:
                events.append(Event("member.role_changed", person.user_id, data={
                    "userId": person.user_id, "userName": name, "from": before.role, "to": role, **tag}))
    tx.holds.settle(hold_id, [p.user_id for p in applied], "applied")
    tx.holds.settle(hold_id, [p.user_id for p in released], "released")
    state = "approved" if applied else "cancelled"
    tx.holds.close(hold_id, state, now, actor)
    events.append(Event(f"hold.{state}", data={"holdId": hold_id, "cause": hold.cause, "count": len(applied)}
                        if applied else {"holdId": hold_id, "cause": hold.cause, "released": len(released)}))
    tx.roster.put(put)
    tx.roster.drop(drop)
    tx.feed.append(events, now, actor)
    return {"id": hold_id, "state": state, "applied": len(applied), "released": len(released)}


def describe(hold: Hold) -> dict[str, Any]:
    return {"id": hold.id, "opened": hold.opened, "cause": hold.cause, "token": hold.actor, "change": hold.change,
            "state": hold.state, "closed": hold.closed, "closedBy": hold.closed_by, "count": hold.count}


class Holds:
    """The holds, for `/api/holds` and `rollcall holds`: list, show, approve."""

    def __init__(self, db: Storage, rules: RoleRules, policy: HoldPolicy) -> None:
        self.db = db
        self.rules = rules
        self.policy = policy

    async def open_holds(self) -> list[dict[str, Any]]:
        return await self.db.read(lambda tx: [describe(h) for h in tx.holds.all_open()])

    async def show(self, hold_id: int) -> dict[str, Any] | None:
        def read(tx: Transaction) -> dict[str, Any] | None:
            hold = tx.holds.get(hold_id)
            if hold is None:
                return None
            people = tx.holds.held_in(hold_id, still_held=False)
            return {**describe(hold), "people": [
                {"id": p.user_id, "userName": p.user_name, "role": p.role, "becomes": p.becomes, "reason": p.reason,
                 "outcome": p.outcome or ("held" if hold.state == "open" else None)} for p in people]}

        return await self.db.read(read)

    async def approve(self, hold_id: int, actor: str, *, leave_no_admin: bool = False) -> dict[str, Any]:
        now = utc_now()
        return await self.db.write(lambda tx: approve(tx, self.rules, self.policy, hold_id, actor=actor, now=now,
                                                    leave_no_admin=leave_no_admin))
