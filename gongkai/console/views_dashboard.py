"""The first page a supervisor sees: what went out today and this week, and what is stuck."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from aiohttp import web

from gongkai.console import console_queries as cq
from gongkai.console.render import page
from gongkai.dispatch.queue import queue_depth
from gongkai.web.keys import MAKER, POOL, SETTINGS

routes = web.RouteTableDef()


@routes.get("/admin/")
async def dashboard(request: web.Request) -> web.Response:
    tz = request.app[SETTINGS].tz
    now = cq.now_local(tz)
    today = now.date()
    week_start = today - timedelta(days=today.weekday())
    today_from = cq.day_start(today, tz)
    async with request.app[MAKER]() as session:
        week_items = await cq.items_since(session, cq.day_start(week_start, tz))
        stats = await cq.channel_stats(session, now - timedelta(days=7))
        attention, attention_counts = await cq.needing_attention(session)
        unanswered = await cq.unanswered_count(session)
        shown = await cq.shown_statuses(session, week_items)
    depth: int | None = None
    with contextlib.suppress(Exception):  # Redis down: the page still shows the database's view
        depth = await queue_depth(request.app[POOL])
    today_items = [i for i in week_items if (i.published_at or i.created_at) >= today_from]
    return await page(
        request,
        "dashboard.html.j2",
        active="dashboard",
        today=today,
        week_start=week_start,
        today_items=today_items,
        week_items=week_items,
        stats=stats,
        attention=attention,
        attention_counts=attention_counts,
        unanswered=unanswered,
        depth=depth,
        shown=shown,
    )
