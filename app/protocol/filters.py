"""SCIM filter and PATCH path grammar (RFC 7644 §3.4.2.2, §3.5.2): text in, syntax tree out.

Why a hand-written parser rather than scim2-filter-parser: that library transpiles to one flat SQL
WHERE over a single table through a column map, so multi-valued attributes (emails, members) that
live in JSON arrays or a join table, per-attribute case sensitivity and the non-RFC
`emails[type eq "work"].value eq "x"` form JumpCloud may send cannot be expressed. The grammar is
small; the tree below is compiled to parameterised SQL by the storage layer and evaluated in memory
by the PATCH engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from app.protocol.errors import ScimError, invalid_filter, invalid_path

MAX_FILTER_LENGTH = 4096
# Levels of nesting: each pair of parentheses or brackets is one level; `userName eq "a"` has none.
MAX_FILTER_DEPTH = 32
# Comparisons (`attr op value`, `attr pr`) in one filter, counted inside value filters too. Bounds the work a
# filter costs however it is shaped; a flat chain of `and`/`or` nests no deeper than one term (see sqlite/compiler.py).
MAX_FILTER_TERMS = 256

COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})


@dataclass(frozen=True)
class AttrPath:
    """`[uri:]name[.sub]` as written; resolution against a schema happens later."""

    uri: str | None
    name: str
    sub: str | None = None

    def __str__(self) -> str:
        text = f"{self.uri}:{self.name}" if self.uri else self.name
        return f"{text}.{self.sub}" if self.sub else text


@dataclass(frozen=True)
class Compare:
    path: AttrPath
    op: str  # lower case: one of COMPARE_OPS or "pr"
    value: Any = None  # str, int, float, bool or None


@dataclass(frozen=True)
class And:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Or:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Not:
    inner: Filter


@dataclass(frozen=True)
class ValuePath:
    """`attr[filter]`: true when one value of the multi-valued `attr` matches `filter`,
    whose attribute paths name sub-attributes of `attr`."""

    path: AttrPath
    filter: Filter


Filter = Compare | And | Or | Not | ValuePath


def operands(node: And | Or) -> list[Filter]:
    """The operands of a chain of one connective, in order: `(a and b) and c` -> [a, b, c]. Iterative, because
    the parser builds a flat chain as a tree as deep as the chain is long."""
    kind = type(node)
    terms: list[Filter] = []
    pending: list[Filter] = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, kind):
            pending.append(current.right)
            pending.append(current.left)
        else:
            terms.append(current)
    return terms


@dataclass(frozen=True)
class PatchPath:
    """A PATCH `path`: `attrPath`, or `attrPath[valFilter]` optionally followed by `.subAttr`."""

    attr: AttrPath
    filter: Filter | None = None
    sub: str | None = None


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<punct>[()\[\]])
  | (?P<word>[^\s()\[\]"]+)
""", re.VERBOSE)

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_ATTR_NAME = re.compile(r"[A-Za-z$][\w$-]*")
# A bare (unquoted) value is read as a string, as Microsoft's Entra test collection and documentation send them
# (`userName sw O`, `emails.value co example.com`). Not one that a quoted string would read differently or that
# reads as grammar: no control character or backslash (escapes mean something only inside quotes), no leading
# single quote (a 'quoted' value in the wrong quotes), and not a connective.
_BARE_REFUSED = re.compile(r"[\x00-\x1f\x7f\\]|^'")
_CONNECTIVES = frozenset({"and", "or", "not"})
# One comparison with a quoted value, `userName eq "x"`: the filter of nearly every identity-provider lookup, read
# by one match instead of the tokenizer and parser (parse_filter), into the tree they would build. The groups are
# the parser's own tokens (a word, a word, a string), so anything else falls to the parser, errors included.
_ONE_COMPARISON = re.compile(r'\s*([^\s()\[\]"]+)\s+([A-Za-z]{2})\s+("(?:[^"\\]|\\.)*")\s*')


@dataclass
class _Token:
    kind: str
    text: str
    pos: int


def _tokenize(text: str, error: type[_ErrorFactory]) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise error.at(text, pos, "an unterminated string")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


class _ErrorFactory:
    make = staticmethod(invalid_filter)
    what = "filter"

    @classmethod
    def at(cls, text: str, pos: int, problem: str) -> ScimError:
        return cls.make(f"Invalid {cls.what} {text!r}: {problem} at position {pos + 1}.")


class _PathErrorFactory(_ErrorFactory):
    make = staticmethod(invalid_path)
    what = "path"


class _AttributeErrorFactory(_ErrorFactory):
    what = "attribute"


