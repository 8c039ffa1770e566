"""Forward auth: may this person in, and with which role? Asked by a reverse proxy on every request, so it is
two index lookups on the event loop's own connection and writes nothing."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.roles import ROLES
from app.protocol.folding import fold_case
from app.storage.interface import Storage


@dataclass(frozen=True)
class Verdict:
    """A member (user_id, user_name, role set) or a refusal (`refusal` says why, for the person who reads it)."""

    user_id: str | None = None
    user_name: str | None = None
    role: str | None = None
    refusal: str | None = None


def parse_min_role(raw: str | None) -> str | None:
    """`?min_role=`: one of the roles, or None when absent; ValueError naming the choices otherwise."""
    if raw is None or raw == "":
        return None
    if raw not in ROLES:
        raise ValueError(f"min_role must be one of {', '.join(reversed(ROLES))}, not {raw!r}.")
    return raw


def at_least(role: str, minimum: str) -> bool:
    return ROLES.index(role) <= ROLES.index(minimum)  # ROLES lists the highest first


async def decide(db: Storage, identity: str, min_role: str | None) -> Verdict:
    """Whether the person named `identity` (a userName or any e-mail, in any case) is a member with `min_role`
    or above."""
    named = await db.lookup(lambda tx: tx.roster.users_named(fold_case(identity)))
    # A userName names one user; an e-mail may be on several, and then it names none of them for certain.
    by_name = [user for user in named if user.by_user_name]
    candidates = by_name or named
    if not candidates:
        return Verdict(refusal="No user has this userName or e-mail.")
    if len(candidates) > 1:
        return Verdict(refusal="This e-mail belongs to more than one user; name the person by userName.")
    user = candidates[0]
    if user.role is None:
        return Verdict(refusal="This user is not a member (deactivated, or in no role group).")
    if min_role is not None and not at_least(user.role, min_role):
        return Verdict(refusal=f"This member's role is {user.role}; {min_role} or above is needed.")
    return Verdict(user.user_id, user.user_name, user.role)
