"""Bad input: whatever a client sends, rollcall answers without a 5xx, every error is a SCIM Error body with the
scimType RFC 7644 defines, and the server stays healthy.

The property tests generate filters, PATCH bodies, resource bodies, query parameters and headers (valid pieces
and garbage) and send them to one `rollcall serve` process shared by the whole module, through a synchronous
HTTP client. The named cases below them pin down the answer to specific inputs.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ENTERPRISE, GROUP_SCHEMA, PATCH_OP, USER_SCHEMA, Scim
from tests.reliability.conftest import ServedDatabase, assert_scim_error
from tests.reliability.test_malformed_http import assert_secret_absent, exchange, parse

# Examples per property; raise it for a longer hunt, e.g. RELIABILITY_EXAMPLES=2000 pytest tests/reliability.
EXAMPLES = int(os.environ.get("RELIABILITY_EXAMPLES", "150"))
BOUNDED = settings(max_examples=EXAMPLES, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                          HealthCheck.function_scoped_fixture])
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

# Inputs tried per property, printed at the end of each property test (run pytest with -s to see them).
tried: dict[str, int] = {}


class Http:
    """A synchronous client of the module's server that checks the error contract on every answer."""

    def __init__(self, served: ServedDatabase) -> None:
        self.token = served.token
        self.client = httpx2.Client(base_url=served.server.origin, timeout=30)

    def send(self, method: str, path: str, *, body: Any = None, raw: bytes | None = None,
             params: Any = None, headers: dict[str, str] | None = None, auth: bool = True) -> httpx2.Response:
        sent_headers = {"Content-Type": "application/scim+json"} if body is not None or raw is not None else {}
        if auth:
            sent_headers["Authorization"] = f"Bearer {self.token}"
        sent_headers.update(headers or {})
        content = raw if raw is not None else json.dumps(body).encode() if body is not None else None
        url = path if path.startswith("/api") else f"/scim/v2{path}"
        response = self.client.request(method, url, content=content, params=params, headers=sent_headers)
        sent = " ".join(str(part) for part in (path, params, headers, body)) + (raw or b"").decode("utf-8", "replace")
        assert response.status_code < 500, f"{method} {path} -> {response.status_code}: {response.text[:500]}"
        if response.status_code >= 400 and method != "HEAD":
            assert_scim_error(response.status_code, response.headers, response.text, sent=sent)
        return response

    def healthy(self) -> None:
        assert self.send("GET", "/Users?count=1").status_code == 200


@pytest.fixture(scope="module")
def http(module_server: ServedDatabase) -> Iterator[Http]:
    client = Http(module_server)
    yield client
    client.client.close()


@pytest.fixture(scope="module")
def targets(http: Http) -> dict[str, str]:
    """A User and a Group for PATCH and PUT to work on."""
    user = http.send("POST", "/Users", body={"schemas": [USER_SCHEMA], "userName": "target",
                                             "emails": [{"value": "t@example.com", "type": "work"}]})
    member = http.send("POST", "/Users", body={"schemas": [USER_SCHEMA], "userName": "member"})
    group = http.send("POST", "/Groups", body={"schemas": [GROUP_SCHEMA], "displayName": "rollcall-members",
                                               "members": [{"value": member.json()["id"]}]})
    assert user.status_code == member.status_code == group.status_code == 201
    return {"user": user.json()["id"], "member": member.json()["id"], "group": group.json()["id"]}


def run_property(name: str, strategy: st.SearchStrategy[Any], check: Callable[[Any], None], http: Http) -> None:
    tried[name] = 0

    @BOUNDED
    @given(strategy)
    def prop(example: Any) -> None:
        tried[name] += 1
        check(example)

    prop()
    http.healthy()
    print(f"\n[bad input] {name}: {tried[name]} generated inputs tried, no 5xx")


# -- strategies ---------------------------------------------------------------------------------------------------

garbage = st.text(max_size=80)
wordy = st.text(alphabet=st.sampled_from('abcdeuUNmr.:$[]()"\\ -_0129é\x00\t'), max_size=40)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | garbage
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(garbage | st.sampled_from(["value", "type", "primary"]), inner,
                                             max_size=4), max_leaves=12)

