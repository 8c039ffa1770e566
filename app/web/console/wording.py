"""What the console says: times, events and why a person has their role, as sentences a person reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _moment(stored: str | None) -> datetime | None:
    if not stored:
        return None
    try:
        return datetime.fromisoformat(stored)
    except ValueError:
        return None


def day(stored: str | None) -> str:
    """`3 Nov 2026` from a stored timestamp."""
    moment = _moment(stored)
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}" if moment else ""


def when(stored: str | None) -> str:
    """`3 Nov 2026, 14:05 UTC` from a stored timestamp."""
    moment = _moment(stored)
    return f"{day(stored)}, {moment:%H:%M} UTC" if moment else ""


def _name(event: dict[str, Any]) -> str:
    return str(event.get("userName") or event.get("displayName") or event.get("userId") or event.get("groupId")
               or "someone")


def _groups(event: dict[str, Any]) -> str:
    groups = event.get("groups") or []
    return f" (through {', '.join(groups)})" if groups else ""


def describe_event(event: dict[str, Any]) -> str:
    """One line for a change-feed event, e.g. `ann joined as admin (through rollcall-administrators)`."""
    kind = event["type"]
    name = _name(event)
    held = f", from hold {event['hold']}" if event.get("hold") else ""
    if kind == "member.joined":
        return f"{name} joined as {event.get('role')}{_groups(event)}"
    if kind == "member.left":
        reason = str(event.get("reason") or "").replace("-", " ")
        return f"{name} left (was {event.get('role')}{'; ' + reason if reason else ''}{held})"
    if kind == "member.role_changed":
        return f"{name} changed from {event.get('from')} to {event.get('to')}{_groups(event)}{held}"
    if kind == "hold.opened":
        count = event.get("count", 0)
        return (f"hold {event.get('holdId')} opened ({event.get('cause')}): {count} "
                f"{'person' if count == 1 else 'people'} kept until a person approves")
    if kind in ("hold.approved", "hold.cancelled"):
        return f"hold {event.get('holdId')} {kind.split('.')[1]}"
    if kind in ("group.member_added", "group.member_removed"):
        group = event.get("groupName") or event.get("groupId")
        user = event.get("userName") or event.get("userId")
        return f"{user} added to group {group}" if kind.endswith("added") else f"{user} removed from group {group}"
    if kind == "group.members_skipped":
        return f"group {name}: {event.get('skippedCount', 0)} unknown member ids skipped"
    family, _, verb = kind.partition(".")
    return f"{family} {name} {verb.replace('_', ' ')}"


def why(person: dict[str, Any], joined: dict[str, str] | None = None) -> str:
    """The one-sentence reason for a person's role, from RosterReader.explain and when they joined each group
    (group id -> time): e.g. `admin because member of rollcall-administrators since 3 Nov 2026; also in
    rollcall-members`. Without a time for the granting group, `since` is when they joined the roster."""
    name = person.get("displayName") or person.get("userName") or person["id"]
    groups = person.get("groups") or []
    role = person.get("role")
    granting_groups = [g for g in groups if g.get("grants") == role] if role else []
    granting = [g["displayName"] for g in granting_groups]
    others = [g["displayName"] for g in groups if g not in granting_groups]
    also = f"; also in {', '.join(others)}" if others else ""
    times = sorted((joined or {}).get(g["id"], "") for g in granting_groups)
    earliest = next((t for t in times if t), None) or person.get("since")
    since = f" since {day(earliest)}" if earliest else ""
    if person.get("status") == "held":
        hold = person.get("hold") or {}
        return (f"{role} while hold {hold.get('id')} keeps them: the change that would remove them waits for a "
                f"person's approval{also}")
    if role and granting:
        return f"{role} because member of {', '.join(granting)}{since}{also}"
    if role:
        return f"{role} by default: in no role group{since}{also}"
    if not person.get("active", True):
        return f"no role: {name} is deactivated in the identity provider{also}"
    return f"no role: in no role group{also}"
