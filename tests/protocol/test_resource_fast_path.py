"""The fast path of resource loading (resource_loading.load_fast) against the marshmallow schema it stands in for.

Whenever the fast path answers, its document must be exactly the schema's (same keys, same order, same values);
whenever the schema refuses a body, the fast path must not answer. The bodies are generated from schema_defs:
every loadable attribute (and readOnly, writeOnly and unknown ones), names in any letter case, extensions by URN
and by qualified name, and values of every JSON kind, right and wrong.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.protocol.errors import ScimError
from app.protocol.resource_loading import load_fast, load_resource, load_with_schema
from app.protocol.schema_defs import COMMON_ATTRIBUTES, GROUP_RESOURCE, USER_RESOURCE, Attribute, ResourceType

EXAMPLES = settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def _cased(name: str) -> st.SearchStrategy[str]:
    """`name` as written, lower-cased, upper-cased, or with random letters flipped."""
    flipped = st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda flips: "".join(c.swapcase() if f else c for c, f in zip(name, flips, strict=True)))
    return st.one_of(st.just(name), st.just(name), st.just(name.lower()), st.just(name.upper()), flipped)


def _mostly(right: st.SearchStrategy[Any], wrong: st.SearchStrategy[Any], odds: int = 10) -> st.SearchStrategy[Any]:
    """`right`, but one time in `odds` `wrong` (one_of weighs its branches as it pleases)."""
    return st.integers(0, odds - 1).flatmap(lambda draw: wrong if draw == 0 else right)


_TEXT = _mostly(st.sampled_from(["a", "Ann", "a@example.com", "2024-01-02T03:04:05Z", "MIIB", "u1", " u2 "]),
                st.one_of(st.sampled_from(["", " ", "x\x00y", "true", "False"]), st.text(max_size=8)), 3)
_SCALAR = st.one_of(_TEXT, st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False, width=16), st.none())


def _right(attribute: Attribute) -> st.SearchStrategy[Any]:
    if attribute.type == "boolean":
        return st.one_of(st.booleans(), st.sampled_from(["true", "False", "TRUE", "yes"]))
    return _TEXT


def _value_of(attribute: Attribute, depth: int = 0) -> st.SearchStrategy[Any]:
    """A value for `attribute`: mostly of the right shape, sometimes of any other."""
    if attribute.is_complex and depth < 2:
        sub = _object_of(attribute.sub_attributes, depth + 1)
        one = _mostly(sub, _SCALAR)
    else:
        one = _mostly(_right(attribute), _SCALAR)
    if attribute.multi_valued:
        return _mostly(st.lists(_mostly(one, st.none(), 6), max_size=3), one)
    return _mostly(one, st.one_of(st.lists(_SCALAR, max_size=2), st.dictionaries(_TEXT, _SCALAR, max_size=2)))


def _object_of(attributes: tuple[Attribute, ...], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    entries = [st.tuples(_cased(a.name), _value_of(a, depth)) for a in attributes]
    entries.append(st.tuples(st.sampled_from(["unknown", "schemas", "id"]), _SCALAR))
    return st.lists(st.one_of(*entries), max_size=len(attributes) + 1).map(dict)


def _bodies(resource_type: ResourceType) -> st.SearchStrategy[dict[str, Any]]:
    core = (*COMMON_ATTRIBUTES, *resource_type.schema.attributes)
    entries = [st.tuples(_cased(a.name), _value_of(a)) for a in core]
    entries.append(st.tuples(st.sampled_from(["schemas", "unknown", "password"]), _SCALAR))
    entries.append(st.tuples(st.just(f"{resource_type.schema.id}:displayName"), _TEXT))
    for extension in resource_type.extensions:
        entries.append(st.tuples(_cased(extension.id), _object_of(extension.attributes, 1)))
        entries.extend(st.tuples(st.just(f"{extension.id}:{a.name}"), _value_of(a, 1)) for a in extension.attributes)
    name = "userName" if resource_type is USER_RESOURCE else "displayName"
    # The required attribute first (usually valid), then anything: many bodies get past the required check.
    required = st.tuples(st.just(name), _mostly(st.sampled_from(["ann", "Bo Lee"]), _SCALAR, 5))
    return st.tuples(st.lists(required, min_size=1, max_size=1), st.lists(st.one_of(*entries), max_size=6)).map(
        lambda parts: dict([*parts[0], *parts[1]]))


def _general(resource_type: ResourceType, body: dict[str, Any]) -> dict[str, Any] | ScimError:
    try:
        return load_with_schema(resource_type, body)
    except ScimError as error:
        return error


def _agree(resource_type: ResourceType, body: dict[str, Any]) -> None:
    fast = load_fast(resource_type, body)
    if fast is None:
        return
    general = _general(resource_type, body)
    assert not isinstance(general, ScimError), f"the fast path accepted what the schema refuses: {general.detail}"
    assert list(fast.items()) == list(general.items())  # the same document, in the same order


@EXAMPLES
@given(_bodies(USER_RESOURCE))
def test_users_load_as_the_schema_loads_them(body: dict[str, Any]) -> None:
    _agree(USER_RESOURCE, body)


@EXAMPLES
@given(_bodies(GROUP_RESOURCE))
def test_groups_load_as_the_schema_loads_them(body: dict[str, Any]) -> None:
    _agree(GROUP_RESOURCE, body)


# What identity providers send: each must take the fast path (or it is not one) and load as the schema loads it.
COMMON_BODIES = [
    (USER_RESOURCE, {"schemas": [USER_RESOURCE.schema.id], "userName": "bench-user-000001",
                     "externalId": "ext-bench-user-000001", "name": {"givenName": "Bench", "familyName": "User 1"},
                     "displayName": "Bench User 1", "active": True,
                     "emails": [{"value": "bench-user-000001@example.com", "type": "work", "primary": True}]}),
    # Okta: meta and id the server owns, a password it must not keep, groups it ignores.
    (USER_RESOURCE, {"schemas": [USER_RESOURCE.schema.id], "id": "x", "userName": "ann@example.com",
                     "name": {"givenName": "Ann", "familyName": "Lee", "formatted": None}, "locale": "en-US",
                     "password": "secret", "active": "True", "groups": [],
                     "emails": [{"primary": True, "value": "ann@example.com", "type": "work"}],
                     "meta": {"resourceType": "User"}}),
    # Entra: the enterprise extension, by URN and by qualified name.
    (USER_RESOURCE, {"schemas": [USER_RESOURCE.schema.id], "UserName": "bo@example.com", "active": False,
                     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                         "department": "Ops", "manager": {"value": "m1"}},
                     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42",
                     "phoneNumbers": [{"value": "+1 555", "type": "mobile"}], "title": "Engineer"}),
    (GROUP_RESOURCE, {"schemas": [GROUP_RESOURCE.schema.id], "displayName": "Engineering",
                      "members": [{"value": "u1"}, {"value": "u2", "display": "Bo"}, "u1"]}),
    (GROUP_RESOURCE, {"displayName": "Empty", "members": []}),
]


@pytest.mark.parametrize(("resource_type", "body"), COMMON_BODIES)
def test_common_bodies_take_the_fast_path(resource_type: ResourceType, body: dict[str, Any]) -> None:
    fast = load_fast(resource_type, body)
    assert fast is not None
    assert list(fast.items()) == list(load_with_schema(resource_type, body).items())
    assert load_resource(resource_type, body, fast=True) == fast


@pytest.mark.parametrize("body", [
    {"userName": ""},  # required and empty
    {"userName": "a", "emails": [{"value": "a", "primary": True}, {"value": "b", "primary": True}]},
    {"userName": "a", "USERNAME": "b"},  # given twice
    {"userName": "a", "name": "Ann"},  # a complex attribute without a value sub-attribute, as a string
    {"userName": "a\x00b"},
    {"userName": "a", "x509Certificates": [{"value": "not base64!"}]},  # binary: left to the schema
])
def test_what_the_schema_refuses_the_fast_path_leaves_to_it(body: dict[str, Any]) -> None:
    assert load_fast(USER_RESOURCE, body) is None
    with pytest.raises(ScimError) as refused:
        load_resource(USER_RESOURCE, body, fast=True)
    assert refused.value.detail == _general(USER_RESOURCE, body).detail  # type: ignore[union-attr]
