"""The request log and the format of every other log line: text or JSON, on stderr."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import TextIO

import orjson

from app.domain.clock import format_time
from app.web.log_filters import RedactSecrets, RepeatFilter


class AccessLog:
    """The request log: one line per request on stderr, as text or JSON.

    Written directly rather than through the logging module, whose machinery cost a sixth of a GET
    under load (bench/); other messages still go through logging, in the same format. The lines of one turn of
    the event loop go out in one write at its end (stderr is line-buffered: a write per line was a syscall per
    request), so a line still appears as soon as its request is answered; flush() writes what is pending."""

    def __init__(self, log_format: str, stream: TextIO | None = None) -> None:
        self.json = log_format == "json"
        self.stream = stream
        self._pending: list[str] = []

    def write(self, request_id: str, method: str, route: str, status: int, duration_ms: float, token: str) -> None:
        stamp = format_time(time.time(), millis=True)
        if self.json:
            line = orjson.dumps({"time": stamp, "level": "INFO", "logger": "rollcall.access",
                                 "request_id": request_id, "method": method, "route": route, "status": status,
                                 "duration_ms": duration_ms, "token": token}).decode()
        else:
            line = (f"{stamp} INFO rollcall.access request_id={request_id} method={method} route={route} "
                    f"status={status} duration_ms={duration_ms} token={token}")
        self._pending.append(line + "\n")
        if len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop: nothing would flush it later
                self.flush()

    def flush(self) -> None:
        if self._pending:
            lines, self._pending = self._pending, []
            (self.stream or sys.stderr).write("".join(lines))


class _CachedTimeFormatter(logging.Formatter):
    """Time stamps like the access log's."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return format_time(record.created, millis=True)


class JsonFormatter(_CachedTimeFormatter):
    """Log records as JSON lines, shaped like the access log's."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        if record.exc_text:
            line["exception"] = record.exc_text  # a filter has already formatted (and redacted) it
        elif record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def configure_logging(log_format: str) -> None:
    handler = logging.StreamHandler()
    # Repeats are counted before redaction, so that they are judged on the line as it was logged.
    handler.addFilter(RepeatFilter())
    handler.addFilter(RedactSecrets())
    handler.setFormatter(JsonFormatter() if log_format == "json"
                         else _CachedTimeFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