ATTRIBUTES = ["userName", "name.familyName", "name", "emails", "emails.value", "emails.type", "emails.primary",
              "active", "meta.created", "meta.lastModified", "meta.resourceType", "title", "displayName", "id",
              "externalId", "groups", "groups.value", "groups.display", "members", "members.value", "password",
              "x509Certificates.value", "addresses.postalCode", "nope", "name.nope",
              f"{USER_SCHEMA}:userName", f"{ENTERPRISE}:department", f"{ENTERPRISE}:manager.value",
              f"{ENTERPRISE}:manager"]
OPERATORS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "EQ", "Co", "xx", "=="]

attribute_paths = st.sampled_from(ATTRIBUTES) | wordy
filter_values = (garbage.map(json.dumps) | st.integers().map(str) | st.floats(allow_nan=False).map(repr)
                 | st.sampled_from(["true", "false", "null", '"2024-01-01T00:00:00Z"', '"unterminated', "1e999"])
                 | wordy)


def _filters() -> st.SearchStrategy[str]:
    comparison = st.builds(lambda a, o, v: f"{a} {o} {v}", attribute_paths, st.sampled_from(OPERATORS), filter_values)
    present = attribute_paths.map(lambda a: f"{a} pr")
    leaf = comparison | present
    return st.recursive(leaf, lambda inner: st.one_of(
        st.builds(lambda a, b, j: f"{a} {j} {b}", inner, inner, st.sampled_from(["and", "or", "AND", "xor"])),
        inner.map(lambda f: f"not ({f})"),
        inner.map(lambda f: f"({f})"),
        st.builds(lambda a, f: f"{a}[{f}]", attribute_paths, inner),
        st.builds(lambda a, f, s: f"{a}[{f}].{s} eq \"x\"", attribute_paths, inner, st.sampled_from(["value", "x"])),
    ), max_leaves=6) | garbage | wordy


filters = _filters()


def _patch_bodies() -> st.SearchStrategy[Any]:
    paths = (st.none() | attribute_paths
             | st.builds(lambda a, f: f"{a}[{f}]", st.sampled_from(["emails", "members", "addresses", "name"]), filters)
             | st.builds(lambda f: f"emails[{f}].value", filters))
    ops = st.sampled_from(["add", "replace", "remove", "Add", "REPLACE", "Remove", "delete", ""]) | json_scalars
    operation = st.fixed_dictionaries({"op": ops}, optional={"path": paths, "value": json_values})
    operation = operation | st.dictionaries(garbage, json_values, max_size=3) | json_scalars
    well_formed = st.fixed_dictionaries({"schemas": st.just([PATCH_OP]) | json_values,
                                         "Operations": st.lists(operation, max_size=4) | json_values})
    return well_formed | json_values


def _resource_bodies() -> st.SearchStrategy[Any]:
    keys = st.sampled_from(["schemas", "userName", "displayName", "name", "emails", "active", "members", "groups",
                            "id", "meta", "externalId", "password", "title", "phoneNumbers", "addresses",
                            ENTERPRISE, f"{ENTERPRISE}:manager", "x509Certificates", "USERNAME"]) | garbage
    shaped = st.dictionaries(keys, json_values, max_size=6)
    return shaped | json_values


def _query_parameters() -> st.SearchStrategy[dict[str, str]]:
    numbers = st.integers(min_value=-(10 ** 20), max_value=10 ** 20).map(str) | garbage
    names = st.sampled_from(ATTRIBUTES) | garbage
    return st.fixed_dictionaries({}, optional={
        "startIndex": numbers, "count": numbers, "sortBy": names, "sortOrder": garbage | st.sampled_from(
            ["ascending", "descending", "DESCENDING"]),
        "attributes": st.lists(names, max_size=3).map(",".join),
        "excludedAttributes": st.lists(names, max_size=3).map(",".join), "filter": filters,
    })


header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


# -- properties ---------------------------------------------------------------------------------------------------

