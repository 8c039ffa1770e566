"""The log handler's filters: repeated lines are counted instead of written, and tokens are redacted."""

from __future__ import annotations

import io
import logging

from app.web.access_log import JsonFormatter
from app.web.log_filters import RedactSecrets, RepeatFilter, redact

TOKEN = "rc_" + "Ab3_-xY9" * 5 + "zzz"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _logger(*filters: logging.Filter, formatter: logging.Formatter | None = None) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter or logging.Formatter("%(levelname)s %(message)s"))
    for item in filters:
        handler.addFilter(item)
    logger = logging.getLogger(f"test.filters.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_a_line_repeated_a_thousand_times_is_written_once_then_summarised_once_per_interval() -> None:
    clock = Clock()
    logger, stream = _logger(RepeatFilter(interval=10, clock=clock))
    for _ in range(1000):
        logger.error("socket.accept() out of system resource")
        clock.now += 0.001
    logger.warning("something else")
    clock.now = 11
    logger.error("socket.accept() out of system resource")
    lines = stream.getvalue().splitlines()
    assert lines == ["ERROR socket.accept() out of system resource", "WARNING something else",
                     "ERROR socket.accept() out of system resource (repeated 999 times in the last 11 s)"]


def test_lines_that_differ_are_all_written() -> None:
    logger, stream = _logger(RepeatFilter(interval=10, clock=Clock()))
    for number in range(5):
        logger.info("request %d", number)
    assert len(stream.getvalue().splitlines()) == 5


def test_the_filter_remembers_a_bounded_number_of_lines() -> None:
    repeat = RepeatFilter(interval=10, clock=Clock(), remembered=16)
    logger, _ = _logger(repeat)
    for number in range(1000):
        logger.info("line %d", number)
    assert len(repeat.seen) == 16


def test_tokens_and_bearer_values_are_redacted_from_messages_and_tracebacks() -> None:
    assert TOKEN[3:11] not in redact(f"b'Authorization: Bearer {TOKEN}\\x01'")
    assert redact("Authorization: bearer s3cr3t-from-elsewhere") == "Authorization: bearer [redacted]"
    for formatter in (logging.Formatter("%(message)s"), JsonFormatter()):
        logger, stream = _logger(RedactSecrets(), formatter=formatter)
        logger.error("header %r", f"Bearer {TOKEN}")
        try:
            raise ValueError(f"Invalid header value char: b'Authorization: Bearer {TOKEN}\\x01'")
        except ValueError:
            logger.exception("Error handling request")
        written = stream.getvalue()
        assert "ValueError" in written and "Error handling request" in written
        for start in range(len(TOKEN) - 7):
            assert TOKEN[start:start + 8] not in written, written
