"""Typed keys for what the application and each request carry."""

from aiohttp import web

from app.config import Settings
from app.domain.directory import Directory
from app.domain.holds import Holds
from app.domain.roster import RosterReader
from app.domain.tokens import Authenticator
from app.storage.interface import Storage
from app.web.access_log import AccessLog
from app.web.metrics import Metrics

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Storage)
DIRECTORY = web.AppKey("directory", Directory)
ROSTER = web.AppKey("roster", RosterReader)
HOLDS = web.AppKey("holds", Holds)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
METRICS = web.AppKey("metrics", Metrics)
ACCESS_LOG = web.AppKey("access_log", AccessLog)

# Per request: the name of the token that authenticated it.
TOKEN_NAME = web.RequestKey("token_name", str)
