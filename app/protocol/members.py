"""A Group member as a client writes it, in POST, PUT and PATCH alike: the one parser of a member reference.

Accepted: `{"value": "<user id>"}`, `{"$ref": "https://.../Users/<user id>"}` (when `value` is absent), and the bare
id string `"<user id>"` that some clients send as `"value": "<id>"` or `"members": ["<id>", ...]`. `type`, when
given, must be "User" (rollcall has no nested groups); `display` and other keys are read-only or unknown and
ignored. The id loses surrounding whitespace (what a client pastes, not part of any id rollcall makes) and must
then be non-empty and free of control characters (NUL cannot be stored, and no id contains one).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from app.protocol.errors import describe, invalid_value


class MemberError(ValueError):
    """What is wrong with one member reference: `where` is its sub-attribute (`value`, `type`, `$ref`), or ""
    for the member as a whole; the load schema and PATCH each put the member's position in front."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where} {problem}" if where else problem)
        self.where = where
        self.problem = problem


def _key(member: dict[str, Any], name: str) -> Any:
    # Attribute names are case-insensitive (RFC 7643 §2.1).
    return next((value for key, value in member.items() if isinstance(key, str) and key.lower() == name), None)


def _checked(text: str, where: str) -> str:
    member_id = text.strip()
    if not member_id:
        raise MemberError(where, f"must be a non-empty user id, got {describe(text)}")
    if any(unicodedata.category(char) == "Cc" for char in member_id):
        raise MemberError(where, f"must not contain control characters, got {describe(text)}")
    return member_id


def member_id(raw: Any) -> str:
    """The User id one member reference names; MemberError when it names none."""
    if isinstance(raw, str):
        return _checked(raw, "")
    if not isinstance(raw, dict):
        raise MemberError("", f'must be an object such as {{"value": "<user id>"}} or a user id, got {describe(raw)}')
    kind = _key(raw, "type")
    if kind is not None and (not isinstance(kind, str) or kind.strip().lower() != "user"):
        raise MemberError("type", f'must be "User" (rollcall has no nested groups), got {describe(kind)}')
    value, ref = _key(raw, "value"), _key(raw, "$ref")
    if value is None and isinstance(ref, str):
        segments = ref.strip().rstrip("/").split("/")
        if len(segments) > 1 and segments[-2].lower() != "users":
            raise MemberError("$ref", f"must name a User (.../Users/<id>), got {describe(ref)}")
        return _checked(segments[-1], "$ref")
    if value is None:
        raise MemberError("value", "is required (the user's id)")
    if not isinstance(value, str):
        raise MemberError("value", f"must be a non-empty user id, got {describe(value)}")
    return _checked(value, "value")


def member_ids(raw: Any) -> tuple[str, ...]:
    """The ids of one member reference or a list of them, de-duplicated, in order; a 400 invalidValue ScimError
    naming the member otherwise. A null (unassigned, RFC 7643 §2.5) names nobody, in the list or instead of it."""
    members = raw if isinstance(raw, list) else [raw]
    ids: dict[str, None] = {}  # ordered and de-duplicated in one step
    for index, member in enumerate(members):
        if member is None:
            continue
        try:
            ids[member_id(member)] = None
        except MemberError as error:
            where = f"members[{index}].{error.where}" if error.where else f"members[{index}]"
            raise invalid_value(f"{where} {error.problem}") from None
    return tuple(ids)
