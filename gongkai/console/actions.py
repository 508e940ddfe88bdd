"""The console's buttons that change things: recall an item (publisher), retry a delivery (admin).

Both do exactly what the API's routes do, recorded in the audit log under the signed-in user.
"""

from __future__ import annotations

from aiohttp import web

from gongkai.console.render import message_page, needs, see_other
from gongkai.console.sessions import SESSION, flash
from gongkai.dispatch.queue import enqueue_delivery
from gongkai.dispatch.recall import recall_item
from gongkai.dispatch.retry import NotRetryable, requeue
from gongkai.storage.models import (
    Delivery,
    Item,
    ItemStatus,
    Role,
)
from gongkai.web.inputs import local_target, row_id
from gongkai.web.keys import HTTP, MAKER, POOL, SEALER, SETTINGS

routes = web.RouteTableDef()


@routes.post("/admin/deliveries/{id:\\d+}/retry")
@needs(Role.admin)
async def retry(request: web.Request) -> web.StreamResponse:
    app = request.app
    form = await request.post()
    delivery_id = row_id(request)
    async with app[MAKER]() as session:
        d = await session.get(Delivery, delivery_id)
        if d is None:
            return await message_page(request, 404, "没有这个投递", f"投递 #{delivery_id} 不存在。")
        try:
            job = await requeue(session, d, request[SESSION].name)
        except NotRetryable as exc:
            return await message_page(request, 409, "不能重试", str(exc))
    await enqueue_delivery(app[POOL], delivery_id, job=job)
    await flash(request, f"投递 #{delivery_id} 已重新排队。")
    return see_other(local_target(form.get("back"), f"/admin/deliveries/{delivery_id}"))


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
