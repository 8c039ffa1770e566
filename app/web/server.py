"""The HTTP server: aiohttp's protocol, with a cap on connections, a deadline for request headers, SCIM answers
to requests aiohttp cannot parse, and a clean shutdown on SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import ssl
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import HttpProcessingError, RawRequestMessage
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.streams import StreamReader

from app.event_loop import loop_name
from app.protocol import errors
from app.web.app import HANDLER_ARGS, SERVER_NAME
from app.web.http import error_response

log = logging.getLogger("rollcall.server")

DEFAULT_MAX_CONNECTIONS = 1000
# Descriptors for SQLite's files (three per connection), the lock, the log, the standard streams, epoll and the
# listening socket: 17 in practice, with room to spare.
BASE_DESCRIPTORS = 64


@dataclass(frozen=True)
class OpenFiles:
    """The process's RLIMIT_NOFILE before and after raising the soft limit to the hard one."""

    soft_before: int
    soft: int
    hard: int


def raise_open_files_limit() -> OpenFiles:
    """Lift the soft open-files limit to the hard limit: the usual 1,024 is far below what a server needs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            target = soft
    else:
        target = soft
    return OpenFiles(soft, target, hard)


def _finite(open_files: int) -> int:
    return 1 << 20 if open_files == resource.RLIM_INFINITY or open_files < 0 else open_files


def listen_backlog(open_files: int) -> int:
    """The listen backlog, which is also how many connections asyncio accepts in one go: smaller under a small
    open-files limit, since each of them holds a descriptor before rollcall can count it."""
    return max(16, min(128, _finite(open_files) // 16))


def descriptor_reserve(open_files: int) -> int:
    """Descriptors the connection cap leaves free so that accept() never fails with EMFILE: up to one batch just
    accepted, one batch being closed (a closed connection's descriptor is released on the loop's next turn),
    and one more batch of slack, plus BASE_DESCRIPTORS."""
    return 3 * listen_backlog(open_files) + BASE_DESCRIPTORS


def connection_cap(requested: int | None, open_files: int) -> int:
    """The number of connections to serve at once: the requested (or default) number, lowered to fit under the
    open-files limit with descriptor_reserve() to spare."""
    return max(1, min(requested or DEFAULT_MAX_CONNECTIONS, _finite(open_files) - descriptor_reserve(open_files)))


@dataclass(frozen=True)
class Limits:
    max_connections: int
    header_timeout: float
    keepalive_timeout: float
    backlog: int = 128


class ConnectionGate:
    """Counts open connections; at the cap, a new one takes the place of the connection that has waited longest
    for a request (a half-open one, most likely), or is closed at once if every connection is busy."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.open: set[ScimRequestHandler] = set()
        # Connections waiting for a request, the longest-waiting first.
        self.waiting: OrderedDict[ScimRequestHandler, None] = OrderedDict()

    def make_room(self) -> bool:
        """Whether a new connection may be served, closing the longest-waiting one if that is what it takes."""
        if len(self.open) < self.cap:
            return True
        if not self.waiting:
            log.warning("at the connection limit (%d, --max-connections) with every connection busy: "
                        "refused a new connection", self.cap)
            return False
        oldest, _ = self.waiting.popitem(last=False)
        self.open.discard(oldest)
        log.warning("at the connection limit (%d, --max-connections): closed the connection that had "
                    "waited longest for a request", self.cap)
        oldest.evict()
        return True

    def add(self, handler: ScimRequestHandler) -> None:
        self.open.add(handler)
        # Waiting from the start: asyncio accepts a batch of connections before any of them is made.
        self.wait(handler)

    def wait(self, handler: ScimRequestHandler) -> None:
        self.waiting[handler] = None
        self.waiting.move_to_end(handler)

    def busy(self, handler: ScimRequestHandler) -> None:
        self.waiting.pop(handler, None)

    def release(self, handler: ScimRequestHandler) -> None:
        self.open.discard(handler)
        self.waiting.pop(handler, None)