def test_generated_filters_are_answered_or_rejected_as_invalidFilter(http: Http, targets: dict[str, str]) -> None:
    def check(text: str) -> None:
        for path in ("/Users", "/Groups"):
            response = http.send("GET", path, params={"filter": text})
            assert response.status_code in (200, 400), response.text
            if response.status_code == 400:
                assert response.json()["scimType"] == "invalidFilter", response.text
        response = http.send("POST", "/.search", body={"schemas": [SEARCH_REQUEST], "filter": text})
        assert response.status_code in (200, 400), response.text

    run_property("filters", filters, check, http)


def test_generated_patch_bodies_never_fail_the_server(http: Http, targets: dict[str, str]) -> None:
    def check(body: Any) -> None:
        for path in (f"/Users/{targets['user']}", f"/Groups/{targets['group']}"):
            response = http.send("PATCH", path, body=body)
            assert response.status_code in (200, 400, 409), response.text

    run_property("PATCH bodies", _patch_bodies(), check, http)


def test_generated_resource_bodies_never_fail_the_server(http: Http, targets: dict[str, str]) -> None:
    def check(body: Any) -> None:
        for method, path in (("POST", "/Users"), ("POST", "/Groups"), ("PUT", f"/Users/{targets['user']}"),
                             ("PUT", f"/Groups/{targets['group']}"), ("POST", "/Users/.search")):
            response = http.send(method, path, body=body)
            assert response.status_code in (200, 201, 400, 409), response.text

    run_property("resource bodies", _resource_bodies(), check, http)


def test_generated_query_parameters_never_fail_the_server(http: Http, targets: dict[str, str]) -> None:
    def check(params: dict[str, str]) -> None:
        for path in ("/Users", "/Groups", f"/Users/{targets['user']}"):
            response = http.send("GET", path, params=params)
            assert response.status_code in (200, 400), response.text
        events = http.send("GET", "/api/events", params={"after": params.get("startIndex", ""),
                                                         "limit": params.get("count", "")})
        assert events.status_code in (200, 400), events.text

    run_property("query parameters", _query_parameters(), check, http)


def test_generated_headers_never_fail_the_server(http: Http, targets: dict[str, str]) -> None:
    headers = st.fixed_dictionaries({}, optional={
        "Content-Type": header_text | st.sampled_from(["application/scim+json", "application/json; charset=latin-1",
                                                       "multipart/form-data", "application/scim+json; x"]),
        "Authorization": header_text | st.builds(lambda s: f"Bearer {s}", header_text),
        "If-Match": header_text | st.sampled_from(["*", 'W/"1"', '"1"', "W/", ",,,"]),
        "If-None-Match": header_text | st.sampled_from(["*", 'W/"1"']),
        "Accept": header_text,
    }).map(lambda sent: {name: value.strip() for name, value in sent.items()})  # HTTP trims them anyway

    def check(sent: dict[str, str]) -> None:
        patch = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "t"}]}
        for method, path, body in (("GET", f"/Users/{targets['user']}", None),
                                   ("PATCH", f"/Users/{targets['user']}", patch),
                                   ("POST", "/Users/.search", {"schemas": [SEARCH_REQUEST]})):
            response = http.send(method, path, body=body, headers=sent, auth="Authorization" not in sent)
            if "Authorization" in sent:
                assert response.status_code == 401, response.text
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
            else:
                assert response.status_code in (200, 304, 400, 412, 415), response.text

    run_property("headers", headers, check, http)


def test_generated_raw_bytes_never_fail_the_server(http: Http, targets: dict[str, str]) -> None:
    raw = st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()) | st.sampled_from([
        b"NaN", b'{"userName": "nan", "active": NaN}', b'{"userName": Infinity}', b"[" * 5000 + b"]" * 5000,
        b'{"userName": "x", "name": ' + b"[" * 900 + b"]" * 900 + b"}"])

    def check(body: bytes) -> None:
        for method, path in (("POST", "/Users"), ("PATCH", f"/Users/{targets['user']}"), ("POST", "/.search")):
            response = http.send(method, path, raw=body)
            assert response.status_code in (200, 201, 400, 409), response.text

    run_property("raw bodies", raw, check, http)


