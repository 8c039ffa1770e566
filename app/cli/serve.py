"""`rollcall serve`: the SCIM server, with TLS, one lock per database file, and a clean shutdown."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import ssl
import sys
from typing import TYPE_CHECKING, Any

from app import __version__, event_loop
from app.cli.common import CommandError, fail, options, rules_from, run_with_database
from app.cli.options import PRECEDENCE, add_options
from app.config import SCIM_PREFIX, Settings
from app.diagnostics import missing_speedups
from app.domain import scopes, tokens
from app.storage.errors import DatabaseError
from app.storage.factory import serve_lock, shown, upgrade
from app.storage.interface import Storage

if TYPE_CHECKING:  # aiohttp is imported only by `serve`, so that the other commands start quickly
    from app.web.server import Limits

log = logging.getLogger("rollcall.serve")

SERVE_OPTIONS = ("db", "host", "port", "base-url", "group-prefix", "default-role", "tls-cert", "tls-key",
                 "log-format", "metrics", "durability", "max-body-bytes", "max-resource-bytes", "max-page-bytes",
                 "bulk-max-operations", "bulk-max-payload-bytes", "max-connections", "header-timeout", "body-timeout",
                 "keepalive-timeout", "trusted-hosts", "forward-auth-header", "hold", "hold-window",
                 "hold-percent", "hold-min", "webhook-backoff-base", "webhook-backoff-cap", "webhook-retry-for",
                 "webhook-timeout", "loop")
# In-flight requests get this long to finish after SIGTERM or SIGINT.
SHUTDOWN_GRACE_SECONDS = 3.0


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the SCIM server", description=PRECEDENCE)
    add_options(serve, SERVE_OPTIONS)
    serve.set_defaults(run=serve_command)


def settings_from(args: argparse.Namespace) -> Settings:
    values = options(args, SERVE_OPTIONS)
    rules = rules_from(values)
    try:
        return Settings(
            db_path=values["db"], host=values["host"], port=values["port"], base_url=values["base-url"],
            group_prefix=rules.prefix, default_role=rules.default_role, tls_cert=values["tls-cert"],
            tls_key=values["tls-key"], log_format=values["log-format"], metrics=values["metrics"],
            durability=values["durability"], max_body_bytes=values["max-body-bytes"],
            max_resource_bytes=values["max-resource-bytes"], max_page_bytes=values["max-page-bytes"],
            bulk_max_operations=values["bulk-max-operations"],
            bulk_max_payload_bytes=values["bulk-max-payload-bytes"],
            max_connections=values["max-connections"], header_timeout=values["header-timeout"],
            body_timeout=values["body-timeout"],
            keepalive_timeout=values["keepalive-timeout"],
            trusted_hosts=tuple(host for host in (values["trusted-hosts"] or "").split(",") if host.strip()),
            forward_auth_header=values["forward-auth-header"],
            hold=values["hold"], hold_window=values["hold-window"], hold_percent=values["hold-percent"],
            hold_min=values["hold-min"],
            webhook_backoff_base=values["webhook-backoff-base"], webhook_backoff_cap=values["webhook-backoff-cap"],
            webhook_retry_for=values["webhook-retry-for"], webhook_timeout=values["webhook-timeout"],
            loop=values["loop"],
        )
    except ValueError as error:
        raise CommandError(str(error)) from None


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.tls_cert or not settings.tls_key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as error:
        raise CommandError(f"cannot use --tls-cert {settings.tls_cert} with --tls-key {settings.tls_key}: "
                           f"{error}") from None
    return context


def serve_command(args: argparse.Namespace) -> int:
    from app.web import server
    from app.web.access_log import configure_logging
    from app.web.app import init_app

    settings = settings_from(args)
    if getattr(sys, "frozen", False) and (missing := missing_speedups()):
        return fail(f"this binary was built without aiohttp's C speedups ({', '.join(missing)}); it would serve "
                    "several times slower. Rebuild it with `make binary` (see `rollcall check`).")
    context = tls_context(settings)
    public = settings.base_url or f"{settings.scheme}://{settings.host}:{settings.port}{SCIM_PREFIX}"
    lock = serve_lock(settings.db_path)
    try:
        lock.acquire()
        upgraded = asyncio.run(upgrade(settings.db_path))
    except DatabaseError as error:
        return fail(str(error))
    try:
        if upgraded is not None:
            saved = f"; the old file is saved as {upgraded[2]}" if upgraded[2] is not None else ""
            print(f"rollcall: upgraded the database from schema version {upgraded[0]} to {upgraded[1]}{saved}",
                  flush=True)
        if run_with_database(settings.db_path, lambda db: _first_token(db, public, console_address(settings))):
            return 1
        configure_logging(settings.log_format)
        limits = _limits(settings)
        print(f"rollcall {__version__} serving {public} (database {shown(settings.db_path)}); the console is at "
              f"{console_address(settings)}", flush=True)
        try:
            event_loop.run(server.serve(init_app(settings), settings.host, settings.port, context, limits,
                                        SHUTDOWN_GRACE_SECONDS), settings.loop)
        except event_loop.LoopUnavailable as error:
            return fail(str(error))
        except OSError as error:
            return fail(f"cannot listen on {settings.host}:{settings.port}: {error.strerror or error}; is another "
                        "server using that port? Pick another --port")
        return 0
    finally:
        lock.release()


def _limits(settings: Settings) -> Limits:
    """Raise the open-files limit, fit the connection cap under it, and say both, with what the Host header
    can do when nothing pins it down."""
    from app.web import server

    files = server.raise_open_files_limit()
    cap = server.connection_cap(settings.max_connections, files.soft)
    log.info("open files limit: soft %d (was %d), hard %d; serving at most %d connections at once "
             "(--max-connections), request headers within %g s (--header-timeout) and bodies within %g s "
             "(--body-timeout), idle connections kept %g s (--keepalive-timeout)", files.soft, files.soft_before,
             files.hard, cap, settings.header_timeout, settings.body_timeout, settings.keepalive_timeout)
    if settings.max_connections is not None and cap < settings.max_connections:
        log.warning("--max-connections %d lowered to %d to leave %d of the %d open files for the database, the "
                    "log and connections being accepted", settings.max_connections, cap,
                    server.descriptor_reserve(files.soft), files.soft)
    if not settings.base_url and not settings.trusted_hosts and not _is_loopback(settings.host):
        log.warning("serving on %s without --base-url or --trusted-hosts: the Host header a client sends is "
                    "echoed into meta.location; set one of them", settings.host)
    return server.Limits(cap, settings.header_timeout, settings.keepalive_timeout, server.listen_backlog(files.soft))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def console_address(settings: Settings) -> str:
    """Where a browser finds the console: the root of the public address (--base-url without its SCIM path)."""
    if settings.base_url:
        return settings.base_url.removesuffix(SCIM_PREFIX).rstrip("/") + "/"
    return f"{settings.scheme}://{settings.host}:{settings.port}/"


def _free_name(base: str, taken: set[str]) -> str:
    """`base`, or `base-2`, `base-3`, ...: a name stays taken by a revoked or expired token."""
    return next(n for n in (base, *(f"{base}-{i}" for i in range(2, len(taken) + 3))) if n not in taken)


async def _first_token(db: Storage, public: str, console: str) -> int:
    """A database with no live token gets two, each printed once: the identity provider's (scim + roster) and an
    admin one for the console. A database that has a live token is left as it is."""
    if not await tokens.has_live_token(db):
        # Every token may be expired or revoked, "default" among them: a name stays taken, so take the next free one.
        taken = {record.name for record in await tokens.list_tokens(db)}
        name = _free_name("default", taken)
        token = await tokens.create_token(db, name)
        admin_name = _free_name("console-admin", taken | {name})
        admin = await tokens.create_token(db, admin_name, (scopes.ADMIN,))
        print("rollcall: this database had no API token, so two were created. Each is shown only once:")
        print(f"  Token:    {token}")
        print(f"  Base URL: {public}")
        print("Paste both into your identity provider (JumpCloud: Identity Management > SCIM 2.0).")
        print(f"  Admin token: {admin}")
        print(f"  Console:     {console}")
        print("Open the console's address in a browser and paste the admin token to sign in.", flush=True)
    return 0
