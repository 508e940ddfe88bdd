"""Items: the searchable list, one item with its deliveries and previews, one delivery."""

from __future__ import annotations

from aiohttp import web
from sqlmodel import col, select

from gongkai.console import console_queries as cq
from gongkai.console.parts import shown_parts
from gongkai.console.render import page, parse_day, regions_named
from gongkai.domain.catalog import DOMAINS, OTHER_DOMAIN
from gongkai.storage.models import Attempt, AuditEntry, Delivery, Item, ItemStatus, Target
from gongkai.storage.queries import item_status, target_labels
from gongkai.storage.short_links import opens_by_channel
from gongkai.web.inputs import int_param, row_id
from gongkai.web.keys import MAKER, SETTINGS

routes = web.RouteTableDef()
DETAIL_ROWS = 200  # more than this: the delivery log, filtered by the item, pages through them
TIMELINE_ROWS = 300
MAX_PAGES = 100_000  # 5,000,000 items at 50 a page; a larger offset only burdens the database


@routes.get("/admin/items")
async def item_list(request: web.Request) -> web.Response:
    q = request.query
    page_no = 1
    if q.get("page", "").strip().isdigit():
        page_no = int_param(q, "page", default=1, lo=1, hi=MAX_PAGES) or 1
    search = cq.ItemSearch(
        q=q.get("q", "").strip(),
        domain=q.get("domain", ""),
        region=q.get("region", "").strip(),
        status=q.get("status", ""),
        since=parse_day(q.get("since"), "since"),
        until=parse_day(q.get("until"), "until"),
        page=page_no,
    )
    async with request.app[MAKER]() as session:
        items, more = await cq.search_items(session, search, request.app[SETTINGS].tz)
        regions = await regions_named(session, [search.region])
        shown = await cq.shown_statuses(session, items)
    params = {k: v for k, v in q.items() if k != "page" and v}
    return await page(
        request,
        "items.html.j2",
        active="items",
        items=items,
        more=more,
        search=search,
        params=params,
        domains=(*DOMAINS, OTHER_DOMAIN),
        statuses=list(ItemStatus),
        shown=shown,
        regions=regions,
    )


async def _load_item(request: web.Request, session) -> Item:  # type: ignore[no-untyped-def]
    item = await session.get(Item, request.match_info["id"])
    if item is None:
        raise web.HTTPNotFound(text="没有这个条目 / no such item")
    return item


@routes.get("/admin/items/{id}")
async def item_detail(request: web.Request) -> web.Response:
    async with request.app[MAKER]() as session:
        item = await _load_item(request, session)
        progress = await cq.item_progress(session, item.id)
        rows = list(
            (
                await session.exec(
                    select(Delivery).where(Delivery.item_id == item.id).order_by(col(Delivery.id))
                )
            ).all()
        )
        labels = await target_labels(
            session, {d.target_id for d in rows[:DETAIL_ROWS] if d.target_id}
        )
        ids = [d.id for d in rows if d.id is not None]
        timeline = (
            list(
                (
                    await session.exec(
                        select(Attempt, Delivery.channel, Delivery.region_code)
                        .join(Delivery, col(Delivery.id) == Attempt.delivery_id)
                        .where(col(Attempt.delivery_id).in_(ids))
                        .order_by(col(Attempt.started_at), col(Attempt.id))
                        .limit(TIMELINE_ROWS)
                    )
                ).all()
            )
            if ids
            else []
        )
        audit = list(
            (
                await session.exec(
                    select(AuditEntry)
                    .where(AuditEntry.item_id == item.id)
                    .order_by(col(AuditEntry.at))
                )
            ).all()
        )
        policy = await session.get(Item, item.interprets) if item.interprets else None
        opens = await opens_by_channel(session, item.id)  # admin/_short_link_opens.html.j2
        interpretations = list(
            (await session.exec(select(Item).where(Item.interprets == item.id))).all()
        )
        regions = await regions_named(
            session, [*item.regions, *(d.region_code for d in rows[:DETAIL_ROWS])]
        )
    groups = [
        (ch, langs, counts, first, shown_parts(first.payload))
        for ch, langs, counts, first in cq.by_channel_and_languages(rows)
    ]
    return await page(
        request,
        "item.html.j2",
        active="items",
        item=item,
        item_status=item_status(item, progress.channels),
        progress=progress,
        groups=groups,
        deliveries=rows[:DETAIL_ROWS],
        more_deliveries=len(rows) > DETAIL_ROWS,
        labels=labels,
        timeline=timeline,
        audit=audit,
        policy=policy,
        interpretations=interpretations,
        regions=regions,
        opens=opens,
    )


@routes.get("/admin/deliveries/{id:\\d+}")
async def delivery_detail(request: web.Request) -> web.Response:
    async with request.app[MAKER]() as session:
        d = await session.get(Delivery, row_id(request))
        if d is None:
            raise web.HTTPNotFound(text="没有这个投递 / no such delivery")
        item = await session.get(Item, d.item_id)
        target = await session.get(Target, d.target_id) if d.target_id else None
        attempts = list(
            (
                await session.exec(
                    select(Attempt).where(Attempt.delivery_id == d.id).order_by(col(Attempt.id))
                )
            ).all()
        )
        regions = await regions_named(session, [d.region_code])
    return await page(
        request,
        "delivery.html.j2",
        active="deliveries",
        d=d,
        item=item,
        target=target,
        attempts=attempts,
        parts=shown_parts(d.payload),
        regions=regions,
    )
