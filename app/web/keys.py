"""Typed keys for what the application and each request carry."""

from aiohttp import web

from app.config import Settings
from app.domain.directory import Directory
from app.domain.roster import RosterReader
from app.storage.database import Database

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
DIRECTORY = web.AppKey("directory", Directory)
ROSTER = web.AppKey("roster", RosterReader)

# Per request: the name of the token that authenticated it.
TOKEN_NAME = web.RequestKey("token_name", str)
