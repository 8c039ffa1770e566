"""Filters and sort orders resolved against a resource type's schema: the parsed query storage is handed.

app/protocol/filters.py parses the client's text into a syntax tree of attribute *paths*; resolution
(app/protocol/filter_resolution.py) looks every path up in schema_defs, refuses what cannot be evaluated (unknown
or hidden attributes, a boolean compared with `gt`, a date that is no xsd:dateTime: every SCIM error a filter or a
sortBy can cause) and coerces each comparison's value to the attribute's type. What comes out is this tree:
engine-neutral, hashable (a search is a cache key), and complete, so that a storage engine compiles it without
knowing SCIM's rules and without ever raising a protocol error.

Semantics every engine keeps (RFC 7644 §3.4.2.2): every node is true or false, never unknown (`not` inverts
exactly, and an absent attribute makes `ne` true and the ordering operators false); string comparisons of a value
with `case_exact` False compare case-folded text (app/protocol/folding.py), and such a Compare's `operand` is
folded already; `co`/`sw`/`ew` are plain substring tests (no wildcards).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from app.protocol.schema_defs import ResourceType

# Where a Value lives.
FIELD = "field"          # an attribute with a place of its own beside the document: see FIELDS
DOCUMENT = "document"    # the resource's JSON document, at `keys`
ELEMENT = "element"      # the element (a JSON object) of the enclosing Some's collection, at `keys`
CONSTANT = "constant"    # the text keys[0], the same for every resource (meta.resourceType, groups.type, ...)
MEMBER_ID = "member.id"  # in Group.members (or a PATCH member filter): the member's user id
GROUP_ID = "group.id"    # in User.groups: the group's id
GROUP_NAME = "group.name"  # in User.groups: the group's displayName (case-insensitive)

# The FIELD names, by resource type: what an engine is expected to keep indexed (userName eq, id eq ...).
FIELDS = {
    "User": frozenset({"id", "externalId", "userName", "active", "created", "lastModified"}),
    "Group": frozenset({"id", "externalId", "displayName", "created", "lastModified"}),
}

# Operators of a Compare: those of RFC 7644 less `eq null` / `ne null`, which resolution turns into `absent` / `pr`.
OPERATORS = frozenset({"eq", "ne", "gt", "ge", "lt", "le", "co", "sw", "ew", "pr", "absent"})


@dataclass(frozen=True)
class Value:
    """One scalar of a resource (or of an element of one of its collections)."""

    source: str             # FIELD, DOCUMENT, ELEMENT, CONSTANT, MEMBER_ID, GROUP_ID or GROUP_NAME
    keys: tuple[str, ...]   # FIELD: (name,); DOCUMENT/ELEMENT: the JSON object keys; CONSTANT: (text,); else ()
    label: str              # how an error or a log names it: "emails.value", "name.givenName"
    type: str = "string"    # the SCIM type: string, boolean, decimal, integer, dateTime, reference, binary
    case_exact: bool = False


@dataclass(frozen=True)
class Collection:
    """A multi-valued attribute, as rows an engine can test one by one."""

    source: str             # DOCUMENT (a JSON array at `keys`), or MEMBER_ID (Group.members) / GROUP_ID (User.groups)
    keys: tuple[str, ...] = ()
    label: str = ""


@dataclass(frozen=True)
class Compare:
    value: Value
    op: str                 # one of OPERATORS
    operand: Any = None     # coerced: bool, int, float, str (folded unless case_exact; a dateTime normalised)


@dataclass(frozen=True)
class All:
    terms: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    terms: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    inner: Node


@dataclass(frozen=True)
class Some:
    """Some element of `collection` satisfies `condition` (whose ELEMENT / MEMBER_ID / GROUP_* values are the
    element's); with no condition, the collection has any element at all."""

    collection: Collection
    condition: Node | None = None


@dataclass(frozen=True)
class Present:
    """The complex attribute at `keys` of the document is present with a value: not null, "", [] or {}."""

    keys: tuple[str, ...]
    label: str = ""


@dataclass(frozen=True)
class Constant:
    """True or false for every resource (an attribute the type lacks, across types; `meta pr`)."""

    truth: bool


Node = Union[Compare, All, AnyOf, Not, Some, Present, Constant]  # noqa: UP007 -- a runtime alias, used before 3.12


@dataclass(frozen=True)
class SortKey:
    """What a sortBy orders by: `value` (None: absent for every resource, so all sort last). Within a
    `collection`, the value of its primary element (the first one when none is primary) for a DOCUMENT
    collection, the smallest value for a membership."""

    value: Value | None
    collection: Collection | None = None


@dataclass(frozen=True)
class SearchQuery:
    """A list query over one resource type: which resources (`filter`, None: all) in which order (`sort`, None:
    the order they were stored in; `descending` reverses the sort value's order, never the tie-break)."""

    resource_type: ResourceType
    filter: Node | None = None
    sort: SortKey | None = None
    descending: bool = False

    def __hash__(self) -> int:
        # A search is a cache key several times a request (its compiled SQL, page hints), and hashing the tree
        # walks all of it: hashed once, then remembered (the dataclass is frozen, so the hash cannot go stale).
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.resource_type, self.filter, self.sort, self.descending))
            object.__setattr__(self, "_hash", cached)
        return cached

    def shape(self) -> list[Any]:
        """What a cursor's fingerprint covers: equal shapes select the same rows in the same order."""
        return [self.resource_type.name, repr(self.filter), repr(self.sort), self.descending]

    def equality(self) -> Compare | None:
        """The filter when it is one `eq` on a FIELD and nothing else (`userName eq "bjensen"`, `externalId eq`,
        `id eq`): the shape of a point search, which an engine may answer from one index (Resources.find)."""
        node = self.filter
        if isinstance(node, Compare) and node.op == "eq" and node.value.source == FIELD:
            return node
        return None
