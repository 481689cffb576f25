"""The API's guard middleware on a real aiohttp server: token, JSON errors, 503 with Retry-After, no traces."""

from __future__ import annotations

import asyncio

from aiohttp import ClientSession, web

from streams.api import Unavailable, guard
from streams.queries import BadParameter


async def _serve_and_call(token, calls):
    async def recovering(request):
        raise Unavailable("this worker's tables are still recovering")

    async def bad(request):
        raise BadParameter("limit", "must be an integer from 1 to 1000")

    async def broken(request):
        raise RuntimeError("secret internals /etc/passwd")

    async def fine(request):
        return web.json_response({"ok": True})

    app = web.Application(middlewares=[guard(token)])
    app.router.add_get("/recovering", recovering)
    app.router.add_get("/bad", bad)
    app.router.add_get("/broken", broken)
    app.router.add_get("/fine", fine)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    out = []
    try:
        async with ClientSession() as session:
            for path, headers in calls:
                async with session.get(f"http://127.0.0.1:{port}{path}", headers=headers) as resp:
                    out.append((resp.status, await resp.json(), resp.headers.get("Retry-After")))
    finally:
        await runner.cleanup()
    return out


def test_errors_are_json_and_a_recovering_partition_says_when_to_retry():
    results = asyncio.run(_serve_and_call(None, [("/recovering", {}), ("/bad", {}), ("/broken", {}),
                                                 ("/fine", {}), ("/missing", {})]))
    recovering, bad, broken, fine, missing = results
    assert recovering[0] == 503 and recovering[2] == "2" and "recovering" in recovering[1]["error"]
    assert bad[:2] == (400, {"error": "limit: must be an integer from 1 to 1000", "parameter": "limit"})
    assert broken[:2] == (500, {"error": "internal error"})
    assert fine[:2] == (200, {"ok": True})
    assert missing[0] == 404 and missing[1] == {"error": "Not Found"}


def test_the_token_is_required_on_every_route_when_set():
    token = "s3cret"
    calls = [("/fine", {}), ("/fine", {"Authorization": "Bearer wrong"}), ("/fine", {"Authorization": "s3cret"}),
             ("/missing", {}), ("/fine", {"Authorization": f"Bearer {token}"})]
    results = asyncio.run(_serve_and_call(token, calls))
    assert [r[0] for r in results] == [401, 401, 401, 401, 200]
