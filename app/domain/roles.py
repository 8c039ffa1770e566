"""Where a role is decided: role groups are recognised by name, and a user's role is the highest
role among the role groups they are in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from app.protocol.folding import fold_case

# Highest first. A group grants a role when its displayName starts with "<prefix>-<group word>".
ROLES = ("admin", "member", "guest")
GROUP_WORDS = {"admin": "administrators", "member": "members", "guest": "guests"}
DEFAULT_PREFIX = "rollcall"
DEFAULT_ROLE_CHOICES = ("none", "guest", "member")


@dataclass(frozen=True)
class RoleRules:
    prefix: str = DEFAULT_PREFIX
    # The role of an active user in no role group; None keeps them off the roster.
    default_role: str | None = None

    def __post_init__(self) -> None:
        if not self.prefix.strip():
            raise ValueError("--group-prefix must not be empty")
        if self.default_role is not None and self.default_role not in ROLES:
            raise ValueError(f"--default-role must be one of {', '.join(DEFAULT_ROLE_CHOICES)}")

    def group_names(self) -> dict[str, str]:
        """The role → the displayName prefix of its groups, e.g. admin → rollcall-administrators."""
        return {role: f"{self.prefix}-{word}" for role, word in GROUP_WORDS.items()}

    @cached_property
    def _folded_group_names(self) -> tuple[tuple[str, str], ...]:
        # Built once: role_of_group runs for every group of every user the roster settles.
        return tuple((role, fold_case(prefix)) for role, prefix in self.group_names().items())

    def role_of_group(self, display_name: str) -> str | None:
        """The role a group grants, matched by prefix without regard to case; None for any other group."""
        folded = fold_case(display_name)
        for role, prefix in self._folded_group_names:
            if folded.startswith(prefix):
                return role
        return None

    def role_of_user(self, active: bool, group_names: Iterable[str]) -> str | None:
        """The role of a user with these groups: the highest their role groups grant, else the default."""
        if not active:
            return None
        granted = {self.role_of_group(name) for name in group_names} - {None}
        return next((role for role in ROLES if role in granted), self.default_role)

    def fingerprint(self) -> str:
        """Changes whenever the rules would give someone a different role."""
        return f"{fold_case(self.prefix)}|{self.default_role or 'none'}"
