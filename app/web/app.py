"""The application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from app.config import Settings
from app.domain.clock import utc_now
from app.domain.directory import Directory
from app.domain.roster import RosterReader, reconcile_if_rules_changed
from app.domain.tokens import Authenticator
from app.storage.database import Database
from app.web.access_log import AccessLog
from app.web.answer_budget import PAGES_IN_FLIGHT, AnswerBudget, answer_budget_middlewares
from app.web.keys import ACCESS_LOG, AUTHENTICATOR, DATABASE, DIRECTORY, METRICS, ROSTER, SETTINGS
from app.web.metrics import Metrics
from app.web.middleware import bearer_auth, scim_errors
from app.web.observability import observe
from app.web.routes import setup_routes


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    db = Database(settings.db_path, synchronous=settings.synchronous)
    await db.open()
    await db.write(lambda conn: reconcile_if_rules_changed(conn, settings.rules, utc_now()))
    app[DATABASE] = db
    app[DIRECTORY] = Directory(db, settings.rules, settings.limits)
    app[ROSTER] = RosterReader(db, settings.rules)
    app[AUTHENTICATOR] = Authenticator(db)
    yield
    await db.close()


def init_app(settings: Settings) -> web.Application:
    send_large, reserve_large = answer_budget_middlewares(AnswerBudget(PAGES_IN_FLIGHT * settings.max_page_bytes))
    # A long filter or attribute list must reach our own checks (a SCIM 400), not aiohttp's 8 KiB request-line
    # limit, whose plain-text 400 no SCIM client can read.
    app = web.Application(middlewares=[send_large, observe, scim_errors, bearer_auth, reserve_large],
                          client_max_size=settings.max_body_bytes,
                          handler_args={"max_line_size": 65536, "max_field_size": 16384})
    app[SETTINGS] = settings
    app[ACCESS_LOG] = AccessLog(settings.log_format)
    if settings.metrics:
        app[METRICS] = Metrics()
    app.cleanup_ctx.append(_database)
    setup_routes(app)
    return app
