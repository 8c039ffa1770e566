"""Settings, validated once into a frozen dataclass that the rest of the program reads."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from app.domain.holds import DEFAULT_MINIMUM, DEFAULT_PERCENT, DEFAULT_WINDOW_SECONDS, HoldPolicy
from app.domain.limits import (
    DEFAULT_BULK_MAX_OPERATIONS,
    DEFAULT_BULK_MAX_PAYLOAD_BYTES,
    DEFAULT_MAX_PAGE_BYTES,
    DEFAULT_MAX_RESOURCE_BYTES,
    Limits,
)
from app.domain.roles import DEFAULT_PREFIX, RoleRules
from app.domain.webhooks import DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_CAP, DEFAULT_RETRY_FOR, DEFAULT_TIMEOUT
from app.event_loop import LOOP_CHOICES

DEFAULT_DB = "rollcall.db"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
SCIM_PREFIX = "/scim/v2"
DURABILITY_CHOICES = ("normal", "full")
LOG_FORMAT_CHOICES = ("text", "json")
# An HTTP field name (RFC 9110 §5.1: a token).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}")


@dataclass(frozen=True)
class Settings:
    db_path: str = DEFAULT_DB
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # The public SCIM root, e.g. https://rollcall.example.com/scim/v2; derived from each request when unset.
    base_url: str | None = None
    default_page_size: int = 100
    max_page_size: int = 1000
    max_body_bytes: int = 1024 * 1024
    max_resource_bytes: int = DEFAULT_MAX_RESOURCE_BYTES
    max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES
    # Bulk (RFC 7644 §3.7.4): announced in ServiceProviderConfig; a Bulk body has its own limit, not max_body_bytes.
    bulk_max_operations: int = DEFAULT_BULK_MAX_OPERATIONS
    bulk_max_payload_bytes: int = DEFAULT_BULK_MAX_PAYLOAD_BYTES
    group_prefix: str = DEFAULT_PREFIX
    default_role: str | None = None  # None, "guest" or "member"
    tls_cert: str | None = None
    tls_key: str | None = None
    log_format: str = "text"  # "text" or "json"
    metrics: bool = False
    durability: str = "normal"  # "normal" (SQLite synchronous=NORMAL) or "full"
    # Connections served at once; None: 1,000, lowered to fit the open-files limit (app/web/server.py).
    max_connections: int | None = None
    header_timeout: float = 10.0  # seconds a client has to send a request's headers
    body_timeout: float = 30.0  # seconds a client has to send a request's body, once its headers are in
    keepalive_timeout: float = 15.0  # seconds an idle kept-alive connection stays open
    # Host header values (lowercase, with or without port) answered; empty: any.
    trusted_hosts: tuple[str, ...] = ()
    # The request header naming the person /auth/forward is asked about, set by the SSO layer in front.
    forward_auth_header: str = "X-Forwarded-Email"
    # The safety nets (app/domain/holds.py): a mass removal and the last admin's departure wait for a person.
    hold: bool = True
    hold_window: float = DEFAULT_WINDOW_SECONDS  # seconds over which departures are counted
    hold_percent: float = DEFAULT_PERCENT  # of the members at the start of the window
    hold_min: int = DEFAULT_MINIMUM  # departures in a window that never open a hold
    # Webhook deliveries (app/web/webhook_delivery.py): retried after base, 2*base, ... up to cap seconds, with
    # jitter, for retry_for seconds, then the endpoint is marked failing; each attempt gets timeout seconds.
    webhook_backoff_base: float = DEFAULT_BACKOFF_BASE
    webhook_backoff_cap: float = DEFAULT_BACKOFF_CAP
    webhook_retry_for: float = DEFAULT_RETRY_FOR
    webhook_timeout: float = DEFAULT_TIMEOUT
    # The event loop (app/event_loop.py): "auto" is uvloop when installed, "asyncio" the stock loop.
    loop: str = "auto"

    def __post_init__(self) -> None:
        if self.durability not in DURABILITY_CHOICES:
            raise ValueError(f"--durability must be one of {', '.join(DURABILITY_CHOICES)}, not {self.durability!r}")
        if self.log_format not in LOG_FORMAT_CHOICES:
            raise ValueError(f"--log-format must be one of {', '.join(LOG_FORMAT_CHOICES)}, not {self.log_format!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"--port must be between 1 and 65535, not {self.port}")
        if self.base_url is not None:
            if not self.base_url.startswith(("http://", "https://")):
                raise ValueError(f"--base-url must start with http:// or https://, not {self.base_url!r}")
            object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together: give both, or neither")
        if self.max_body_bytes < 1024:
            raise ValueError(f"--max-body-bytes must be at least 1024, not {self.max_body_bytes}")
        if self.max_resource_bytes < 1024:
            raise ValueError(f"--max-resource-bytes must be at least 1024, not {self.max_resource_bytes}")
        if self.max_page_bytes < 1024:
            raise ValueError(f"--max-page-bytes must be at least 1024, not {self.max_page_bytes}")
        if not 1 <= self.bulk_max_operations <= 100_000:
            raise ValueError(f"--bulk-max-operations must be between 1 and 100000, not {self.bulk_max_operations}")
        if self.bulk_max_payload_bytes < 1024:
            raise ValueError(f"--bulk-max-payload-bytes must be at least 1024, not {self.bulk_max_payload_bytes}")
        if not 0 < self.default_page_size <= self.max_page_size:
            raise ValueError("the default page size must be between 1 and the maximum page size")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError(f"--max-connections must be at least 1, not {self.max_connections}")
        if not 0 < self.header_timeout <= 300:
            raise ValueError(f"--header-timeout must be between 0 and 300 seconds, not {self.header_timeout}")
        if not 0 < self.body_timeout <= 600:
            raise ValueError(f"--body-timeout must be between 0 and 600 seconds, not {self.body_timeout}")
        if not 0 < self.keepalive_timeout <= 3600:
            raise ValueError(f"--keepalive-timeout must be between 0 and 3600 seconds, not {self.keepalive_timeout}")
        hosts = tuple(host.strip().lower() for host in self.trusted_hosts)
        for host in hosts:
            if not host or any(char in host for char in " /\\@,") or host.startswith(":"):
                raise ValueError(f"--trusted-hosts takes host names, e.g. rollcall.example.com, "
                                 f"not {host!r}")
        object.__setattr__(self, "trusted_hosts", hosts)
        if not _HEADER_NAME.fullmatch(self.forward_auth_header):
            raise ValueError(f"--forward-auth-header must be an HTTP header name, e.g. X-Forwarded-Email, "
                             f"not {self.forward_auth_header!r}")
        if not 0 < self.webhook_backoff_base <= self.webhook_backoff_cap:
            raise ValueError("--webhook-backoff-base must be above 0 and at most --webhook-backoff-cap, not "
                             f"{self.webhook_backoff_base} (cap {self.webhook_backoff_cap})")
        if self.webhook_retry_for <= 0:
            raise ValueError(f"--webhook-retry-for must be above 0 seconds, not {self.webhook_retry_for}")
        if not 0 < self.webhook_timeout <= 300:
            raise ValueError(f"--webhook-timeout must be between 0 and 300 seconds, not {self.webhook_timeout}")
        if self.loop not in LOOP_CHOICES:
            raise ValueError(f"--loop must be one of {', '.join(LOOP_CHOICES)}, not {self.loop!r}")
        self.rules  # noqa: B018 -- validates the prefix and default role now, not on first request
        self.hold_policy  # noqa: B018 -- validates the hold settings now

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    @property
    def synchronous(self) -> str:
        return "FULL" if self.durability == "full" else "NORMAL"

    @property
    def limits(self) -> Limits:
        return Limits(self.max_resource_bytes, self.max_page_bytes)

    @cached_property
    def rules(self) -> RoleRules:
        return RoleRules(self.group_prefix, self.default_role)

    @cached_property
    def hold_policy(self) -> HoldPolicy:
        return HoldPolicy(self.hold, self.hold_window, self.hold_percent, self.hold_min)