def _raw_requests(token: str, user_id: str) -> st.SearchStrategy[bytes]:
    """Whole HTTP/1.1 requests built from bytes: header names and values (control characters, non-UTF-8, the
    real token with junk after it), line endings and folding, content codings, and body framings that lie."""
    secret = token.encode()
    names = st.sampled_from([b"Authorization", b"Content-Type", b"Content-Encoding", b"Transfer-Encoding",
                             b"Content-Length", b"Host", b"If-Match", b"X-Request-Id"]) | st.binary(min_size=1,
                                                                                                  max_size=12)
    values = (st.binary(max_size=40)
              | st.builds(lambda junk: b"Bearer " + secret + junk, st.binary(max_size=4))
              | st.sampled_from([b"gzip", b"deflate, gzip", b"br", b"identity", b"chunked", b"chunked, gzip",
                                 b"application/scim+json", b"-1", b"99999999999999999999", b"Bearer \xff",
                                 b"Bearer " + secret]))
    endings = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r\n "])  # CRLF, bare LF, a folded line
    header = st.builds(lambda n, v, e: n + b": " + v + e, names, values, endings)
    payload = (st.binary(max_size=64) | st.just(b'{"userName": "raw"}').map(gzip.compress)
               | st.just(b'{"userName": "raw"}'))
    framing = st.sampled_from(["length", "short length", "chunked", "broken chunked", "none"])
    method = st.sampled_from([b"GET", b"POST", b"PATCH", b"PUT", b"DELETE", b"G\x01T"])
    path = st.sampled_from([b"/scim/v2/Users", b"/scim/v2/Users/" + user_id.encode(), b"/scim/v2/.search",
                            b"/healthz", b"/scim/v2/Users?filter=userName%20eq%20%22%ED%A0%80%22", b"/\xff"])

    def build(method: bytes, path: bytes, headers: list[bytes], auth: bool, body: bytes, framing: str) -> bytes:
        head = method + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(headers)
        if auth:
            head += b"Authorization: Bearer " + secret + b"\r\n"
        if framing == "length":
            return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        if framing == "short length":  # the rest is read as the next request: garbage
            return head + b"Content-Length: %d\r\n\r\n" % (len(body) // 2) + body
        if framing == "chunked":
            return head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
        if framing == "broken chunked":
            return head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + body + b"\r\n0\r\n\r\n"
        return head + b"\r\n"

    return st.builds(build, method, path, st.lists(header, max_size=4), st.booleans(), payload, framing)


def test_generated_raw_http_never_gets_a_500_and_never_logs_the_token(module_server: ServedDatabase,
                                                                      targets: dict[str, str]) -> None:
    port = module_server.server.port
    statuses: dict[int, int] = {}

    def check(request: bytes) -> None:
        received = exchange(port, request, timeout=1.5)
        if not received:
            return  # the server closed the connection, or waits for bytes that will never come
        status, headers, body = parse(received)
        statuses[status] = statuses.get(status, 0) + 1
        assert status < 500, f"{request[:300]!r} -> {status}: {body[:300]}"
        assert headers.get("Server") == "rollcall"
        assert_secret_absent(module_server.token, body)
        if status >= 400 and not request.startswith(b"HEAD"):
            assert_scim_error(status, headers, body, sent=request.decode("latin-1"))

    raw_settings = settings(BOUNDED, max_examples=min(EXAMPLES, 80))
    raw_settings(given(_raw_requests(module_server.token, targets["user"]))(check))()
    time.sleep(0.3)  # the server's last log lines
    log = module_server.server.output()
    assert_secret_absent(module_server.token, log)
    assert "Traceback" not in log, log[-3000:]
    print(f"\n[bad input] raw HTTP requests: answers by status {dict(sorted(statuses.items()))}, no 5xx, "
          "no token byte in the log")


# -- named cases --------------------------------------------------------------------------------------------------

async def _error(answer: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert answer.status == status, answer.body
    body = assert_scim_error(answer.status, answer.headers, json.dumps(answer.body))
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


@pytest.mark.parametrize("raw,scim_type", [
    (b"{not json", "invalidSyntax"),
    (b'{"userName": "\xff\xfe"}', "invalidSyntax"),
    (b"[1, 2]", "invalidSyntax"),
    (b'"just a string"', "invalidSyntax"),
    (b"null", "invalidSyntax"),
    (b"[" * 100_000 + b"]" * 100_000, "invalidSyntax"),
    (b'{"userName": "deep", "name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "invalidSyntax"),
    (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "invalidSyntax"),
])
async def test_malformed_and_deeply_nested_bodies_are_400(scim: Scim, raw: bytes, scim_type: str) -> None:
    for method, path in (("POST", "/Users"), ("PUT", "/Users/x"), ("PATCH", "/Groups/x"), ("POST", "/.search")):
        await _error(await scim.request(method, path, raw=raw), 400, scim_type)
    assert (await scim.get("/Users")).status == 200


async def test_moderately_nested_json_inside_a_valid_body_is_not_a_500(scim: Scim) -> None:
    nested: Any = "x"
    for _ in range(900):
        nested = [nested]
    user = await scim.create_user("nested")
    for operations in ([{"op": "add", "path": "title", "value": nested}],
                       [{"op": "add", "value": {"title": nested}}],
                       [{"op": "replace", "path": "emails", "value": nested}],
                       [{"op": "add", "path": "urn:x:y", "value": {"a": nested}}]):
        answer = await scim.patch(f"/Users/{user['id']}", operations)
        assert answer.status in (200, 400), answer.body
        if answer.status == 400:
            await _error(answer, 400)
    answer = await scim.post("/Users", {"userName": "nested2", "title": nested, "unknown": nested})
    await _error(answer, 400, "invalidValue")


async def test_long_strings_within_the_limit_are_stored_whole(scim: Scim) -> None:
    user_name = "u" * 10_000
    title = "é" * 24_000  # 48,000 bytes of UTF-8: with the userName, under the 64 KiB resource limit
    body = {"schemas": [USER_SCHEMA], "userName": user_name, "title": title}
    answer = await scim.request("POST", "/Users", raw=json.dumps(body, ensure_ascii=False).encode())
    assert answer.status == 201, answer.body
    created = answer.body
    fetched = await scim.get(f"/Users/{created['id']}")
    assert fetched.body["userName"] == user_name and fetched.body["title"] == title
    found = await scim.get('/Users?filter=userName sw "uuuuuuuuuu" and title sw "éé"&attributes=userName')
    assert [u["userName"] for u in found.body["Resources"]] == [user_name]


async def test_a_body_over_the_limit_is_413(scim: Scim) -> None:
    body = json.dumps({"schemas": [USER_SCHEMA], "userName": "big", "title": "x" * (1024 * 1024 + 1)}).encode()
    await _error(await scim.request("POST", "/Users", raw=body), 413)
    assert (await scim.get('/Users?filter=userName eq "big"')).body["totalResults"] == 0


async def test_a_filter_too_long_or_too_deep_is_400_invalidFilter(scim: Scim) -> None:
    too_long = 'userName eq "' + "a" * 4100 + '"'
    too_deep = "(" * 33 + 'userName eq "a"' + ")" * 33
    far_too_deep = "(" * 100_000 + 'userName eq "a"' + ")" * 100_000
    not_deep = "not (" * 40 + 'userName eq "a"' + ")" * 40
    for text in (too_long, too_deep, not_deep):
        await _error(await scim.post("/Users/.search", {"schemas": [SEARCH_REQUEST], "filter": text}),
                     400, "invalidFilter")
    await _error(await scim.request("POST", "/.search", {"schemas": [SEARCH_REQUEST], "filter": far_too_deep}),
                 400, "invalidFilter")
    deep_enough = "(" * 32 + 'userName eq "a"' + ")" * 32  # README: 32 levels of nesting
    assert (await scim.post("/Users/.search", {"schemas": [SEARCH_REQUEST], "filter": deep_enough})).status == 200
    alternating = 'title pr'
    for level in range(32):
        alternating = f'userName eq "a" {"and" if level % 2 else "or"} ({alternating})'
    for text in (alternating, "not (" * 32 + 'userName eq "a"' + ")" * 32):
        answer = await scim.get("/Users?filter=" + quote(text))
        assert answer.status == 200, answer.body


async def test_a_flat_chain_of_terms_is_answered_within_the_term_limit_and_refused_beyond(scim: Scim) -> None:
    # `userName pr and title pr and ...` nested once per term in SQL: SQLite's "parser stack overflow", a 500.
    await scim.create_user("chain", title="t")
    for joiner in (" and ", " or "):
        chain = joiner.join(["userName pr", "title pr"] * 100)  # 200 terms
        for answer in (await scim.get("/Users?filter=" + quote(chain)),
                       await scim.post("/Users/.search", {"schemas": [SEARCH_REQUEST], "filter": chain})):
            assert answer.status == 200, answer.body
            assert [u["userName"] for u in answer.body["Resources"]] == ["chain"]
    for terms, limit in ((257, "the limit is 256 per filter"), (2_000, "the limit is 4096")):
        chain = " and ".join(["id pr"] * terms)
        body = await _error(await scim.post("/.search", {"schemas": [SEARCH_REQUEST], "filter": chain}),
                            400, "invalidFilter")
        assert limit in body["detail"]


@pytest.mark.parametrize("query", ['filter=title co "\\udc80"', 'filter=title co "%5Cud800x"',
                                   'filter=emails[value eq "\\uDFFF"]'])
async def test_an_escaped_lone_surrogate_in_a_filter_is_400_invalidFilter(scim: Scim, query: str) -> None:
    # A lone surrogate is no character: it reached SQLite, whose UTF-8 encoding raised (a 500).
    user = await scim.create_user("surrogate")
    body = await _error(await scim.get(f"/Users?{query}"), 400, "invalidFilter")
    assert "lone surrogate" in body["detail"]
    text = query.removeprefix("filter=").replace("%5C", "\\")
    await _error(await scim.post("/.search", {"schemas": [SEARCH_REQUEST], "filter": text}), 400, "invalidFilter")
    path = text.replace("title co", "emails[value co") + "]" if text.startswith("title") else text
    await _error(await scim.patch(f"/Users/{user['id']}", [{"op": "remove", "path": path}]), 400, "invalidPath")


async def test_raw_surrogate_bytes_in_the_query_and_escapes_in_a_body_are_never_a_500(scim: Scim) -> None:
    user = await scim.create_user("raw")
    # %ED%A0%80 is the UTF-8 form of U+D800, which UTF-8 forbids; the URL decoder makes it U+FFFD.
    answer = await scim.client.get("/scim/v2/Users?filter=title%20co%20%22%ED%A0%80%22",
                                   headers={"Authorization": f"Bearer {scim.token}"})
    assert answer.status == 200
    # A JSON body may not hold a lone surrogate either (RFC 8259 §8.2): the body is refused as a whole.
    for method, path, raw in (
        ("POST", "/Users", b'{"schemas": ["%s"], "userName": "\\udc80"}' % USER_SCHEMA.encode()),
        ("PUT", f"/Users/{user['id']}", b'{"schemas": ["%s"], "userName": "raw", "title": "\\ud800"}'
         % USER_SCHEMA.encode()),
        ("PATCH", f"/Users/{user['id']}", b'{"schemas": ["%s"], "Operations": [{"op": "add", "path": "title", '
         b'"value": "\\udc80"}]}' % PATCH_OP.encode()),
        ("POST", "/Users/.search", b'{"schemas": ["%s"], "filter": "title eq \\"\\udc80\\""}'
         % SEARCH_REQUEST.encode()),
    ):
        await _error(await scim.request(method, path, raw=raw), 400)
    assert (await scim.get(f"/Users/{user['id']}")).body.get("title") is None


async def test_paging_parameters_out_of_range_are_clamped(scim: Scim, database: Any) -> None:
    from app.domain.directory import Context, Directory
    from app.domain.roles import RoleRules
    from app.protocol.schema_defs import USER_RESOURCE

    # 1,001 users straight through the directory (fast), so that a count above the maximum can show the cap.
    directory = Directory(database, RoleRules())
    for n in range(1001):
        await directory.create(USER_RESOURCE, {"userName": f"page-{n:04}"}, Context("http://x/scim/v2"))

    zero = await scim.get("/Users?startIndex=0&count=2")
    assert zero.status == 200 and zero.body["startIndex"] == 1 and zero.body["itemsPerPage"] == 2
    negative_start = await scim.get("/Users?startIndex=-5&count=1")
    assert negative_start.body["startIndex"] == 1
    negative = await scim.get("/Users?count=-3")
    assert negative.status == 200 and negative.body["Resources"] == [] and negative.body["totalResults"] == 1001
    huge = await scim.get(f"/Users?count={10 ** 30}&attributes=userName")
    assert huge.status == 200 and huge.body["itemsPerPage"] == 1000 and len(huge.body["Resources"]) == 1000
    beyond = await scim.get(f"/Users?startIndex={10 ** 30}")
    assert beyond.status == 200 and beyond.body["Resources"] == []
    search = await scim.post("/Users/.search", {"schemas": [SEARCH_REQUEST], "startIndex": 0, "count": 5000})
    assert search.body["startIndex"] == 1 and search.body["itemsPerPage"] == 1000


@pytest.mark.parametrize("query", ["startIndex=abc", "count=1.5", "startIndex=1e3", "count=%00", "count=true"])
async def test_a_non_integer_startIndex_or_count_is_400(scim: Scim, query: str) -> None:
    await _error(await scim.get(f"/Users?{query}"), 400, "invalidValue")


@pytest.mark.parametrize("query", [f"after={2 ** 63}", f"after={10 ** 30}&limit={10 ** 30}"])
async def test_event_cursors_beyond_sqlite_integers_are_an_empty_page_not_a_500(scim: Scim, query: str) -> None:
    answer = await scim.get(f"/api/events?{query}")
    assert answer.status == 200, answer.body
    assert answer.body["events"] == []


@pytest.mark.parametrize("sort_by", ["nope", "name.nope", "password", "urn:x:y:z", "emails[type eq \"work\"]", "!"])
async def test_unknown_sortBy_is_400_invalidValue(scim: Scim, sort_by: str) -> None:
    await _error(await scim.request("GET", f"/Users?sortBy={sort_by}"), 400, "invalidValue")


async def test_nul_bytes_in_values_are_400_invalidValue_and_never_stored(scim: Scim) -> None:
    user = await scim.create_user("clean")
    group = await scim.create_group("rollcall-guests")
    attempts = [
        scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "nul\x00name"}),
        scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "nul", "name": {"givenName": "a\x00"}}),
        scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "nul", "emails": [{"value": "a@b\x00"}]}),
        scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "nul", ENTERPRISE: {"department": "\x00"}}),
        scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "g\x00"}),
        scim.put(f"/Users/{user['id']}", {"schemas": [USER_SCHEMA], "userName": "clean", "title": "\x00"}),
        scim.patch(f"/Users/{user['id']}", [{"op": "replace", "path": "title", "value": "t\x00"}]),
        scim.patch(f"/Users/{user['id']}", [{"op": "replace", "value": {"displayName": "\x00"}}]),
        scim.patch(f"/Users/{user['id']}", [{"op": "add", "path": "emails", "value": [{"value": "\x00"}]}]),
        scim.patch(f"/Groups/{group['id']}", [{"op": "replace", "path": "displayName", "value": "g\x00"}]),
        scim.patch(f"/Groups/{group['id']}", [{"op": "add", "path": "members", "value": [{"value": "\x00"}]}]),
    ]
    for attempt in attempts:
        await _error(await attempt, 400, "invalidValue")
    users = (await scim.get("/Users")).body["Resources"]
    assert [u["userName"] for u in users] == ["clean"] and "\x00" not in json.dumps(users)
    assert "\x00" not in json.dumps((await scim.get("/Groups")).body)
