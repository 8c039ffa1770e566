"""The filter and PATCH path parser (RFC 7644 §3.4.2.2): its limits, counted the way README states them."""

from __future__ import annotations

import pytest

from app.protocol import filters
from app.protocol.errors import ScimError
from app.protocol.filters import (
    MAX_FILTER_DEPTH,
    MAX_FILTER_LENGTH,
    MAX_FILTER_TERMS,
    Compare,
    Filter,
    Not,
    parse_filter,
    parse_patch_path,
)


def refused(text: str) -> str:
    with pytest.raises(ScimError) as caught:
        parse_filter(text)
    assert caught.value.status == 400 and caught.value.scim_type == "invalidFilter"
    return caught.value.detail


def nested(levels: int, opening: str = "(", leaf: str = 'userName eq "a"') -> str:
    return opening * levels + leaf + ")" * levels


# -- depth: each pair of parentheses or brackets is one level ---------------------------------------------------

def test_a_filter_nested_exactly_as_deep_as_the_limit_is_accepted() -> None:
    assert MAX_FILTER_DEPTH == 32  # the number README states
    assert parse_filter(nested(32)) == Compare(parse_filter('userName eq "a"').path, "eq", "a")  # type: ignore[union-attr]
    node: Filter = parse_filter(nested(32, "not ("))
    for _ in range(32):
        assert isinstance(node, Not)
        node = node.inner
    assert isinstance(node, Compare)


def test_one_level_deeper_than_the_limit_is_refused_naming_the_limit() -> None:
    assert "deeper than 32 levels" in refused(nested(33))
    assert "deeper than 32 levels" in refused(nested(33, "not ("))


def test_a_value_filter_bracket_is_a_level() -> None:
    parse_filter(nested(31, leaf='emails[type eq "work"]'))
    assert "deeper than 32 levels" in refused(nested(32, leaf='emails[type eq "work"]'))
    assert "deeper than 32 levels" in refused(nested(31, leaf='emails[(type eq "work")]'))


def test_a_patch_path_filter_has_the_same_depth_limit() -> None:
    parse_patch_path("emails[" + nested(31, leaf='type eq "work"') + "].value")  # the brackets are a level
    with pytest.raises(ScimError) as caught:
        parse_patch_path("emails[" + nested(32, leaf='type eq "work"') + "].value")
    assert caught.value.scim_type == "invalidPath" and "deeper than 32 levels" in caught.value.detail


def test_far_too_deep_is_refused_without_exhausting_the_stack() -> None:
    assert "deeper than 32 levels" in refused(nested(2_000))


# -- terms: comparisons, however flat ---------------------------------------------------------------------------

def test_a_flat_chain_of_as_many_comparisons_as_the_limit_is_accepted() -> None:
    assert MAX_FILTER_TERMS == 256
    text = " and ".join(["id pr"] * MAX_FILTER_TERMS)
    assert len(text) <= MAX_FILTER_LENGTH
    parse_filter(text)
    parse_filter(" or ".join(["id pr"] * MAX_FILTER_TERMS))


@pytest.mark.parametrize("joiner", [" and ", " or "])
def test_one_comparison_more_than_the_limit_is_refused_naming_the_limit(joiner: str) -> None:
    detail = refused(joiner.join(["id pr"] * (MAX_FILTER_TERMS + 1)))
    assert f"the limit is {MAX_FILTER_TERMS} per filter" in detail