class _Refused(asyncio.Protocol):
    """A connection over the cap: closed as soon as it is made, costing one accept() and one close()."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


# What a client is told about a request aiohttp's parser refused. Never the parser's own message: it quotes the
# offending line, which may be an Authorization header.
def _parse_error_detail(error: BaseException | None) -> str:
    if isinstance(error, LineTooLong):
        return (f"The request line or a header is too long: rollcall accepts a request line of up to "
                f"{HANDLER_ARGS['max_line_size']} bytes and headers of up to {HANDLER_ARGS['max_field_size']}.")
    if isinstance(error, BadHttpMethod):
        return "This is not an HTTP request rollcall understands (is it TLS sent to a plain-HTTP port?)."
    return ("The request is not valid HTTP/1.1: its request line, a header or its framing is malformed (for "
            "example a control character, a bare LF or a folded header line). It is not quoted here because "
            "it may carry credentials.")


class ScimRequestHandler(web.RequestHandler):
    """aiohttp's HTTP/1.1 protocol with rollcall's deadlines, connection accounting and error answers."""

    def __init__(self, manager: web.Server, gate: ConnectionGate, limits: Limits, **kwargs: Any) -> None:
        super().__init__(manager, loop=asyncio.get_running_loop(), keepalive_timeout=limits.keepalive_timeout,
                         **kwargs)
        self.gate = gate
        self.header_timeout = limits.header_timeout
        self.header_deadline: asyncio.TimerHandle | None = None
        self.handling = False
        self.made = False
        self.evicted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.evicted:  # replaced by a newer connection before asyncio got round to making this one
            transport.close()
            return
        self.made = True
        super().connection_made(transport)
        self._arm_header_deadline()

    def evict(self) -> None:
        self.evicted = True
        if self.made:
            self.force_close()

    def data_received(self, data: bytes) -> None:
        # The first bytes of the next request on a kept-alive connection start its header deadline; the idle
        # time before them is bounded by the keep-alive timeout instead.
        if not self.handling and self.header_deadline is None:
            self._arm_header_deadline()
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_header_deadline()
        self.gate.release(self)
        if self.made:
            super().connection_lost(exc)

    def request_started(self) -> None:
        """Its headers are in: the request is being handled."""
        self.handling = True
        self._cancel_header_deadline()
        self.gate.busy(self)

    async def finish_response(self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
                              ) -> tuple[web.StreamResponse, bool]:
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self.handling = False
            if self.connected:
                self.gate.wait(self)

    def _arm_header_deadline(self) -> None:
        self._cancel_header_deadline()
        self.header_deadline = asyncio.get_running_loop().call_later(self.header_timeout, self._headers_late)

    def _cancel_header_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _headers_late(self) -> None:
        self.header_deadline = None
        if not self.handling and self.connected:
            log.info("closed a connection whose request headers were not complete within %g s (--header-timeout)",
                     self.header_timeout)
            self.force_close()

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """A SCIM Error for what aiohttp could not parse or answer, logged without the request's bytes."""
        if isinstance(exc, HttpProcessingError):
            # The exception's text quotes the raw header; only its kind is logged.
            log.warning("refused a malformed HTTP request (%s)", type(exc).__name__)
            error = errors.invalid_syntax(_parse_error_detail(exc))  # aiohttp answers every parse error with 400
        elif status == 504:
            error = errors.ScimError(504, "rollcall could not answer in time.")
        else:
            log.error("unhandled error in the HTTP layer", exc_info=exc)
            error = errors.ScimError(500, "rollcall hit an internal error; the server log has details.")
        if request.writer.output_size > 0:
            raise ConnectionError("the answer had already begun; the connection is closed instead")
        response = error_response(error)
        # Parser errors have no route, so the application's on_response_prepare does not see them.
        response.headers["Server"] = SERVER_NAME
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        # aiohttp reports a body it could not read (bad chunking, a garbage gzip body nobody read) with a
        # traceback quoting the bytes; the client already has its answer, so one line without them is enough.
        error = kw.get("exc_info")
        if isinstance(error, (HttpProcessingError, web.RequestPayloadError)):
            log.warning("dropped a connection whose request body could not be read (%s)",
                        type(error.__cause__ or error).__name__)
            return
        super().log_exception(*args, **kw)


def _notify_request_start(original: Any) -> Any:
    def request_factory(message: RawRequestMessage, payload: StreamReader, protocol: web.RequestHandler,
                        writer: AbstractStreamWriter, task: asyncio.Task[None]) -> web.BaseRequest:
        if isinstance(protocol, ScimRequestHandler):
            protocol.request_started()
        return original(message, payload, protocol, writer, task)
    return request_factory


async def serve(app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None, limits: Limits,
                shutdown_grace: float) -> None:
    """Serve `app` until SIGTERM or SIGINT, then give in-flight requests `shutdown_grace` seconds to finish."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_grace)
    await runner.setup()
    manager = runner.server
    assert manager is not None
    manager.request_factory = _notify_request_start(manager.request_factory)
    gate = ConnectionGate(limits.max_connections)
    handler_args = {**HANDLER_ARGS, "access_log": None}

    def connection() -> asyncio.BaseProtocol:
        if not gate.make_room():
            return _Refused()
        handler = ScimRequestHandler(manager, gate, limits, **handler_args)
        gate.add(handler)
        if ssl_context is not None:
            # A TLS client that never finishes its handshake never reaches connection_made (nor _lost):
            # give its place back once asyncio's handshake timeout has closed it.
            loop.call_later(limits.header_timeout + 1, lambda: None if handler.made else gate.release(handler))
        return handler

    try:
        listener = await loop.create_server(connection, host, port, ssl=ssl_context, backlog=limits.backlog,
                                            reuse_address=True,
                                            ssl_handshake_timeout=limits.header_timeout if ssl_context else None)
    except BaseException:
        # The runner has opened the database, whose thread would keep the process alive after the error.
        await runner.cleanup()
        raise
    log.info("event loop: %s (--loop)", loop_name(loop))
    try:
        await stop.wait()
    finally:
        listener.close()
        await runner.cleanup()