def parse_attr_path(text: str) -> AttrPath | None:
    """`urn:...:User:name.givenName` → AttrPath; None when `text` is not an attribute path."""
    uri: str | None = None
    rest = text
    if text.lower().startswith("urn:"):
        uri, _, rest = text.rpartition(":")
        if not uri or not rest:
            return None
    name, _, sub = rest.partition(".")
    if not _ATTR_NAME.fullmatch(name) or (sub and not _ATTR_NAME.fullmatch(sub)):
        return None
    return AttrPath(uri, name, sub or None)


class _Parser:
    def __init__(self, text: str, error: type[_ErrorFactory]) -> None:
        self.text = text
        self.error = error
        self.tokens = _tokenize(text, error)
        self.index = 0
        self.depth = 0
        self.terms = 0

    # -- token helpers -------------------------------------------------------------------------
    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise self.error.at(self.text, len(self.text), "unexpected end")
        self.index += 1
        return token

    def fail(self, token: _Token | None, expected: str) -> ScimError:
        if token is None:
            return self.error.at(self.text, len(self.text), f"expected {expected}, found the end")
        return self.error.at(self.text, token.pos, f"expected {expected}, found {token.text!r}")

    def expect_punct(self, char: str) -> None:
        token = self.peek()
        if token is None or token.text != char:
            raise self.fail(token, f"{char!r}")
        self.index += 1

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.lower() in words:
            self.index += 1
            return token.text.lower()
        return None

    def nest(self) -> None:
        """Enter one level of parentheses or brackets; the token at hand is the opening one."""
        self.depth += 1
        if self.depth > MAX_FILTER_DEPTH:
            token = self.peek()
            raise self.error.at(self.text, token.pos if token else 0,
                                f"nesting deeper than {MAX_FILTER_DEPTH} levels of parentheses or brackets")

    def count_term(self, token: _Token) -> None:
        self.terms += 1
        if self.terms > MAX_FILTER_TERMS:
            raise self.error.at(self.text, token.pos,
                                f"comparison number {self.terms} (the limit is {MAX_FILTER_TERMS} per filter)")

    # -- grammar ------------------------------------------------------------------------------
    def parse_or(self, in_brackets: bool) -> Filter:
        node = self.parse_and(in_brackets)
        while self.keyword("or"):
            node = Or(node, self.parse_and(in_brackets))
        return node

    def parse_and(self, in_brackets: bool) -> Filter:
        node = self.parse_unary(in_brackets)
        while self.keyword("and"):
            node = And(node, self.parse_unary(in_brackets))
        return node

    def parse_unary(self, in_brackets: bool) -> Filter:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.lower() == "not":
            following = self.tokens[self.index + 1] if self.index + 1 < len(self.tokens) else None
            if following is not None and following.text == "(":
                self.index += 1
                return Not(self.parse_group(in_brackets))
        if token is not None and token.text == "(":
            return self.parse_group(in_brackets)
        return self.parse_attr_expression(in_brackets)

    def parse_group(self, in_brackets: bool) -> Filter:
        # Only parentheses and brackets recurse, so counting them bounds the recursion as well as the depth.
        self.nest()
        self.expect_punct("(")
        node = self.parse_or(in_brackets)
        self.expect_punct(")")
        self.depth -= 1
        return node

    def parse_attr_path_token(self) -> AttrPath:
        token = self.take()
        path = parse_attr_path(token.text) if token.kind == "word" else None
        if path is None:
            raise self.fail(token, "an attribute name")
        return path

    def parse_attr_expression(self, in_brackets: bool) -> Filter:
        path = self.parse_attr_path_token()
        token = self.peek()
        if token is not None and token.text == "[":
            if in_brackets or path.sub is not None:
                raise self.fail(token, "a comparison operator")
            self.nest()
            self.index += 1
            inner = self.parse_or(in_brackets=True)
            self.expect_punct("]")
            self.depth -= 1
            after = self.peek()
            if after is not None and after.kind == "word" and after.text.startswith(".") \
                    and _ATTR_NAME.fullmatch(after.text[1:]):
                # `emails[type eq "work"].value eq "x"`: not RFC grammar, but sent by real clients.
                self.index += 1
                comparison = self.parse_comparison(AttrPath(None, after.text[1:]))
                return ValuePath(path, And(inner, comparison))
            return ValuePath(path, inner)
        return self.parse_comparison(path)

    def parse_comparison(self, path: AttrPath) -> Compare:
        op_token = self.take()
        self.count_term(op_token)
        op = op_token.text.lower()
        if op_token.kind != "word" or (op not in COMPARE_OPS and op != "pr"):
            raise self.error.at(self.text, op_token.pos,
                                f"expected a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) "
                                f"after {str(path)!r}, found {op_token.text!r}")
        if op == "pr":
            return Compare(path, op)
        return Compare(path, op, self.parse_value())

    def parse_value(self) -> Any:
        token = self.take()
        if token.kind == "string":
            # The JSON decoder of request bodies, so that a string means the same here as there. It refuses an
            # escape of a lone surrogate (`\udc80`): no character, and UTF-8 (SQLite, the answer) cannot encode it.
            try:
                return orjson.loads(token.text)
            except orjson.JSONDecodeError as error:
                problem = error.msg
                if "surrogate" in problem:
                    problem = "a \\u escape of a lone surrogate (not a character)"
                raise self.error.at(self.text, token.pos, f"a malformed string: {problem}") from None
        if token.kind == "word":
            lowered = token.text.lower()
            if lowered in ("true", "false"):
                return lowered == "true"
            if lowered == "null":
                return None
            if _NUMBER.fullmatch(token.text):
                number = float(token.text)
                return int(token.text) if number.is_integer() and re.fullmatch(r"-?\d+", token.text) else number
            if lowered not in _CONNECTIVES and not _BARE_REFUSED.search(token.text):
                return token.text  # compared exactly as the same text in double quotes
        raise self.fail(token, 'a value (a "string", a number, true, false or null)')

    def finish(self) -> None:
        token = self.peek()
        if token is not None:
            raise self.fail(token, "'and', 'or' or the end")


