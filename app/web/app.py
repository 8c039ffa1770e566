"""The application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from app.config import Settings
from app.domain.directory import Directory
from app.storage.database import Database
from app.web.keys import DATABASE, DIRECTORY, SETTINGS
from app.web.middleware import bearer_auth, scim_errors
from app.web.routes import setup_routes


async def _database(app: web.Application) -> AsyncIterator[None]:
    db = Database(app[SETTINGS].db_path)
    await db.open()
    app[DATABASE] = db
    app[DIRECTORY] = Directory(db)
    yield
    await db.close()


def init_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[scim_errors, bearer_auth], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_database)
    setup_routes(app)
    return app
