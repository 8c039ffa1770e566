"""The one parser of a Group member reference (app.protocol.members)."""

from __future__ import annotations

import pytest

from app.protocol.errors import ScimError
from app.protocol.members import MemberError, member_id, member_ids


def test_every_accepted_spelling_names_the_same_id() -> None:
    spellings = ["u1", " u1 ", {"value": "u1"}, {"VALUE": "\tu1\n", "type": "User"}, {"$ref": "https://x/Users/u1/"},
                 {"$ref": "u1"}, {"value": "u1", "display": "Barbara", "$ref": "https://x/Users/other"}]
    assert {member_id(spelling) for spelling in spellings} == {"u1"}


def test_ids_are_deduplicated_in_order_and_null_names_nobody() -> None:
    assert member_ids(["b", {"value": "a"}, None, " b "]) == ("b", "a")
    assert member_ids("a") == ("a",)
    assert member_ids(None) == ()
    assert member_ids([]) == ()


@pytest.mark.parametrize(("raw", "detail"), [
    ([{"value": "u1"}, {"value": "u\x00"}], 'members[1].value must not contain control characters, got "u\\u0000"'),
    ({"value": "u1", "type": "Group"}, 'members[0].type must be "User" (rollcall has no nested groups), got "Group"'),
    ({"$ref": "https://x/Groups/g1"}, 'members[0].$ref must name a User (.../Users/<id>), got "https://x/Groups/g1"'),
    ([" "], 'members[0] must be a non-empty user id, got " "'),
    ([3], 'members[0] must be an object such as {"value": "<user id>"} or a user id, got 3'),
])
def test_a_bad_reference_is_invalidValue_naming_the_member_and_the_problem(raw: object, detail: str) -> None:
    with pytest.raises(ScimError) as caught:
        member_ids(raw)
    assert (caught.value.status, caught.value.scim_type, caught.value.detail) == (400, "invalidValue", detail)


def test_one_reference_raises_a_member_error_for_the_caller_to_place() -> None:
    with pytest.raises(MemberError) as caught:
        member_id({"display": "x"})
    assert (caught.value.where, caught.value.problem) == ("value", "is required (the user's id)")
