"""Live progress of one item as server-sent events: counts per status about once a second.

SSE rather than WebSockets: one direction is all we need, it passes proxies as plain HTTP, and
the browser's EventSource reconnects by itself. The stream ends with a ``done`` event once every
delivery has reached a final status, and after a while in any case (a scheduled item may wait
for days); the browser then simply reconnects.
"""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from gongkai.console import console_queries as cq
from gongkai.storage.models import Item
from gongkai.web.keys import MAKER

routes = web.RouteTableDef()
INTERVAL_SECONDS = 1.0
MAX_STREAM_SECONDS = 300.0


def _event(name: str, data: dict[str, object]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


@routes.get("/admin/items/{id}/events")
async def item_events(request: web.Request) -> web.StreamResponse:
    maker = request.app[MAKER]
    item_id = request.match_info["id"]
    async with maker() as session:
        if await session.get(Item, item_id) is None:
            raise web.HTTPNotFound(text="no such item")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx would otherwise hold the events back
        }
    )
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    started = time.monotonic()
    last: dict[str, object] | None = None
    try:
        while True:
            async with maker() as session:
                item = await session.get(Item, item_id)
                progress = await cq.item_progress(session, item_id)
            data = progress.as_json(item)
            if data != last:
                await response.write(_event("progress", data))
                last = data
            else:
                await response.write(b": still here\n\n")  # a comment keeps proxies from timing out
            if progress.final:
                await response.write(_event("done", data))
                break
            if time.monotonic() - started > MAX_STREAM_SECONDS:
                break
            await asyncio.sleep(INTERVAL_SECONDS)
    except ConnectionResetError:
        return response  # the page was closed
    await response.write_eof()
    return response
