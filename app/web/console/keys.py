"""Typed keys for what the console keeps on the application and on each request."""

from aiohttp import web

from app.domain.clock import Clock
from app.domain.sessions import Session, Sessions
from app.web.console.backoff import Backoff

SESSIONS = web.AppKey("console_sessions", Sessions)
BACKOFF = web.AppKey("console_backoff", Backoff)
# The console's clock (sessions' limits, the sign-in backoff): time.time unless a test sets it before startup.
CLOCK: web.AppKey[Clock] = web.AppKey("console_clock")

# Per request: the signed-in session, and the cookie value it was found by.
SESSION = web.RequestKey("console_session", Session)
