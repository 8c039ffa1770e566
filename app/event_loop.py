"""The event loop `rollcall serve` runs on: uvloop where it is installed (a dependency on Linux), else asyncio's own.

uvloop (libuv under asyncio's API) is the usual fast loop for aiohttp; `--loop asyncio` keeps the stock loop for
debugging (asyncio's debug mode, or to rule the loop out when chasing a bug).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from importlib import metadata
from typing import Any, TypeVar

LOOP_CHOICES = ("auto", "uvloop", "asyncio")
T = TypeVar("T")


class LoopUnavailable(Exception):
    """`--loop uvloop` on a machine where uvloop is not installed."""


def uvloop_version() -> str | None:
    """uvloop's version, or None when it cannot be imported."""
    try:
        import uvloop
    except ImportError:
        return None
    try:
        return metadata.version("uvloop")
    except metadata.PackageNotFoundError:
        return str(getattr(uvloop, "__version__", "unknown"))


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """A function making a new loop of the chosen kind: "auto" is uvloop when installed, else asyncio."""
    if choice not in LOOP_CHOICES:
        raise ValueError(f"--loop must be one of {', '.join(LOOP_CHOICES)}, not {choice!r}")
    if choice == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise LoopUnavailable("--loop uvloop: uvloop is not installed here (`pip install uvloop`); "
                                  "use --loop auto or --loop asyncio") from None
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """What a running loop is, for logs and reports: "uvloop 0.21.0" or "asyncio (_UnixSelectorEventLoop)"."""
    kind = type(loop)
    if kind.__module__.partition(".")[0] == "uvloop":
        return f"uvloop {uvloop_version()}"
    return f"asyncio ({kind.__name__})"


def run(main: Coroutine[Any, Any, T], choice: str) -> T:
    """asyncio.run(main) on a loop of the chosen kind."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)
