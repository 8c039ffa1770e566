"""Failed sign-ins slow down: after a few, each client waits longer and longer before it may try again.

Kept in memory, per client address: a restart forgets it, which costs a guesser nothing it could not get by
waiting, while 256-bit tokens make guessing hopeless anyway; this keeps a script from hammering the form. Behind a
reverse proxy every client shares the proxy's address, so a burst of failures there slows everyone's sign-in
for a while: an annoyance, not a lock-out (the wait is capped)."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from app.domain.clock import Clock

FREE_FAILURES = 5  # failures before any wait
FIRST_WAIT_SECONDS = 2.0  # doubled with each further failure
MAX_WAIT_SECONDS = 300.0
FORGET_AFTER_SECONDS = 3600.0  # a client with no failure for this long starts afresh
MAX_CLIENTS = 10_000  # the oldest are forgotten first, so the table cannot grow without bound


@dataclass
class _Record:
    failures: int
    until: float  # when the client may try again


class Backoff:
    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self._clients: OrderedDict[str, _Record] = OrderedDict()

    def wait(self, client: str) -> float:
        """Seconds `client` must still wait before a sign-in is checked (0: it may try now)."""
        record = self._clients.get(client)
        if record is None:
            return 0.0
        now = self.clock()
        if now - record.until > FORGET_AFTER_SECONDS:
            del self._clients[client]
            return 0.0
        return max(0.0, record.until - now)

    def failed(self, client: str) -> None:
        now = self.clock()
        record = self._clients.pop(client, None) or _Record(0, now)
        record.failures += 1
        extra = record.failures - FREE_FAILURES
        wait = min(MAX_WAIT_SECONDS, FIRST_WAIT_SECONDS * 2 ** min(extra - 1, 16)) if extra > 0 else 0.0
        record.until = now + wait
        self._clients[client] = record
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)