def test_comparisons_inside_value_filters_count() -> None:
    inner = " or ".join(["type pr"] * (MAX_FILTER_TERMS // 2 + 1))
    assert "the limit is 256 per filter" in refused(f"emails[{inner}] and emails[{inner}]")


# -- strings ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("escape", ["\\udc80", "\\ud800", "\\uDFFF", "a\\ud83d", "\\ude00\\ud83d"])
def test_an_escaped_lone_surrogate_is_invalidFilter_not_a_string(escape: str) -> None:
    # A lone surrogate is no character: UTF-8 cannot encode it, so SQLite raised UnicodeEncodeError (a 500).
    assert "lone surrogate" in refused(f'title co "{escape}"')
    with pytest.raises(ScimError) as caught:
        parse_patch_path(f'emails[value eq "{escape}"]')
    assert caught.value.scim_type == "invalidPath"


def test_an_escaped_surrogate_pair_is_the_character_it_encodes() -> None:
    node = parse_filter('title co "\\ud83d\\ude00 \\u00e9"')
    assert isinstance(node, Compare) and node.value == "\U0001f600 é"


# -- bare (unquoted) values, as Microsoft's Entra test collection and documentation send them ---------------------

@pytest.mark.parametrize(("bare", "quoted"), [
    ("userName sw O", 'userName sw "O"'),
    ("name.familyName eq Employee and (emails.value co example.com or emails.value co example.org)",
     'name.familyName eq "Employee" and (emails.value co "example.com" or emails.value co "example.org")'),
    ("meta.created gt 2015-10-10T14:38:21.8617979-07:00", 'meta.created gt "2015-10-10T14:38:21.8617979-07:00"'),
    ("emails[type eq work].value ew .org", 'emails[type eq "work"].value ew ".org"'),
    ("name.familyName eq O'Brien", "name.familyName eq \"O'Brien\""),
])
def test_a_bare_value_parses_as_the_same_string_in_quotes(bare: str, quoted: str) -> None:
    assert parse_filter(bare) == parse_filter(quoted)


def test_bare_true_false_null_and_numbers_keep_their_json_meaning() -> None:
    assert [parse_filter(f"x eq {word}").value for word in ("true", "False", "null", "42", "-1.5")] == [  # type: ignore[union-attr]
        True, False, None, 42, -1.5]
    assert parse_filter("externalId eq 0042").value == "0042"  # type: ignore[union-attr]  # not a JSON number


@pytest.mark.parametrize("text", [
    "userName eq", "userName eq (x)", 'userName eq ab"c', 'userName eq ab"c"', "userName eq a[b]", "userName eq x y",
    "userName eq 'Employee'", "userName eq a\\u0041", "userName eq \x01x", "userName eq and", "userName eq or",
    "userName eq not", "emails[value eq ]",
])
def test_everything_else_malformed_around_a_value_stays_invalidFilter(text: str) -> None:
    assert refused(text)


# One comparison is read by a single match (filters._one_comparison) before the parser: these must come out as
# the parser makes them, or fail as it fails.
ONE_COMPARISONS = [
    'userName eq "bjensen"', '  userName  EQ  "b jensen"  ', 'externalId eq "x-1"', 'emails.value co "@example.com"',
    'urn:ietf:params:scim:schemas:core:2.0:User:userName sw "a"', 'userName eq "\\u00e9t\\u00e9"',
    'userName eq "say \\"hi\\""', 'userName eq ""', 'meta.lastModified gt "2024-01-01T00:00:00Z"',
    'not eq "x"', 'userName Ne "x"',
]
ONE_COMPARISON_ERRORS = ['userName xx "a"', '.userName eq "a"', 'userName eq "\\udc80"', 'userName eq "a\tb"',
                         'userName eq "\\q"', '1userName eq "a"']


@pytest.mark.parametrize("text", ONE_COMPARISONS)
def test_one_comparison_reads_as_the_parser_reads_it(text: str) -> None:
    parser = filters._Parser(text, filters._ErrorFactory)
    tree = parser.parse_or(in_brackets=False)
    parser.finish()
    assert filters._one_comparison(text) == tree
    assert parse_filter(text) == tree


@pytest.mark.parametrize("text", ONE_COMPARISON_ERRORS)
def test_one_comparison_leaves_the_parser_to_refuse(text: str) -> None:
    assert filters._one_comparison(text) is None
    parser = filters._Parser(text, filters._ErrorFactory)
    with pytest.raises(ScimError) as caught:
        parser.parse_or(in_brackets=False)
        parser.finish()
    assert refused(text) == caught.value.detail
