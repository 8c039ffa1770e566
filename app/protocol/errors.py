"""SCIM errors (RFC 7644 §3.12): the one place an error response body is made."""

from __future__ import annotations

import json
from typing import Any

from app.protocol.schema_defs import ERROR


def describe(value: Any) -> str:
    """How a wrong value is quoted in an error detail: short enough to read, exact enough to find."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


class ScimError(Exception):
    """An error the client should see as a SCIM Error response."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [ERROR], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


def invalid_path(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidPath")


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


def invalid_syntax(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidSyntax")


def no_target(detail: str) -> ScimError:
    return ScimError(400, detail, "noTarget")


def mutability(detail: str) -> ScimError:
    return ScimError(400, detail, "mutability")


def uniqueness(detail: str) -> ScimError:
    return ScimError(409, detail, "uniqueness")


def invalid_cursor(detail: str) -> ScimError:
    """RFC 9865 §2.1: a cursor this server did not issue for this query."""
    return ScimError(400, detail, "invalidCursor")


def expired_cursor(detail: str) -> ScimError:
    """RFC 9865 §2.1: a cursor older than cursorTimeout."""
    return ScimError(400, detail, "expiredCursor")


def not_found(detail: str) -> ScimError:
    return ScimError(404, detail)


def precondition_failed(detail: str) -> ScimError:
    return ScimError(412, detail)


def unauthorized(detail: str) -> ScimError:
    return ScimError(401, detail, headers={"WWW-Authenticate": 'Bearer realm="rollcall"'})


def forbidden(detail: str) -> ScimError:
    """RFC 7644 §3.12: 403, the request is authenticated but may not do this; no scimType applies."""
    return ScimError(403, detail)


def method_not_allowed(method: str, path: str, allowed: list[str]) -> ScimError:
    return ScimError(405, f"{method} is not supported on {path}; allowed: {', '.join(allowed)}.",
                     headers={"Allow": ", ".join(allowed)})


def busy(detail: str, retry_after: int = 1) -> ScimError:
    """RFC 7644 §3.12: 503, the service is unavailable for now; Retry-After says when to try again."""
    return ScimError(503, detail, headers={"Retry-After": str(retry_after)})
