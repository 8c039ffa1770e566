"""The ceiling: a bare aiohttp server on the same Python and venv as rollcall, doing no real work.

GET (any path) answers a fixed JSON body about the size of a SCIM User; POST, PUT and PATCH parse the
JSON body and echo it back. rollcall's throughput is reported as a fraction of this server's, so the
ratio shows what rollcall itself costs on top of aiohttp on this machine.

    .venv/bin/python bench/bare_server.py --host 127.0.0.1 --port 8090 [--loop auto|uvloop|asyncio]

It runs on the event loop rollcall serve would choose (app/event_loop.py, the same --loop), so that a faster loop
lifts the ceiling as much as it lifts rollcall, and prints the loop it runs on.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from aiohttp import web

from app.event_loop import LOOP_CHOICES, loop_factory, loop_name

# Shaped like rollcall's answer to GET /Users/{id} (about 450 bytes), so serialising and sending it
# costs about what a real user costs on the wire.
USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "id": "1ddd6e1f951f427a5c432c5621f8adfc",
    "userName": "bench-user-000001",
    "name": {"familyName": "User 000001", "givenName": "Bench"},
    "displayName": "Bench User 000001",
    "active": True,
    "emails": [{"value": "bench-user-000001@example.com", "type": "work", "primary": True}],
    "meta": {
        "resourceType": "User",
        "created": "2026-01-01T00:00:00.000000Z",
        "lastModified": "2026-01-01T00:00:00.000000Z",
        "location": "http://127.0.0.1/scim/v2/Users/1ddd6e1f951f427a5c432c5621f8adfc",
        "version": 'W/"1"',
    },
}


async def answer_get(request: web.Request) -> web.Response:
    # Serialised per request on purpose: rollcall serialises every answer too.
    return web.json_response(USER)


async def echo(request: web.Request) -> web.Response:
    return web.json_response(await request.json(loads=json.loads))


async def say_loop(app: web.Application) -> None:
    print(f"bare server event loop: {loop_name(asyncio.get_running_loop())}", flush=True)


def build_app() -> web.Application:
    app = web.Application()
    app.on_startup.append(say_loop)
    app.router.add_route("GET", "/{tail:.*}", answer_get)
    for method in ("POST", "PUT", "PATCH"):
        app.router.add_route(method, "/{tail:.*}", echo)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--loop", choices=LOOP_CHOICES, default="auto", help="as rollcall serve's --loop")
    args = parser.parse_args()
    # access_log=None, as rollcall runs aiohttp: the ceiling should not pay for aiohttp's log line per request.
    web.run_app(build_app(), host=args.host, port=args.port, access_log=None, print=None,
                loop=loop_factory(args.loop)())


if __name__ == "__main__":
    main()