def parse_filter(text: str) -> Filter:
    """Parse a `filter` query parameter; raises a 400 `invalidFilter` ScimError."""
    if len(text) > MAX_FILTER_LENGTH:
        raise invalid_filter(f"The filter is {len(text)} characters long; the limit is {MAX_FILTER_LENGTH}.")
    if not text.strip():
        raise invalid_filter("The filter is empty.")
    simple = _one_comparison(text)
    if simple is not None:
        return simple
    parser = _Parser(text, _ErrorFactory)
    node = parser.parse_or(in_brackets=False)
    parser.finish()
    return node


def _one_comparison(text: str) -> Compare | None:
    """`text` as the parser would read it when it is one `attrPath op "string"` comparison, else None."""
    match = _ONE_COMPARISON.fullmatch(text)
    if match is None:
        return None
    name, op, quoted = match.groups()
    op = op.lower()
    path = parse_attr_path(name)
    if path is None or op not in COMPARE_OPS:
        return None
    try:
        value = orjson.loads(quoted)
    except orjson.JSONDecodeError:
        return None  # the parser says what is wrong with it
    return Compare(path, op, value)


def parse_patch_path(text: str) -> PatchPath:
    """Parse a PATCH operation's `path`; raises a 400 `invalidPath` ScimError."""
    return _parse_value_path(text, _PathErrorFactory)


def parse_selected_path(text: str) -> PatchPath:
    """Parse one entry of `attributes`/`excludedAttributes` that may carry a value filter, `emails[type eq
    "work"].value` (not RFC 7644 §3.9 grammar, but sent by real clients); raises a 400 `invalidFilter` ScimError."""
    return _parse_value_path(text, _AttributeErrorFactory)


def _parse_value_path(text: str, error: type[_ErrorFactory]) -> PatchPath:
    """`attrPath`, or `attrPath[valFilter]` optionally followed by `.subAttr` (RFC 7644 §3.5.2's PATH)."""
    what = error.what
    if len(text) > MAX_FILTER_LENGTH:
        raise error.make(f"The {what} is {len(text)} characters long; the limit is {MAX_FILTER_LENGTH}.")
    bracket = text.find("[")
    if bracket < 0:
        attr = parse_attr_path(text.strip())
        if attr is None:
            raise error.make(f"Invalid {what} {text!r}: expected an attribute name such as 'name.givenName'.")
        return PatchPath(attr)
    attr = parse_attr_path(text[:bracket].strip())
    if attr is None or attr.sub is not None:
        raise error.make(f"Invalid {what} {text!r}: expected a multi-valued attribute name before '['.")
    close = text.rfind("]")
    if close < bracket:
        raise error.make(f"Invalid {what} {text!r}: '[' is never closed.")
    tail = text[close + 1:].strip()
    sub: str | None = None
    if tail:
        if not tail.startswith(".") or not _ATTR_NAME.fullmatch(tail[1:]):
            raise error.make(f"Invalid {what} {text!r}: only '.subAttribute' may follow ']'.")
        sub = tail[1:]
    parser = _Parser(text[bracket + 1:close], error)
    parser.depth = 1  # the brackets are a level, as they are in a filter
    value_filter = parser.parse_or(in_brackets=True)
    parser.finish()
    return PatchPath(attr, value_filter, sub)
