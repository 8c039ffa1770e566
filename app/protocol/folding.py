"""The one case rule for values compared without regard to case (an attribute with caseExact false).

Every comparison that ignores case — filters compiled to SQL (the `scim_fold` function), PATCH value filters and
value removal, `attributes=emails[...]` projection, the uniqueness keys of userName and displayName, and the role
a group's displayName grants — folds with this function, so a value that matches in one of them matches in all.
Unicode full case folding (`ß` → `ss`, `ﬁ` → `fi`), not `str.lower()`: "STRASSE@x" and "straße@x" are the same
address to a person, and lower() keeps them apart.
"""

from __future__ import annotations


def fold_case(text: str) -> str:
    """`text` as compared without regard to case."""
    return text.casefold()
