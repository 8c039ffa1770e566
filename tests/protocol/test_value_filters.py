"""Value filters evaluated in memory (app/protocol/value_filters.py, RFC 7644 §3.4.2.2), as PATCH paths and
projections use them."""

from __future__ import annotations

from typing import Any

import pytest

from app.protocol.filters import parse_filter
from app.protocol.schema_defs import GROUP_RESOURCE, Attribute
from app.protocol.value_filters import matches
from tests.protocol.conftest import (
    EMAILS,
    scim_error,
)


def value_filter(text: str) -> Any:
    node = parse_filter(f"emails[{text}]")
    return node.filter  # type: ignore[union-attr]


WORK = {"value": "BJensen@Work.example.com", "type": "work", "primary": True}


@pytest.mark.parametrize(("text", "expected"), [
    ('type eq "WORK"', True),
    ('value eq "bjensen@work.example.com"', True),
    ('value co "@work."', True),
    ('value sw "bjen"', True),
    ('value ew ".COM"', True),
    ('type ne "work"', False),
    ("display pr", False),
    ("type pr", True),
    ("primary eq true", True),
    ('type eq "work" and not (primary eq false)', True),
    ('type eq "home" or value sw "b"', True),
    ('type gt "home"', True),
    ('type lt "home"', False),
    ('display eq "x"', False),
    ('display ne "x"', True),
    ("display eq null", True),
])
def test_value_filter_evaluation(text: str, expected: bool) -> None:
    assert matches(value_filter(text), WORK, EMAILS) is expected


def test_value_filter_on_boolean_coerces_strings_and_rejects_ordering() -> None:
    assert matches(value_filter("primary eq true"), {"primary": "True"}, EMAILS) is True
    error = scim_error(matches, value_filter("primary gt false"), WORK, EMAILS)
    assert error.scim_type == "invalidFilter"


def test_value_filter_naming_unknown_sub_attribute_raises_invalid_filter() -> None:
    error = scim_error(matches, value_filter('label eq "x"'), WORK, EMAILS)
    assert (error.status, error.scim_type) == (400, "invalidFilter")


def test_value_filter_respects_case_exact_sub_attributes() -> None:
    members = GROUP_RESOURCE.schema.attribute("members")
    assert members is not None
    node = parse_filter('members[value eq "ABC"]').filter  # type: ignore[union-attr]
    assert matches(node, {"value": "abc"}, members) is True  # members.value is not caseExact
    tokens = Attribute("tokens", "complex", multi_valued=True,
                       sub_attributes=(Attribute("value", case_exact=True),))
    node = parse_filter('tokens[value eq "ABC"]').filter  # type: ignore[union-attr]
    assert matches(node, {"value": "abc"}, tokens) is False
    assert matches(node, {"value": "ABC"}, tokens) is True
