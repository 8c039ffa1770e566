"""What a failed exchange means: what the provider would have seen, and what usually causes it.

Each rule matches the shape of an answer (its status, and whether rollcall or something in front of it wrote
it), not the wording of rollcall's messages, so it holds for any proxy and any rollcall version.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.simulator.client import Reply, Request, ScimClient, split_base_url


@dataclass(frozen=True)
class Diagnosis:
    seen: str
    cause: str


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def base_url_warnings(base_url: str) -> list[str]:
    """What is wrong with a Base URL before anything is sent."""
    warnings = []
    path_part = split_base_url(base_url)[0]
    if path_part.endswith("/"):
        warnings.append("the Base URL ends with '/': JumpCloud appends /Users itself and asks for "
                        f"{path_part}/Users (a doubled slash); rollcall accepts it, many proxies do not. Enter it "
                        f"without the trailing slash: {path_part.rstrip('/')}")
    parts = urlsplit(base_url)
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        warnings.append("the Base URL is http://, not https://: JumpCloud, Okta and Entra need HTTPS (and the token "
                        "would cross the network in clear). Put a TLS proxy in front, or serve --tls-cert/--tls-key, "
                        "and use the https:// address")
    return warnings


def location_problem(reply: Reply, base_url: str) -> str | None:
    """Why the resource locations in a create's answer are not under the Base URL the provider used, if they
    are not: the provider would be handed an address it cannot reach."""
    expected = split_base_url(base_url)[0].rstrip("/")
    body = reply.body if isinstance(reply.body, dict) else {}
    found = body.get("meta")
    meta: dict[str, Any] = found if isinstance(found, dict) else {}
    for where, value in (("the Location header", reply.headers.get("Location")),
                         ("meta.location", meta.get("location"))):
        if value is None:
            continue
        if not isinstance(value, str) or not _under(value, expected):
            return f"{where} is {value!r}, which is not under {expected}"
    return None


def _under(location: str, base: str) -> bool:
    have, want = urlsplit(location), urlsplit(base)
    return (have.scheme.lower(), (have.netloc or "").lower()) == (want.scheme.lower(), want.netloc.lower()) \
        and have.path.replace("//", "/").startswith(want.path.replace("//", "/").rstrip("/") + "/")


LOCATION_CAUSE = ("rollcall does not know its public address: the proxy does not pass the Host header it was sent "
                  "(or terminates TLS), so rollcall builds its answers from its own address. Start rollcall with "
                  "--base-url set to the Base URL the identity provider uses, or make the proxy pass Host through")


class Diagnoser:
    """Explains failed exchanges; asks the server one more question where that tells two causes apart."""

    def __init__(self, client: ScimClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url
        self._header_arrives: bool | None = None

    async def authorization_arrives(self) -> bool:
        """Whether the Authorization header reaches rollcall: a refused token is answered the same as no header
        at all only when the header never arrives."""
        if self._header_arrives is None:
            probe = Request("GET", "/Users", (("count", "1"),))
            bare = await self.client.send(probe, auth=False)
            wrong = await self.client.send(probe, token="rc_rollcall-selftest-not-a-token")
            self._header_arrives = not (bare.status == wrong.status == 401 and bare.detail == wrong.detail)
        return self._header_arrives

    async def diagnose(self, reply: Reply, provider: str) -> Diagnosis:
        seen = f"{provider} would have seen: {reply.summary()}"
        return Diagnosis(seen, await self.cause(reply))

    async def cause(self, reply: Reply) -> str:
        trailing = split_base_url(self.base_url)[0].endswith("/")
        if reply.error is not None:
            if "certificate" in reply.error.lower() or "ssl" in reply.error.lower():
                return ("the TLS certificate is not one a provider trusts (self-signed, expired, for another name, "
                        "or served without its intermediate chain): use a certificate from a public CA, full chain")
            return ("nothing answered at that address, or not in time: check the host name, the port, DNS and the "
                    "firewall (JumpCloud only says 'There was a problem activating identity management')")
        status = reply.status
        if status == 401:
            if not await self.authorization_arrives():
                return ("a proxy in front of rollcall strips the Authorization header, so no token arrives "
                        "(nginx: do not clear it with proxy_set_header; Apache: CGIPassAuth On or RequestHeader)")
            return "the token is not a live rollcall token (mistyped, or revoked): create one with `rollcall token " \
                   "create --name jumpcloud` and paste it as the Token Key"
        if status == 403:
            return ("the token is not allowed to do this (a token with the wrong scope, or a proxy rule refusing "
                    "the method): give the identity provider a token that may create, change and delete")
        if status == 413:
            if reply.is_scim:
                return "rollcall's own body limit refused it: raise --max-body-bytes"
            return ("a body limit at the proxy (413 not written by rollcall): raise it, e.g. nginx "
                    "client_max_body_size 2m, so that large group updates get through")
        if status == 415 and not reply.is_scim:
            return ("a proxy or web application firewall refuses the content type application/scim+json that every "
                    "provider sends: allow it")
        if status in (301, 302, 303, 307, 308):
            return (f"the address redirects (to {reply.headers.get('Location', '?')}); identity providers do not "
                    "follow redirects: enter the address it redirects to (https://?) as the Base URL")
        if trailing and "//" in urlsplit(reply.url).path and not reply.is_scim:
            return ("the trailing slash in the Base URL: the provider asks for a doubled slash (…/scim/v2//Users), "
                    "which the proxy does not route to rollcall. Remove the trailing slash")
        if status in (404, 405) and not reply.is_scim:
            return ("something other than rollcall answered (not a SCIM error): the Base URL's path does not lead "
                    "to rollcall's SCIM root (…/scim/v2), or the proxy does not forward it")
        if status == 404 and reply.method in ("GET", "POST") and reply.url.split("?")[0].endswith(("/Users",
                                                                                                  "/Groups")):
            return "rollcall has nothing at this path: the Base URL must end in /scim/v2"
        if status in (502, 503, 504) and not reply.is_scim:
            return "the proxy cannot reach rollcall: is rollcall running, and is the proxy pointed at its port?"
        if 200 <= status < 300 and not reply.is_scim and reply.method != "DELETE" and status != 204:
            return ("the answer is not SCIM JSON: something in front of rollcall (a sign-in page of an access proxy, "
                    "a captive portal) answered instead")
        if status == 409:
            return "a resource with this name exists already (left by an earlier, interrupted selftest?)"
        if reply.is_scim:
            return f"rollcall itself refused it, and says why: {reply.detail or status}"
        return f"something in front of rollcall answered {status}: {reply.detail or 'with no explanation'}"
