"""Run a fake provider (an aiohttp app) on a loopback port for the length of a test.

Port 0 lets the kernel choose, so parallel tests and concurrent sessions never collide; the
yielded base URL is what a test puts into the matching ``*_api_base`` setting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 and yield ``http://127.0.0.1:<port>`` (no trailing slash)."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host="127.0.0.1", port=0)
    await site.start()
    try:
        server = site._server  # the bound asyncio server: the only place the real port lives
        assert server is not None and server.sockets
        port = server.sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class ManualClock:
    """A clock a test moves by hand instead of sleeping: pass it to a fake, then ``advance``."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
