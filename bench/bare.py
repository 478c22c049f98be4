"""The yardstick for the HTTP benchmark: a bare aiohttp server that checks the API key and answers
with a fixed JSON body of a given size. `python -m bench.bare PORT KEY BODY_BYTES STATUS`."""

from __future__ import annotations

import sys

from aiohttp import web


def make_app(key: str, size: int, status: int) -> web.Application:
    padding = max(0, size - len('{"pad":""}'))
    body = ('{"pad":"' + "x" * padding + '"}').encode()

    async def handle(request: web.Request) -> web.Response:
        if request.headers.get("x-api-key") != key:
            return web.json_response({"error": "key"}, status=401)
        if request.can_read_body:
            await request.read()
        return web.Response(body=body, status=status, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def main() -> None:
    port, key, size, status = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    web.run_app(make_app(key, size, status), host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
