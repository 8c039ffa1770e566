"""A small HTTP client for SCIM and the roster API, over aiohttp's ClientSession.

It sends exactly the URL it is given (a doubled slash from a Base URL ending in `/` stays doubled, as an identity
provider would send it), never follows redirects (no identity provider does), and keeps every exchange, so a
failed check can say what the provider would have seen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from yarl import URL

SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SCIM_ROOT = "/scim/v2"
DEFAULT_TIMEOUT = 15.0


@dataclass(frozen=True)
class Request:
    """One request as a provider sends it: a path below the Base URL, its query (in order), and a JSON body."""

    method: str
    path: str
    query: tuple[tuple[str, str | None], ...] = ()
    body: Any = None
    # What the provider calls this request (JumpCloud's Directory Insights names, e.g. user_create_provision).
    event: str = ""


@dataclass
class Reply:
    """What came back. `body` is the parsed JSON, or None when the answer was not JSON."""

    status: int
    headers: dict[str, str]
    text: str
    body: Any = None
    url: str = ""
    method: str = ""
    error: str | None = None  # set when no HTTP answer came at all (refused connection, timeout, TLS failure)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    @property
    def is_scim(self) -> bool:
        """Whether rollcall (or another SCIM server) wrote this answer, rather than a proxy in front of it."""
        return self.content_type in (SCIM_JSON, "application/json") and isinstance(self.body, dict)

    @property
    def detail(self) -> str:
        if isinstance(self.body, dict) and isinstance(self.body.get("detail"), str):
            return self.body["detail"]
        return " ".join(self.text.split())[:160]

    def summary(self) -> str:
        if self.error is not None:
            return f"{self.method} {self.url} → no answer ({self.error})"
        kind = self.content_type or "no content type"
        shown = f": {self.detail!r}" if self.detail and self.status >= 300 else ""
        return f"{self.method} {self.url} → {self.status} ({kind}){shown}"


def encode_query(query: tuple[tuple[str, str | None], ...]) -> str:
    """`a=1&flag&filter=...`: a None value is a bare flag, as Entra's `?aadOptscim062020`."""
    parts = [quote(name, safe="") if value is None else f"{quote(name, safe='')}={quote(value, safe='')}"
             for name, value in query]
    return "&".join(parts)


def split_base_url(base_url: str) -> tuple[str, tuple[tuple[str, str | None], ...]]:
    """A Base URL's path part and the query flags it carries (Entra's tenant URL may end in `?aadOptscim062020`)."""
    parts = urlsplit(base_url)
    flags: list[tuple[str, str | None]] = []
    for item in parts.query.split("&") if parts.query else ():
        name, equals, value = item.partition("=")
        flags.append((name, value if equals else None))
    return base_url.split("?", 1)[0], tuple(flags)


def api_root(base_url: str) -> str:
    """The server root the roster API lives under: the Base URL without its `/scim/v2`."""
    path_part = split_base_url(base_url)[0].rstrip("/")
    return path_part[: -len(SCIM_ROOT)] if path_part.endswith(SCIM_ROOT) else path_part


@dataclass
class ScimClient:
    """Requests against one Base URL with one token; `exchanges` records every one of them."""

    base_url: str
    token: str | None
    content_type: str = SCIM_JSON
    timeout: float = DEFAULT_TIMEOUT
    exchanges: list[Reply] = field(default_factory=list)
    _session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ScimClient:
        # No cookies, no proxy from the environment: the request goes where the Base URL says, as a provider's would.
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout),
                                              cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def url_for(self, request: Request) -> str:
        base, flags = split_base_url(self.base_url)
        query = encode_query(flags + request.query)
        return f"{base}{request.path}" + (f"?{query}" if query else "")

    async def send(self, request: Request, *, token: str | None = None, auth: bool = True) -> Reply:
        """Send `request`; `token` overrides the client's, `auth=False` sends no Authorization header at all."""
        url = self.url_for(request)
        headers = {"Accept": f"{SCIM_JSON}, application/json"}
        presented = token if token is not None else self.token
        if auth and presented:
            headers["Authorization"] = f"Bearer {presented}"
        data = None
        if request.body is not None:
            headers["Content-Type"] = self.content_type
            data = json.dumps(request.body).encode()
        return await self.fetch(request.method, url, headers, data)

    async def fetch(self, method: str, url: str, headers: dict[str, str], data: bytes | None = None) -> Reply:
        assert self._session is not None, "use the client as `async with ScimClient(...)`"
        try:
            async with self._session.request(method, URL(url, encoded=True), headers=headers, data=data,
                                             allow_redirects=False) as response:
                text = await response.text(errors="replace")
                reply = Reply(response.status, dict(response.headers), text, _json_or_none(text), url, method)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            reply = Reply(0, {}, "", None, url, method, error=_describe(error))
        self.exchanges.append(reply)
        return reply

    async def api(self, path: str) -> Reply:
        """GET a roster API path (`/api/members`), with the same token."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return await self.fetch("GET", api_root(self.base_url) + path, headers)


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
