"""SCIM filters resolved (app/protocol/filter_resolution.py) and compiled to SQL, RFC 7644 §3.4.2.2, checked on
both engines with the same cases: SQLite (app/storage/sqlite/compiler.py, a real file built from schema.sql) and
PostgreSQL (app/storage/postgres/compiler.py, a real server's database built from schema.postgres.sql). The `db`
fixture is one engine's database holding USERS and GROUPS; the few tests of one compiler's own SQL say so."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.protocol.errors import ScimError
from app.protocol.filter_resolution import resolve_filter, resolve_member_filter, resolve_sort
from app.protocol.filters import MAX_FILTER_DEPTH, And, Filter, Not, Or, parse_filter
from app.protocol.schema_defs import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_RESOURCE,
    USER_RESOURCE,
    Attribute,
    ResourceType,
    Schema,
)
from app.storage.postgres import compiler as pg_compiler
from app.storage.postgres.transaction import fold_document
from app.storage.sqlite import compiler
from app.storage.sqlite.functions import register_functions
from tests.postgres_server import PostgresServer

SQLITE_PLAN = pytest.mark.engines("sqlite", reason="SQLite's query plans of compiled filters")


def compile_filter(resource_type: ResourceType, node: Filter, absent_unknown: bool = False) -> tuple[str, list[Any]]:
    return compiler.compile_filter(resource_type, resolve_filter(resource_type, node, absent_unknown))


def compile_sort(resource_type: ResourceType, sort_by: str) -> str:
    return compiler.compile_sort(resource_type, resolve_sort(resource_type, sort_by))


def compile_member_filter(node: Filter) -> tuple[str, list[Any]]:
    return compiler.compile_member_filter(resolve_member_filter(node))


SCHEMA_SQL = Path(__file__).resolve().parents[2] / "schema.sql"

USERS: list[dict[str, Any]] = [
    {
        "id": "u1", "last_modified": "2011-05-13T04:42:34.000000Z", "created": "2010-01-01T00:00:00.000000Z",
        "doc": {
            "userName": "Bjensen", "externalId": "bjensen-ext", "displayName": "Babs Jensen", "active": True,
            "title": "Tour Guide", "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "bjensen@Example.com", "type": "work", "primary": True},
                       {"value": "babs@jensen.org", "type": "home"}],
            ENTERPRISE_USER_SCHEMA: {"department": "Tour Operations", "employeeNumber": "701984",
                                     "manager": {"value": "u2"}},
        },
    },
    {
        "id": "u2", "last_modified": "2011-05-13T04:42:34.500000Z", "created": "2011-01-01T00:00:00.000000Z",
        "doc": {
            "userName": "jsmith", "externalId": "JSMITH-EXT", "active": False, "title": "",
            "name": {"givenName": "John", "familyName": "Smith"},
            "emails": [{"value": "john@acme.com", "type": "work"},
                       {"value": "jsmith@Gmail.com", "type": "home", "primary": True}],
            "phoneNumbers": [{"value": "555-0100", "type": "work"}],
        },
    },
    {
        "id": "u3", "last_modified": "2020-01-01T00:00:00.000000Z", "created": "2012-01-01T00:00:00.000000Z",
        "doc": {
            "userName": "AJones", "active": True, "name": {"givenName": "Alice"},
            "emails": [{"value": "alice@home.net", "type": "work"}, {"value": "alice@acme.org", "type": "home"}],
            ENTERPRISE_USER_SCHEMA: {"department": "Engineering"},
        },
    },
    {
        "id": "u4", "last_modified": "2010-01-01T00:00:00.000000Z", "created": "2009-01-01T00:00:00.000000Z",
        "doc": {"userName": "Straße", "active": True, "name": {}, "emails": [], "nickName": "100%_sure"},
    },
]

GROUPS: list[dict[str, Any]] = [
    {"id": "g1", "doc": {"displayName": "Tour Guides", "externalId": "TG"}, "members": ["u1", "u2"]},
    {"id": "g2", "doc": {"displayName": "Admins"}, "members": ["u3"]},
    {"id": "g3", "doc": {"displayName": "Empty"}, "members": []},
]


def _sqlite_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_SQL.read_text())
    register_functions(conn)
    for user in USERS:
        doc = user["doc"]
        conn.execute(
            "INSERT INTO users (id, user_name, user_name_key, external_id, display_name, active, doc, created,"
            " last_modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (user["id"], doc["userName"], doc["userName"].casefold(), doc.get("externalId"), doc.get("displayName"),
             int(doc["active"]), json.dumps(doc), user["created"], user["last_modified"]))
    for group in GROUPS:
        doc = group["doc"]
        conn.execute(
            "INSERT INTO groups (id, display_name, display_name_key, external_id, doc, created, last_modified)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (group["id"], doc["displayName"], doc["displayName"].casefold(), doc.get("externalId"), json.dumps(doc),
             "2015-01-01T00:00:00.000000Z", "2015-01-01T00:00:00.000000Z"))
        for member in group["members"]:
            conn.execute("INSERT INTO group_members (group_id, user_id, added) VALUES (?, ?, ?)",
                         (group["id"], member, "2015-01-01T00:00:00.000000Z"))
    conn.commit()
    return conn


def _postgres_db(url: str) -> Any:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    for user in USERS:
        doc = user["doc"]
        conn.execute(
            "INSERT INTO users (id, user_name, user_name_key, external_id, display_name, active, doc, doc_folded,"
            " created, last_modified) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (user["id"], doc["userName"], doc["userName"].casefold(), doc.get("externalId"), doc.get("displayName"),
             int(doc["active"]), json.dumps(doc), json.dumps(fold_document(doc)), user["created"],
             user["last_modified"]))
    for group in GROUPS:
        doc = group["doc"]
        conn.execute(
            "INSERT INTO groups (id, display_name, display_name_key, external_id, doc, doc_folded, created,"
            " last_modified) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (group["id"], doc["displayName"], doc["displayName"].casefold(), doc.get("externalId"), json.dumps(doc),
             json.dumps(fold_document(doc)), "2015-01-01T00:00:00.000000Z", "2015-01-01T00:00:00.000000Z"))
        for member in group["members"]:
            conn.execute("INSERT INTO group_members (group_id, user_id, added) VALUES (%s, %s, %s)",
                         (group["id"], member, "2015-01-01T00:00:00.000000Z"))
    return conn


@dataclass
class Loaded:
    """USERS and GROUPS in one engine's database, and that engine's compiler."""

    engine: str
    conn: Any

    @property
    def mark(self) -> str:  # the engine's parameter placeholder
        return "?" if self.engine == "sqlite" else "%s"

    def where(self, resource_type: ResourceType, node: Filter) -> tuple[str, list[Any]]:
        resolved = resolve_filter(resource_type, node)
        if self.engine == "sqlite":
            return compiler.compile_filter(resource_type, resolved)
        return pg_compiler.compile_filter(resource_type, resolved)

    def sort(self, resource_type: ResourceType, sort_by: str) -> tuple[str, list[Any]]:
        key = resolve_sort(resource_type, sort_by)
        if self.engine == "sqlite":
            return compiler.compile_sort(resource_type, key), []
        return pg_compiler.compile_sort(resource_type, key)

    def member_where(self, node: Filter) -> tuple[str, list[Any]]:
        resolved = resolve_member_filter(node)
        if self.engine == "sqlite":
            return compiler.compile_member_filter(resolved)
        return pg_compiler.compile_member_filter(resolved)

    def rows(self, sql: str, params: list[Any]) -> list[Any]:
        return list(self.conn.execute(sql, params).fetchall())


@pytest.fixture
def db(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Loaded]:
    if engine == "sqlite":
        conn = _sqlite_db(tmp_path / "rollcall.db")
    else:
        conn = _postgres_db(request.getfixturevalue("postgres_url"))
    yield Loaded(engine, conn)
    conn.close()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> sqlite3.Connection:
    """SQLite alone: for the tests of its compiler's own SQL (its parser's limits, its query plans)."""
    return _sqlite_db(tmp_path / "rollcall.db")


def select(db: Loaded, text: str, resource_type: ResourceType = USER_RESOURCE) -> set[str]:
    where, params = db.where(resource_type, parse_filter(text))
    table = "users" if resource_type is USER_RESOURCE else "groups"
    # Every row must evaluate to exactly true or false (0 or 1): a NULL would make NOT and OR lie.
    values = db.rows(f"SELECT r.id, ({where}) FROM {table} r", params)
    assert all(value in (0, 1) and value is not None for _, value in values), (text, where, values)
    return {row_id for row_id, value in values if value == 1}


def users(db: Loaded, text: str) -> set[str]:
    return select(db, text, USER_RESOURCE)


def groups(db: Loaded, text: str) -> set[str]:
    return select(db, text, GROUP_RESOURCE)


def rejected(text: str, resource_type: ResourceType = USER_RESOURCE) -> ScimError:
    with pytest.raises(ScimError) as caught:
        compile_filter(resource_type, parse_filter(text))
    assert caught.value.status == 400
    assert caught.value.scim_type == "invalidFilter"
    return caught.value


# -- operators -----------------------------------------------------------------------------------


def test_rfc7644_3_4_2_2_eq_is_case_insensitive_for_userName(db: Loaded) -> None:
    assert users(db, 'userName eq "bjensen"') == {"u1"}
    assert users(db, 'userName eq "BJENSEN"') == {"u1"}


def test_userName_eq_uses_unicode_casefolding_not_ascii_lower(db: Loaded) -> None:
    assert users(db, 'userName eq "STRASSE"') == {"u4"}


def test_rfc7644_3_4_2_2_co_is_case_insensitive_for_userName(db: Loaded) -> None:
    assert users(db, 'userName co "JEN"') == {"u1"}


def test_sw_and_ew_match_prefix_and_suffix_case_insensitively(db: Loaded) -> None:
    assert users(db, 'userName sw "J"') == {"u2"}
    assert users(db, 'userName ew "ONES"') == {"u3"}
    assert users(db, 'userName ew "bjensenx"') == set()


def test_co_sw_ew_treat_percent_and_underscore_literally_unlike_like(db: Loaded) -> None:
    assert users(db, 'userName co "%"') == set()
    assert users(db, 'userName sw "_"') == set()
    assert users(db, 'nickName co "0%_s"') == {"u4"}


def test_empty_substring_matches_every_present_value(db: Loaded) -> None:
    assert users(db, 'displayName co ""') == {"u1"}


def test_ne_is_true_when_the_attribute_is_absent(db: Loaded) -> None:
    assert users(db, 'title ne "tour guide"') == {"u2", "u3", "u4"}


def test_gt_ge_lt_le_order_case_insensitive_strings_by_their_folded_form(db: Loaded) -> None:
    assert users(db, 'userName gt "c"') == {"u2", "u4"}
    assert users(db, 'userName ge "JSMITH"') == {"u2", "u4"}
    assert users(db, 'userName lt "Bjensen"') == {"u3"}
    assert users(db, 'userName le "bjensen"') == {"u1", "u3"}


def test_externalId_is_case_exact(db: Loaded) -> None:
    assert users(db, 'externalId eq "jsmith-ext"') == set()
    assert users(db, 'externalId eq "JSMITH-EXT"') == {"u2"}
    assert groups(db, 'externalId eq "tg"') == set()
    assert groups(db, 'externalId eq "TG"') == {"g1"}


def test_id_is_case_exact(db: Loaded) -> None:
    assert users(db, 'id eq "U1"') == set()
    assert users(db, 'id eq "u1"') == {"u1"}


def test_attribute_names_and_operators_are_case_insensitive(db: Loaded) -> None:
    assert users(db, 'USERNAME EQ "bjensen"') == {"u1"}
    assert users(db, 'Emails[TYPE eq "work" and Value co "acme"]') == {"u2"}


def test_urn_qualified_core_attributes_resolve(db: Loaded) -> None:
    assert users(db, 'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen"') == {"u1"}
    assert users(db, 'urn:ietf:params:scim:schemas:core:2.0:User:id eq "u2"') == {"u2"}


def test_values_are_bound_parameters_not_sql(db: Loaded) -> None:
    where, params = compile_filter(USER_RESOURCE, parse_filter('userName eq "x\' OR 1=1 --"'))
    assert "OR 1=1" not in where
    assert params == ["x' or 1=1 --"]
    assert users(db, 'userName eq "x\' OR 1=1 --"') == set()


# -- logical operators ---------------------------------------------------------------------------


def test_and_binds_tighter_than_or(db: Loaded) -> None:
    assert users(db, 'userName eq "ajones" or userName eq "bjensen" and title pr') == {"u1", "u3"}


def test_parentheses_override_precedence(db: Loaded) -> None:
    assert users(db, '(userName eq "ajones" or userName eq "bjensen") and title pr') == {"u1"}


def test_not_inverts_a_parenthesised_filter(db: Loaded) -> None:
    assert users(db, 'not (userName eq "ajones" or userName eq "bjensen")') == {"u2", "u4"}


def test_not_includes_rows_where_the_attribute_is_null(db: Loaded) -> None:
    assert users(db, 'not (externalId eq "bjensen-ext")') == {"u2", "u3", "u4"}
    assert users(db, 'not (name.familyName eq "jensen")') == {"u2", "u3", "u4"}
    assert users(db, 'not (title co "guide")') == {"u2", "u3", "u4"}
    assert users(db, 'not (meta.lastModified gt "2011-05-13T04:42:34Z")') == {"u1", "u4"}


# -- shape: SQLite's parser stack holds about 100 entries, and the SQL must fit it ---------------------------

_ALL_USERS = {user["id"] for user in USERS}
_LEAVES = ['userName eq "bjensen"', 'title co "guide"', "externalId pr", 'emails.type eq "home"',
           'emails[type eq "work" and value co "acme"]', 'name[givenName sw "a"]', "phoneNumbers pr",
           'meta.lastModified gt "2011-05-13T04:42:34Z"', f'{ENTERPRISE_USER_SCHEMA}:department co "o"']


def oracle(db: Loaded, node: Filter) -> set[str]:
    """Which users match, with SQL asked about one comparison at a time and the logic done here in sets."""
    if isinstance(node, And):
        return oracle(db, node.left) & oracle(db, node.right)
    if isinstance(node, Or):
        return oracle(db, node.left) | oracle(db, node.right)
    if isinstance(node, Not):
        return _ALL_USERS - oracle(db, node.inner)
    where, params = db.where(USER_RESOURCE, node)
    return {row[0] for row in db.rows(f"SELECT r.id FROM users r WHERE {where}", params)}


def spine(levels: int, step: Callable[[int, str], str], leaf: str = 'title co "guide"') -> str:
    """A filter `levels` deep: `step` wraps the text once per level (its parentheses are that level)."""
    text = leaf
    for level in range(levels):
        text = step(level, text)
    return text


@pytest.mark.parametrize("joiner", [" and ", " or "])
def test_a_flat_chain_far_longer_than_the_parser_stack_runs(db: Loaded, joiner: str) -> None:
    # ((a AND b) AND c)... nested once per term: SQLite's "parser stack overflow" (a 500) from ~100 terms on.
    assert users(db, joiner.join(["userName pr"] * 200)) == _ALL_USERS
    ids = ["u1", "u2", "u3", "nobody"] * 50
    expected = _ALL_USERS - {"u4"} if joiner == " or " else set()
    assert users(db, joiner.join(f'id eq "{user_id}"' for user_id in ids)) == expected


def test_a_flat_chain_is_one_n_ary_expression() -> None:
    where, params = compile_filter(USER_RESOURCE, parse_filter(" and ".join(['title eq "x"'] * 200)))
    depth = deepest = 0
    for char in where:
        depth += {"(": 1, ")": -1}.get(char, 0)
        deepest = max(deepest, depth)
    assert deepest == 4 and where.count(" AND ") == 199 and len(params) == 200


_SHAPES: dict[str, Callable[[int, str], str]] = {
    "and-or alternating, comparison first": lambda n, t: f'title co "g" {"and" if n % 2 else "or"} ({t})',
    "and-or alternating, nesting first": lambda n, t: f'({t}) {"or" if n % 2 else "and"} externalId pr',
    "not": lambda n, t: f"not ({t})",
    "not of a chain": lambda n, t: f'not (userName eq "jsmith" {"or" if n % 2 else "and"} {t})',
}


@pytest.mark.parametrize("shape", _SHAPES)
@pytest.mark.parametrize("leaf", ['title co "guide"', 'emails[type eq "work" and not (value co "acme")]'])
def test_filters_nested_to_the_limit_run_and_mean_what_they_say(db: Loaded, shape: str,
                                                                 leaf: str) -> None:
    levels = MAX_FILTER_DEPTH - (1 if leaf.startswith("emails[") else 0) - (1 if "not (" in leaf else 0)
    text = spine(levels, _SHAPES[shape], leaf)
    node = parse_filter(text)
    assert users(db, text) == oracle(db, node)


def test_a_value_filter_nested_to_the_limit_runs(db: Loaded) -> None:
    inner = spine(MAX_FILTER_DEPTH - 1, lambda n, t: f'value co "a" and not ({t})' if n % 2
                  else f'type eq "work" or ({t})', 'value co "o"')
    text = f"emails[{inner}]"
    assert users(db, text) == oracle(db, parse_filter(text))


_FILTERS = st.recursive(
    st.sampled_from(_LEAVES),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" and ", " or "]), inner).map(lambda t: f"({t[0]}){t[1]}({t[2]})"),
        st.lists(inner, min_size=2, max_size=5).map(" and ".join),
        st.lists(inner, min_size=2, max_size=5).map(" or ".join),
        inner.map(lambda t: f"not ({t})"),
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_FILTERS)
def test_the_sql_has_the_boolean_structure_of_the_filter(db: Loaded, text: str) -> None:
    # Flattening, reordering the deepest operand first and pushing `not` down must never change the answer.
    try:
        node = parse_filter(text)
    except ScimError:
        assume(False)  # deeper than the limit: not a filter
        raise
    assert users(db, text) == oracle(db, node), text


# -- presence and null ---------------------------------------------------------------------------


def test_pr_is_false_for_absent_and_empty_string(db: Loaded) -> None:
    assert users(db, "title pr") == {"u1"}


def test_not_pr_matches_users_without_the_attribute(db: Loaded) -> None:
    assert users(db, "not (title pr)") == {"u2", "u3", "u4"}


def test_pr_is_false_for_empty_arrays_and_objects(db: Loaded) -> None:
    assert users(db, "emails pr") == {"u1", "u2", "u3"}
    assert users(db, "name pr") == {"u1", "u2", "u3"}
    assert users(db, "phoneNumbers pr") == {"u2"}


def test_pr_on_sub_attributes(db: Loaded) -> None:
    assert users(db, "name.familyName pr") == {"u1", "u2"}
    assert users(db, "emails.primary pr") == {"u1", "u2"}
    assert users(db, "externalId pr") == {"u1", "u2"}


def test_eq_null_means_not_present_and_ne_null_means_present(db: Loaded) -> None:
    assert users(db, "title eq null") == {"u2", "u3", "u4"}
    assert users(db, "title ne null") == {"u1"}


# -- booleans, dates -----------------------------------------------------------------------------


def test_boolean_accepts_true_false_and_their_strings_in_any_case(db: Loaded) -> None:
    assert users(db, "active eq true") == {"u1", "u3", "u4"}
    assert users(db, 'active eq "True"') == {"u1", "u3", "u4"}
    assert users(db, 'active eq "FALSE"') == {"u2"}
    assert users(db, "active ne true") == {"u2"}


def test_boolean_sub_attribute_in_json_compares_as_one_or_zero(db: Loaded) -> None:
    assert users(db, "emails.primary eq true") == {"u1", "u2"}
    assert users(db, 'emails[type eq "home" and primary eq "true"]') == {"u2"}


def test_meta_lastModified_gt_compares_instants(db: Loaded) -> None:
    assert users(db, 'meta.lastModified gt "2011-05-13T04:42:34Z"') == {"u2", "u3"}
    assert users(db, 'meta.lastModified ge "2011-05-13T04:42:34Z"') == {"u1", "u2", "u3"}
    assert users(db, 'meta.lastModified lt "2011-05-13T04:42:34Z"') == {"u4"}
    assert users(db, 'meta.lastModified le "2011-05-13T04:42:34.5Z"') == {"u1", "u2", "u4"}


def test_dates_with_an_offset_are_normalised_to_utc(db: Loaded) -> None:
    assert users(db, 'meta.lastModified gt "2011-05-13T06:42:34+02:00"') == {"u2", "u3"}
    assert users(db, 'meta.lastModified eq "2011-05-13T06:42:34.500+02:00"') == {"u2"}


def test_meta_created_and_resourceType(db: Loaded) -> None:
    assert users(db, 'meta.created lt "2011-06-01T00:00:00Z"') == {"u1", "u2", "u4"}
    assert users(db, 'meta.resourceType eq "User"') == {"u1", "u2", "u3", "u4"}
    assert groups(db, 'meta.resourceType eq "User"') == set()
    assert groups(db, 'meta.resourceType eq "Group"') == {"g1", "g2", "g3"}


# -- sub-attributes, multi-valued and extension attributes -------------------------------------------


def test_sub_attribute_of_a_single_valued_complex_attribute(db: Loaded) -> None:
    assert users(db, 'name.familyName eq "jensen"') == {"u1"}
    assert users(db, 'name[givenName sw "j"]') == {"u2"}


def test_emails_value_is_case_insensitive(db: Loaded) -> None:
    assert users(db, 'emails.value eq "BJENSEN@example.com"') == {"u1"}


def test_multi_valued_attribute_without_sub_attribute_means_its_value(db: Loaded) -> None:
    assert users(db, 'emails eq "john@acme.com"') == {"u2"}
    assert users(db, 'emails co "acme"') == {"u2", "u3"}


def test_complex_filter_requires_one_value_to_match_every_condition(db: Loaded) -> None:
    # u3 has a work email and an @acme email, but not one email that is both.
    assert users(db, 'emails[type eq "work" and value co "@acme"]') == {"u2"}


def test_non_rfc_value_path_with_trailing_sub_attribute(db: Loaded) -> None:
    assert users(db, 'emails[type eq "work"].value eq "alice@home.net"') == {"u3"}
    assert users(db, 'emails[type eq "work"].value eq "alice@acme.org"') == set()


def test_ne_on_a_multi_valued_sub_attribute_means_no_value_equals(db: Loaded) -> None:
    assert users(db, 'emails.value ne "john@acme.com"') == {"u1", "u3", "u4"}


def test_ne_inside_a_value_filter_is_per_value(db: Loaded) -> None:
    assert users(db, 'emails[type ne "work"]') == {"u1", "u2", "u3"}


def test_two_value_filters_on_the_same_attribute_are_independent(db: Loaded) -> None:
    assert users(db, 'emails[type eq "work" and value co "acme"] or emails[type eq "home" and value ew ".org"]') \
        == {"u1", "u2", "u3"}
    assert users(db, 'emails[value co "acme"] and not (emails[value co "gmail"])') == {"u3"}


def test_urn_qualified_enterprise_attributes(db: Loaded) -> None:
    urn = ENTERPRISE_USER_SCHEMA
    assert users(db, f'{urn}:department eq "tour operations"') == {"u1"}
    assert users(db, f'{urn}:manager.value eq "u2"') == {"u1"}
    assert users(db, f"{urn}:department pr") == {"u1", "u3"}
    assert users(db, f"{urn}:manager pr") == {"u1"}
    # Without the URN, department is not a core User attribute.
    rejected('department eq "Engineering"')


def test_user_groups_come_from_memberships(db: Loaded) -> None:
    assert users(db, 'groups.value eq "g1"') == {"u1", "u2"}
    assert users(db, 'groups eq "g2"') == {"u3"}
    assert users(db, 'groups.display eq "ADMINS"') == {"u3"}
    assert users(db, "groups pr") == {"u1", "u2", "u3"}
    assert users(db, 'groups.value ne "g1"') == {"u3", "u4"}
    assert users(db, 'groups[display co "tour" and type eq "direct"]') == {"u1", "u2"}


def test_group_displayName_eq_is_case_insensitive(db: Loaded) -> None:
    assert groups(db, 'displayName eq "tour guides"') == {"g1"}
    assert groups(db, 'displayName co "MIN"') == {"g2"}


def test_group_members_filters(db: Loaded) -> None:
    assert groups(db, 'members.value eq "u3"') == {"g2"}
    assert groups(db, 'members eq "u1"') == {"g1"}
    assert groups(db, "members pr") == {"g1", "g2"}
    assert groups(db, "not (members pr)") == {"g3"}
    assert groups(db, 'members[value eq "u2" and type eq "user"]') == {"g1"}


# -- rejected filters ------------------------------------------------------------------------------


def test_unknown_attribute_is_invalid_filter() -> None:
    assert "foo" in rejected('foo eq "x"').detail
    assert "nosuch" in rejected('emails.nosuch eq "x"').detail
    rejected('urn:example:unknown:schema:foo eq "x"')


def test_password_is_invalid_filter() -> None:
    assert "password" in rejected('password eq "secret"').detail
    rejected("password pr")


def test_complex_attribute_without_sub_attribute_is_invalid_filter() -> None:
    assert "name.formatted" in rejected('name eq "x"').detail
    rejected('addresses eq "x"')
    rejected('meta eq "x"')


def test_ordering_a_boolean_is_invalid_filter() -> None:
    assert "active" in rejected("active gt true").detail
    rejected('emails.primary lt "true"')
    rejected("active co true")


def test_non_boolean_value_for_a_boolean_is_invalid_filter() -> None:
    rejected('active eq "yes"')


def test_unparseable_date_is_invalid_filter() -> None:
    assert "meta.lastModified" in rejected('meta.lastModified gt "yesterday"').detail
    rejected("meta.created gt 5")
    rejected('meta.created co "2011"')


def test_meta_location_and_version_are_invalid_filter() -> None:
    rejected('meta.location eq "x"')
    rejected('meta.version eq "W/1"')


def test_ordering_against_null_is_invalid_filter() -> None:
    rejected("title gt null")


def test_wrong_value_type_for_a_string_is_invalid_filter() -> None:
    rejected("userName eq true")


def test_sub_attributes_that_membership_cannot_answer_are_invalid_filter() -> None:
    rejected('members.$ref eq "x"', GROUP_RESOURCE)
    rejected('groups.$ref eq "x"')


def test_value_filter_paths_must_name_sub_attributes() -> None:
    rejected('emails[userName eq "x"]')
    rejected('userName[value eq "x"]')


# -- sorting -----------------------------------------------------------------------------------------


def sorted_ids(db: Loaded, sort_by: str, descending: bool = False,
               resource_type: ResourceType = USER_RESOURCE) -> list[str]:
    expr, params = db.sort(resource_type, sort_by)
    table = "users" if resource_type is USER_RESOURCE else "groups"
    direction = "DESC" if descending else "ASC"
    return [row[0] for row in db.rows(
        f"SELECT r.id FROM {table} r ORDER BY ({expr}) IS NULL, ({expr}) {direction}, r.id", [*params, *params])]


def test_sort_by_userName_is_case_insensitive(db: Loaded) -> None:
    assert sorted_ids(db, "userName") == ["u3", "u1", "u2", "u4"]
    assert sorted_ids(db, "USERNAME", descending=True) == ["u4", "u2", "u1", "u3"]


def test_sort_by_sub_attribute_puts_absent_values_last(db: Loaded) -> None:
    assert sorted_ids(db, "name.familyName") == ["u1", "u2", "u3", "u4"]
    assert sorted_ids(db, "name.givenName", descending=True) == ["u2", "u1", "u3", "u4"]


def test_sort_by_multi_valued_uses_the_primary_value_else_the_first(db: Loaded) -> None:
    # u1 primary bjensen@..., u2 primary jsmith@gmail.com, u3 first alice@home.net, u4 none.
    assert sorted_ids(db, "emails") == ["u3", "u1", "u2", "u4"]
    assert sorted_ids(db, "emails.value") == ["u3", "u1", "u2", "u4"]


def test_sort_by_dates_and_extension_attributes(db: Loaded) -> None:
    assert sorted_ids(db, "meta.lastModified") == ["u4", "u1", "u2", "u3"]
    assert sorted_ids(db, f"{ENTERPRISE_USER_SCHEMA}:department") == ["u3", "u1", "u2", "u4"]


def test_sort_groups_by_displayName(db: Loaded) -> None:
    assert sorted_ids(db, "displayName", resource_type=GROUP_RESOURCE) == ["g2", "g3", "g1"]


@pytest.mark.parametrize("sort_by", ["nosuch", "name", "password", "meta.version", "emails.nosuch", "not a path"])
def test_sort_by_unknown_or_unsortable_attribute_is_invalid_value(sort_by: str) -> None:
    with pytest.raises(ScimError) as caught:
        compile_sort(USER_RESOURCE, sort_by)
    assert caught.value.status == 400
    assert caught.value.scim_type == "invalidValue"


# -- PATCH members[...] --------------------------------------------------------------------------------


def member_ids(db: Loaded, group_id: str, text: str) -> set[str]:
    where, params = db.member_where(parse_filter(text))
    rows = db.rows(f"SELECT m.user_id, ({where}) FROM group_members m WHERE m.group_id = {db.mark}",
                   [*params, group_id])
    assert all(value in (0, 1) and value is not None for _, value in rows)
    return {user_id for user_id, value in rows if value == 1}


def test_member_filter_value_is_the_user_id(db: Loaded) -> None:
    assert member_ids(db, "g1", 'value eq "u2"') == {"u2"}
    assert member_ids(db, "g1", 'value eq "U2"') == set()
    assert member_ids(db, "g1", 'value ne "u2"') == {"u1"}


def test_member_display_is_not_in_the_group_schema_so_not_filterable() -> None:
    with pytest.raises(ScimError) as caught:
        compile_member_filter(parse_filter('display eq "babs jensen"'))
    assert caught.value.scim_type == "invalidFilter"


def test_member_filter_type_is_always_user(db: Loaded) -> None:
    assert member_ids(db, "g1", 'type eq "User"') == {"u1", "u2"}
    assert member_ids(db, "g1", 'type eq "User" and not (value eq "u1")') == {"u2"}


def test_member_filter_rejects_ref_and_unknown_sub_attributes() -> None:
    for text in ('$ref eq "x"', 'userName eq "x"'):
        with pytest.raises(ScimError) as caught:
            compile_member_filter(parse_filter(text))
        assert caught.value.scim_type == "invalidFilter"


# -- query plans -----------------------------------------------------------------------------------------


def plan(conn: sqlite3.Connection, table: str, text: str, resource_type: ResourceType) -> str:
    where, params = compile_filter(resource_type, parse_filter(text))
    rows = conn.execute(f"EXPLAIN QUERY PLAN SELECT r.id FROM {table} r WHERE {where}", params).fetchall()
    return "\n".join(row[-1] for row in rows)


@SQLITE_PLAN
def test_userName_eq_uses_the_user_name_key_index(sqlite_db: sqlite3.Connection) -> None:
    assert "USING INDEX users_user_name_key" in plan(sqlite_db, "users", 'userName eq "bjensen"', USER_RESOURCE)


@SQLITE_PLAN
def test_members_value_eq_uses_the_group_members_primary_key(sqlite_db: sqlite3.Connection) -> None:
    text = plan(sqlite_db, "groups", 'members.value eq "u1"', GROUP_RESOURCE)
    assert "SEARCH gm1 USING PRIMARY KEY (group_id=? AND user_id=?)" in text


@SQLITE_PLAN
def test_group_displayName_eq_uses_the_display_name_key_index(sqlite_db: sqlite3.Connection) -> None:
    assert "USING INDEX groups_display_name_key" in plan(sqlite_db, "groups", 'displayName eq "x"', GROUP_RESOURCE)


@pytest.mark.parametrize(("table", "text", "resource_type", "indexes"), [
    ("users", 'userName eq "bjensen"', USER_RESOURCE, ("users_user_name_key",)),
    ("groups", 'displayName eq "x"', GROUP_RESOURCE, ("groups_display_name_key",)),
    # Either index with user_id: the planner may start from the member (by_user) or probe each group (pkey).
    ("groups", 'members.value eq "u1"', GROUP_RESOURCE, ("group_members_pkey", "group_members_by_user")),
])
def test_postgres_point_filters_can_use_their_indexes(postgres_url: str, table: str, text: str,
                                                      resource_type: ResourceType, indexes: tuple[str, ...]) -> None:
    # Four rows make a scan the cheapest plan; with scans priced out, an index the filter can use must be chosen.
    conn = _postgres_db(postgres_url)
    try:
        conn.execute("SET enable_seqscan = off")
        where, params = pg_compiler.compile_filter(resource_type, resolve_filter(resource_type, parse_filter(text)))
        rows = conn.execute(f"EXPLAIN SELECT r.id FROM {table} r WHERE {where}", params).fetchall()
        shown = "\n".join(row[0] for row in rows)
        assert any(index in shown for index in indexes), shown
    finally:
        conn.close()


# -- numbers (no standard attribute is numeric, so a made-up schema exercises them) ------------------------

_THING = ResourceType("Thing", "/Things", "Thing", Schema("urn:example:Thing", "Thing", "Thing", (
    Attribute("age", "integer"), Attribute("score", "decimal"),
)))


def _thing_matches(doc: dict[str, Any], text: str, server: PostgresServer | None = None) -> bool:
    if server is None:
        conn: Any = sqlite3.connect(":memory:")
        register_functions(conn)
        where, params = compile_filter(_THING, parse_filter(text))
        row = conn.execute(f"SELECT ({where}) FROM (SELECT ? AS doc) r", [*params, json.dumps(doc)]).fetchone()
    else:
        import psycopg

        conn = psycopg.connect(server.url("postgres"))
        resolved = resolve_filter(_THING, parse_filter(text))
        where, params = pg_compiler.compile_filter(_THING, resolved)
        row = conn.execute(f"SELECT ({where}) FROM (SELECT %s::jsonb AS doc, %s::jsonb AS doc_folded) r",
                           [*params, json.dumps(doc), json.dumps(fold_document(doc))]).fetchone()
    conn.close()
    assert row is not None and row[0] in (0, 1) and row[0] is not None
    return bool(row[0])


def test_integers_and_decimals_compare_numerically(engine: str, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue("postgres_server") if engine == "postgresql" else None

    def thing_matches(doc: dict[str, Any], text: str) -> bool:
        return _thing_matches(doc, text, server)

    assert thing_matches({"age": 10}, "age gt 9")
    assert not thing_matches({"age": 10}, "age gt 10")
    assert thing_matches({"age": 10}, "age ge 9.5")
    assert thing_matches({"score": 2.5}, 'score lt "10"')  # as text "10" < "2.5"; numerically it is not
    assert not thing_matches({}, "age lt 100")
    assert thing_matches({}, "age ne 1")


def test_substring_operators_on_numbers_are_invalid_filter() -> None:
    with pytest.raises(ScimError) as caught:
        compile_filter(_THING, parse_filter("age co 1"))
    assert caught.value.scim_type == "invalidFilter"
    with pytest.raises(ScimError):
        compile_filter(_THING, parse_filter('age eq "old"'))


def test_meta_value_filter_uses_the_columns(db: Loaded) -> None:
    assert users(db, 'meta[created lt "2010-06-01T00:00:00Z" and resourceType eq "User"]') == {"u1", "u4"}
    assert users(db, "meta pr") == {"u1", "u2", "u3", "u4"}
