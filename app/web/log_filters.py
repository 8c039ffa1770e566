"""Filters on the log handler: no bearer token in any line, and no flood of one line repeated."""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable

# A token of ours, or whatever follows "Bearer" (someone else's secret, perhaps): never written out.
_SECRETS = re.compile(r"rc_[A-Za-z0-9_-]{4,}|(?i:(?<=bearer)\s+[^\s'\"\\,;]+)")
_exception_formatter = logging.Formatter()


def redact(text: str) -> str:
    return _SECRETS.sub(lambda m: " [redacted]" if m.group().startswith((" ", "\t")) else "rc_[redacted]", text)


class RedactSecrets(logging.Filter):
    """Whatever a library puts in a log line (aiohttp quotes raw header lines), a token does not get through.

    The web layer never logs a request's headers; this is the second line of defence."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _exception_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class RepeatFilter(logging.Filter):
    """The first of identical lines is written; its repeats within `interval` seconds are counted, and the next
    one after the interval is written with that count. A client that triggers the same warning a thousand
    times a second costs one line per interval, not a thousand."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic,
                 remembered: int = 1024) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self.remembered = remembered
        # (logger, level, message) -> [time the last written line, repeats not written since]
        self.seen: OrderedDict[tuple[str, int, str], list[float]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, record.getMessage())
        now = self.clock()
        entry = self.seen.get(key)
        if entry is not None and now - entry[0] < self.interval:
            entry[1] += 1
            return False
        if entry is not None and entry[1]:
            record.msg, record.args = f"{key[2]} (repeated {int(entry[1])} times in the last " \
                                      f"{now - entry[0]:.0f} s)", None
        self.seen[key] = [now, 0]
        self.seen.move_to_end(key)
        if len(self.seen) > self.remembered:
            self.seen.popitem(last=False)
        return True
