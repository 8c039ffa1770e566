"""attributes and excludedAttributes lists (app/protocol/attribute_lists.py, RFC 7644 §3.4.2.5)."""

from __future__ import annotations

from app.protocol.attribute_lists import parse_attribute_list


def test_parse_attribute_list_splits_commas_and_treats_blank_as_absent() -> None:
    assert parse_attribute_list("userName, name.givenName") == ["userName", "name.givenName"]
    assert parse_attribute_list(None) is None
    assert parse_attribute_list("") is None
    assert parse_attribute_list(" , ") is None


def test_a_comma_inside_a_value_filter_does_not_split_the_attribute_list() -> None:
    assert parse_attribute_list('userName, emails[value eq "a],b" or type eq work].value ,name.givenName') == [
        "userName", 'emails[value eq "a],b" or type eq work].value', "name.givenName"]
