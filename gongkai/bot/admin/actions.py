"""The console's buttons that change things: recall an item (publisher), retry a delivery (admin).

Both do exactly what the API's routes do, recorded in the audit log under the signed-in user.
"""

from __future__ import annotations

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.bot.admin.render import message_page, needs, see_other
from gongkai.bot.admin.sessions import SESSION, flash
from gongkai.bot.keys import HTTP, MAKER, POOL, SEALER, SETTINGS
from gongkai.dispatch.queue import enqueue_delivery
from gongkai.dispatch.recall import recall_item
from gongkai.storage.models import (
    Attempt,
    AuditEntry,
    Delivery,
    DeliveryStatus,
    Item,
    ItemStatus,
    Role,
)
from gongkai.storage.types import utcnow

routes = web.RouteTableDef()


class NotRetryable(Exception):
    pass


async def requeue(session: AsyncSession, d: Delivery, actor: str) -> None:
    """Dead or failed deliveries of live items only: a delivered one is never sent again.

    The same rule and record as ``POST /api/v1/deliveries/{id}/retry``; the "requeued" attempt
    starts the failure count afresh in the dispatcher.
    """
    item = await session.get(Item, d.item_id)
    if d.status not in (DeliveryStatus.dead, DeliveryStatus.failed) or (
        item is not None and item.status == ItemStatus.recalled
    ):
        raise NotRetryable(
            f"投递 #{d.id} 的状态是“{d.status}”，只有失败或已放弃、且条目未撤回的投递可以重试"
        )
    d.status = DeliveryStatus.queued
    d.not_before = None
    d.updated_at = utcnow()
    session.add(d)
    session.add(
        Attempt(
            delivery_id=d.id,
            number=d.attempts,
            outcome="requeued",  # type: ignore[arg-type]
            error=f"requeued by {actor}",
        )
    )
    session.add(
        AuditEntry(
            actor=actor,
            action="retry",
            item_id=d.item_id,
            detail={"delivery": d.id, "via": "console"},
        )
    )
    await session.commit()


def _back(value: object, default: str) -> str:
    text = value if isinstance(value, str) else ""
    return text if text.startswith("/admin/") and not text.startswith("//") else default


@routes.post("/admin/deliveries/{id:\\d+}/retry")
@needs(Role.admin)
async def retry(request: web.Request) -> web.StreamResponse:
    app = request.app
    form = await request.post()
    delivery_id = int(request.match_info["id"])
    async with app[MAKER]() as session:
        d = await session.get(Delivery, delivery_id)
        if d is None:
            return await message_page(request, 404, "没有这个投递", f"投递 #{delivery_id} 不存在。")
        try:
            await requeue(session, d, request[SESSION].name)
        except NotRetryable as exc:
            return await message_page(request, 409, "不能重试", str(exc))
    await enqueue_delivery(app[POOL], delivery_id)
    await flash(request, f"投递 #{delivery_id} 已重新排队。")
    return see_other(_back(form.get("back"), f"/admin/deliveries/{delivery_id}"))


@routes.post("/admin/items/{id}/recall")
@needs(Role.publisher)
async def recall(request: web.Request) -> web.StreamResponse:
    app = request.app
    async with app[MAKER]() as session:
        item = await session.get(Item, request.match_info["id"])
        if item is None:
            return await message_page(request, 404, "没有这个条目", "条目不存在。")
        if item.status == ItemStatus.recalled:
            await flash(request, "该条目此前已撤回。", "warn")
            return see_other(f"/admin/items/{item.id}")
        report = await recall_item(
            session,
            app[SEALER],
            app[SETTINGS],
            app[HTTP],
            item,
            request[SESSION].name,
            redis=app[POOL],
        )
    text = (
        f"已撤回：取消未发出的投递 {report.cancelled} 条，删除已发出的消息 {report.deleted} 条，"
        f"无法撤回 {report.not_recallable} 条。"
    )
    await flash(request, text, "warn" if report.errors or report.not_recallable else "ok")
    for error in report.errors:
        await flash(request, f"撤回失败：{error}", "error")
    return see_other(f"/admin/items/{item.id}")
