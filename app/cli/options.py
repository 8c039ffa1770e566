"""Command-line options and where their values come from.

One precedence everywhere: a flag, then the environment (ROLLCALL_<FLAG>), then the config file
(--config FILE or ROLLCALL_CONFIG, TOML with the flag names as keys), then the default.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from app.config import DEFAULT_DB, DEFAULT_HOST, DEFAULT_PORT, DURABILITY_CHOICES, LOG_FORMAT_CHOICES
from app.domain.holds import DEFAULT_MINIMUM, DEFAULT_PERCENT, DEFAULT_WINDOW_SECONDS
from app.domain.limits import (
    DEFAULT_BULK_MAX_OPERATIONS,
    DEFAULT_BULK_MAX_PAYLOAD_BYTES,
    DEFAULT_MAX_PAGE_BYTES,
    DEFAULT_MAX_RESOURCE_BYTES,
)
from app.domain.roles import DEFAULT_PREFIX, DEFAULT_ROLE_CHOICES
from app.domain.webhooks import DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_CAP, DEFAULT_RETRY_FOR, DEFAULT_TIMEOUT
from app.event_loop import LOOP_CHOICES

PRECEDENCE = ("Each option is taken from, in order: its flag; the environment variable ROLLCALL_<FLAG> "
              "(e.g. ROLLCALL_GROUP_PREFIX); the config file given by --config or ROLLCALL_CONFIG (TOML, keys named "
              "like the flags, e.g. group-prefix = \"acme\"); its default.")


class OptionError(Exception):
    """An option value that cannot be used; the message names where it came from."""


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not true or false")


@dataclass(frozen=True)
class Option:
    name: str
    help: str
    default: Any = None
    convert: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None

    @property
    def env(self) -> str:
        return "ROLLCALL_" + self.name.upper().replace("-", "_")

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")


OPTIONS = {option.name: option for option in (
    Option("db", "SQLite database file", DEFAULT_DB),
    Option("host", "address to listen on", DEFAULT_HOST),
    Option("port", "port to listen on", DEFAULT_PORT, int),
    Option("base-url", "public SCIM Base URL, e.g. https://rollcall.example.com/scim/v2; "
                       "derived from each request when unset"),
    Option("group-prefix", "role groups are named <prefix>-administrators, <prefix>-members and "
                           "<prefix>-guests, any suffix allowed", DEFAULT_PREFIX),
    Option("default-role", "the role of an active user in no role group; none keeps them off the roster",
           "none", choices=DEFAULT_ROLE_CHOICES),
    Option("tls-cert", "PEM certificate (chain) file: serve HTTPS"),
    Option("tls-key", "PEM private key file for --tls-cert"),
    Option("log-format", "request log format", "text", choices=LOG_FORMAT_CHOICES),
    Option("metrics", "serve Prometheus metrics at /metrics (bearer token required)", False, _boolean),
    Option("durability", "normal: a committed change survives a crash of rollcall; full: also a power loss "
                         "(SQLite synchronous=FULL, slower writes)", "normal", choices=DURABILITY_CHOICES),
    Option("max-body-bytes", "largest request body accepted; larger ones get 413", 1024 * 1024, int),
    Option("max-resource-bytes", "largest stored User or Group document (its JSON); a write that would store a "
                                 "larger one gets 413", DEFAULT_MAX_RESOURCE_BYTES, int),
    Option("max-page-bytes", "most bytes of resources in one list page; a page stops before count once the next "
                             "resource would pass it", DEFAULT_MAX_PAGE_BYTES, int),
    Option("bulk-max-operations", "most operations in one Bulk request (maxOperations in ServiceProviderConfig); "
                                  "more get 413", DEFAULT_BULK_MAX_OPERATIONS, int),
    Option("bulk-max-payload-bytes", "largest Bulk request body (maxPayloadSize in ServiceProviderConfig; its own "
                                     "limit, not --max-body-bytes); larger ones get 413",
           DEFAULT_BULK_MAX_PAYLOAD_BYTES, int),
    Option("max-connections", "connections served at once; at the limit a new one replaces the one waiting "
                              "longest for a request (unset: 1000, lowered to fit the open-files limit)", None, int),
    Option("header-timeout", "seconds a client has to send a request's headers", 10.0, float),
    Option("body-timeout", "seconds a client has to send a request's body once its headers are in; a slower one "
                           "gets 408", 30.0, float),
    Option("keepalive-timeout", "seconds an idle kept-alive connection stays open", 15.0, float),
    Option("hold", "hold a mass removal, and a change that would leave no admin, on the roster until a person "
                   "approves it (`rollcall holds`); --no-hold turns both safety nets off", True, _boolean),
    Option("hold-window", "seconds over which departures from the roster are counted for --hold-percent",
           DEFAULT_WINDOW_SECONDS, float),
    Option("hold-percent", "a change is held when the window's departures would pass this percentage of the "
                           "members at the window's start (and --hold-min)", DEFAULT_PERCENT, float),
    Option("hold-min", "this many departures in a window are never held", DEFAULT_MINIMUM, int),
    Option("trusted-hosts", "comma-separated Host names to answer (e.g. rollcall.example.com); a request for "
                            "another gets 400; unset: any, echoed into meta.location without --base-url"),
    Option("forward-auth-header", "the request header naming the person /auth/forward is asked about, set by the "
                                  "SSO layer in front of the proxy", "X-Forwarded-Email"),
    Option("webhook-backoff-base", "seconds before a failed webhook delivery is first retried; doubled on each "
                                   "failure, with jitter", DEFAULT_BACKOFF_BASE, float),
    Option("webhook-backoff-cap", "most seconds between two attempts of a failing webhook delivery",
           DEFAULT_BACKOFF_CAP, float),
    Option("webhook-retry-for", "seconds a webhook endpoint is retried before it is marked failing (until "
                                "`rollcall webhook redeliver`)", DEFAULT_RETRY_FOR, float),
    Option("webhook-timeout", "seconds a webhook receiver has to answer one delivery", DEFAULT_TIMEOUT, float),
    Option("loop", "event loop: auto is uvloop when installed (it is on Linux), else asyncio's own; asyncio "
                   "forces the stock loop, e.g. for debugging", "auto", choices=LOOP_CHOICES),
)}


def add_options(parser: argparse.ArgumentParser, names: Iterable[str]) -> None:
    """Add `--config` and the named options; defaults stay None so that precedence can be resolved later."""
    parser.add_argument("--config", metavar="FILE", help="TOML config file (env ROLLCALL_CONFIG)")
    for name in names:
        option = OPTIONS[name]
        shown = "unset" if option.default is None else str(option.default).lower() \
            if isinstance(option.default, bool) else option.default
        text = f"{option.help} (env {option.env}; default {shown})"
        if option.convert is _boolean:
            parser.add_argument(f"--{name}", dest=option.dest, action=argparse.BooleanOptionalAction, default=None,
                                help=text)
        else:
            parser.add_argument(f"--{name}", dest=option.dest, type=option.convert, choices=option.choices,
                                default=None, help=text, metavar=name.upper().replace("-", "_")
                                if option.choices is None else None)


def _config_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            values = tomllib.load(handle)
    except OSError as error:
        raise OptionError(f"cannot read the config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise OptionError(f"the config file {path} is not valid TOML: {error}") from None
    normalised = {key.replace("_", "-"): value for key, value in values.items()}
    unknown = sorted(set(normalised) - set(OPTIONS))
    if unknown:
        raise OptionError(f"the config file {path} has unknown keys: {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(OPTIONS))})")
    return normalised


def _from_text(option: Option, text: str, source: str) -> Any:
    try:
        value = option.convert(text)
    except ValueError:
        raise OptionError(f"{source}={text!r} is not a valid {option.name}") from None
    if option.choices is not None and value not in option.choices:
        raise OptionError(f"{source}={text!r} must be one of {', '.join(option.choices)}")
    return value


def resolve(args: argparse.Namespace, names: Iterable[str], environ: Mapping[str, str] | None = None
            ) -> dict[str, Any]:
    """Each named option's value, by the precedence in PRECEDENCE."""
    environ = os.environ if environ is None else environ
    config_path = getattr(args, "config", None) or environ.get("ROLLCALL_CONFIG")
    from_file = _config_file(config_path) if config_path else {}
    values: dict[str, Any] = {}
    for name in names:
        option = OPTIONS[name]
        flag_value = getattr(args, option.dest, None)
        if flag_value is not None:
            values[name] = flag_value
        elif option.env in environ:
            values[name] = _from_text(option, environ[option.env], option.env)
        elif name in from_file:
            raw = from_file[name]
            values[name] = raw if not isinstance(raw, str) or option.convert is str else \
                _from_text(option, raw, f"{config_path}: {name}")
            # The converters of file values are types (int, float, str), but for _boolean's.
            expected = bool if option.convert is _boolean else cast(type, option.convert)
            if expected is float and isinstance(values[name], int) and not isinstance(values[name], bool):
                values[name] = float(values[name])  # TOML: `header-timeout = 5` means 5.0
            if not isinstance(values[name], expected) or (expected is int and isinstance(values[name], bool)):
                raise OptionError(f"{config_path}: {name} = {raw!r} is not a valid {name}")
            if option.choices is not None and values[name] not in option.choices:
                raise OptionError(f"{config_path}: {name} must be one of {', '.join(option.choices)}")
        else:
            values[name] = option.default
    return values
