"""Turning a reply that many residents asked for into a published item, with one click.

The item goes through the normal ingest (``dispatch.ingest.ingest_item``): every rule of
publishing holds — approval (the signed-in publisher), the secrecy review (a box the publisher
must tick), no unmasked personal numbers — and it is refused by field like any other item. What
is published is the reply's text and its attachments, never the letter (which names the
applicant).
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from sqlmodel import col, select

from gongkai.console.render import message_page, needs, see_other
from gongkai.console.sessions import SESSION, flash
from gongkai.dispatch.ingest import ItemConflict, ingest_item
from gongkai.domain.applications import Number, Outcome
from gongkai.domain.catalog import DOMAINS, OTHER_DOMAIN
from gongkai.domain.items import ItemRefused, parse_item
from gongkai.storage import application_flow as flow
from gongkai.storage.applications import ApplicationEvent
from gongkai.storage.models import Region, Role
from gongkai.web.keys import CALENDAR, MAKER, POOL, SEALER, SETTINGS

routes = web.RouteTableDef()
ALLOWED_DOMAINS = (*DOMAINS, OTHER_DOMAIN)


async def county_region(request: web.Request) -> str | None:
    """The top of the directory: where a proactively disclosed reply is addressed by default."""
    async with request.app[MAKER]() as session:
        top = (
            await session.exec(
                select(Region.code).where(col(Region.parent_code).is_(None)).order_by(Region.code)
            )
        ).first()
    return top


@routes.post("/admin/applications/{number}/publish")
@needs(Role.publisher)
async def publish_reply(request: web.Request) -> web.StreamResponse:
    number = request.match_info["number"]
    form = await request.post()
    async with request.app[MAKER]() as session:
        app = await flow.by_number(session, number) if Number.parse(number) else None
    if app is None or app.outcome not in (Outcome.granted, Outcome.partial) or not app.closed_on:
        return await message_page(
            request, 404, "不能转为主动公开", "只有已予以公开或部分公开的答复可以转为主动公开。"
        )
    if form.get("secrecy_reviewed") != "1":
        await flash(request, "请先确认已经保密审查。", "error")
        return see_other("/admin/applications")
    domain = str(form.get("domain", OTHER_DOMAIN))
    region = str(form.get("region", "")) or await county_region(request)
    attachments = "\n".join(
        f"- [{a['name']}]({a['url']})" if a.get("url") else f"- {a['name']}"
        for a in app.attachments
    )
    settings = request.app[SETTINGS]
    data = {
        "id": f"ysq-{app.number.lower()}",
        "kind": "notice",
        "title": f"依申请公开转主动公开：{app.description.split(chr(10))[0][:200]}",
        "issuer": settings.applications_agency,
        "issued_at": app.closed_on.isoformat(),
        "approved_by": request[SESSION].name,
        "approved_at": datetime.now(UTC).isoformat(),
        "secrecy_reviewed": True,
        "disclosure": "public",
        "domain": domain if domain in ALLOWED_DOMAINS else OTHER_DOMAIN,
        "regions": [region] if region else [],
        "channels": ["web"],
        "summary": "多名申请人申请获取此信息，现主动公开。",
        "body": "\n\n".join(part for part in (app.reply_text or "", attachments) if part),
    }
    try:
        item_in = parse_item(data)
        async with request.app[MAKER]() as session:
            result = await ingest_item(
                session,
                request.app[SEALER],
                item_in,
                actor=request[SESSION].name,
                public_url=settings.public_url,
                calendar=request.app[CALENDAR],
                pool=request.app[POOL],
                tz=settings.tz,
            )
            session.add(
                ApplicationEvent(
                    application_id=app.id,  # type: ignore[arg-type]
                    actor=request[SESSION].name,
                    step="published_proactively",
                    detail={"item": result.item.id},
                )
            )
            await session.commit()
    except ItemRefused as exc:
        problems = "；".join(f"{e.field}：{e.message}" for e in exc.errors)
        await flash(request, f"未能发布：{problems}", "error")
        return see_other(f"/admin/applications/{app.number}")
    except ItemConflict as exc:
        await flash(request, f"未能发布：{exc}", "error")
        return see_other(f"/admin/applications/{app.number}")
    await flash(request, f"已转为主动公开：条目 {result.item.id}。")
    return see_other(f"/admin/items/{result.item.id}")
