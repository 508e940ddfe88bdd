"""Liveness for operators and Prometheus metrics."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, text
from sqlmodel import select

from gongkai import __version__
from gongkai.dispatch import metrics
from gongkai.dispatch.queue import queue_depth
from gongkai.dispatch.reconcile import oldest_undelivered_seconds
from gongkai.storage.models import Delivery, Item
from gongkai.web.answers import Health, answer
from gongkai.web.keys import MAKER, POOL

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(3), request.app[MAKER]() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}: {exc}"
    try:
        async with asyncio.timeout(3):
            await request.app[POOL].ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}: {exc}"
    healthy = all(v == "ok" for v in checks.values())
    return answer(
        Health(status="ok" if healthy else "degraded", version=__version__, checks=checks),
        status=200 if healthy else 503,
    )


@routes.get("/metrics")
async def metrics_view(request: web.Request) -> web.Response:
    async with request.app[MAKER]() as session:
        for status, n in (
            await session.exec(select(Item.status, func.count()).group_by(Item.status))
        ).all():
            metrics.ITEMS.labels(status).set(n)
        metrics.DELIVERY_ROWS.clear()
        for channel, status, n in (
            await session.exec(
                select(Delivery.channel, Delivery.status, func.count()).group_by(
                    Delivery.channel, Delivery.status
                )
            )
        ).all():
            metrics.DELIVERY_ROWS.labels(channel, status).set(n)
        metrics.OLDEST_UNDELIVERED.set(await oldest_undelivered_seconds(session))
    try:
        pool = request.app[POOL]
        metrics.QUEUE_DEPTH.set(await queue_depth(pool))
        counts = await pool.hgetall(metrics.SHARED_KEY)
        for event in metrics.SHARED_EVENTS:
            metrics.SHARED.labels(event).set(int(counts.get(event.encode(), 0)))
    except Exception:  # Redis down: /healthz says so; metrics still answer
        pass
    body = generate_latest(metrics.REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
