"""The application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from app.config import Settings
from app.domain.clock import utc_now
from app.domain.directory import Directory
from app.domain.holds import Holds
from app.domain.roster import RosterReader, reconcile_if_rules_changed
from app.domain.tokens import Authenticator
from app.storage.factory import open_storage
from app.web.access_log import AccessLog
from app.web.answer_budget import PAGES_IN_FLIGHT, AnswerBudget, answer_budget_middlewares
from app.web.console import console_guard, setup_console
from app.web.keys import ACCESS_LOG, AUTHENTICATOR, DATABASE, DIRECTORY, HOLDS, METRICS, ROSTER, SETTINGS
from app.web.metrics import Metrics
from app.web.middleware import bearer_auth, scim_errors, trusted_host
from app.web.observability import observe
from app.web.routes import setup_routes
from app.web.webhook_delivery import webhook_worker


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    db = open_storage(settings.db_path, synchronous=settings.synchronous)
    await db.open()
    policy = settings.hold_policy
    await db.write(lambda tx: reconcile_if_rules_changed(tx, settings.rules, utc_now(), policy))
    app[DATABASE] = db
    app[DIRECTORY] = Directory(db, settings.rules, settings.limits, policy)
    app[ROSTER] = RosterReader(db, settings.rules)
    app[HOLDS] = Holds(db, settings.rules, policy)
    app[AUTHENTICATOR] = Authenticator(db)
    yield
    await app[AUTHENTICATOR].flush()
    await db.close()


# The HTTP protocol's settings, for `rollcall serve` (app/web/server.py) and the test server alike.
HANDLER_ARGS: dict[str, Any] = {
    # A long filter or attribute list must reach our own checks (a SCIM 400), not aiohttp's 8 KiB request-line
    # limit.
    "max_line_size": 65536,
    "max_field_size": 16384,
    # Bodies are decompressed by read_json (app/web/http.py), where a bad one becomes a SCIM 400; aiohttp's
    # parser would raise from inside the connection, with a traceback, even for a body nobody reads.
    "auto_decompress": False,
}
# The Server header of every answer: no Python or aiohttp version for a scanner to match.
SERVER_NAME = "rollcall"


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_NAME


async def _flush_access_log(app: web.Application) -> None:
    log = app.get(ACCESS_LOG)
    if log is not None:
        log.flush()  # the last turn's lines, in case the loop stops before it ends


def init_app(settings: Settings) -> web.Application:
    send_large, reserve_large = answer_budget_middlewares(AnswerBudget(PAGES_IN_FLIGHT * settings.max_page_bytes))
    # Without --trusted-hosts the host check does nothing: no layer for every request to pass through.
    host_check = [trusted_host] if settings.trusted_hosts else []
    app = web.Application(middlewares=[send_large, observe, scim_errors, *host_check, console_guard,
                                       bearer_auth, reserve_large],
                          client_max_size=settings.max_body_bytes, handler_args=HANDLER_ARGS)
    app.on_response_prepare.append(_server_header)
    app[SETTINGS] = settings
    app[ACCESS_LOG] = AccessLog(settings.log_format)
    if settings.metrics:
        app[METRICS] = Metrics()
    app.on_cleanup.append(_flush_access_log)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(webhook_worker)  # after the database: stopped before it closes
    setup_routes(app)
    setup_console(app)  # its session store opens after the database, too
    return app
