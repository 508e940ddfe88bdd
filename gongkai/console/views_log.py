"""The delivery log: filters, keyset pages (fast on page 1,000 as on page 1), CSV of everything.

Pages go by "ids below the last one shown" instead of OFFSET, so the database never counts
through the rows already seen. The CSV streams in batches the same way, so exporting 100,000
rows holds one batch in memory, not all of them.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from multidict import MultiMapping
from sqlmodel import col, select

from gongkai.channels import registry
from gongkai.console.console_queries import day_start
from gongkai.console.render import page, parse_day, regions_named
from gongkai.domain.bounds import MAX_ROW_ID
from gongkai.storage.models import DeliveryStatus, Item
from gongkai.storage.queries import (
    DeliveryFilter,
    deliveries_csv,
    delivery_public,
    list_deliveries,
    list_delivery_rows,
    target_labels,
)
from gongkai.web.inputs import int_param, text_param
from gongkai.web.keys import MAKER, SETTINGS

routes = web.RouteTableDef()
PAGE_SIZE = 100
CSV_BATCH = 2000
FILTER_KEYS = ("item", "channel", "status", "region", "since", "until")


def log_filter(
    request: web.Request, q: MultiMapping[str], limit: int
) -> tuple[DeliveryFilter, list[str]]:
    """The filter from the query string, and a message for each value that had to be ignored."""
    tz = request.app[SETTINGS].tz
    problems: list[str] = []
    status = q.get("status", "")
    if status and status not in DeliveryStatus.__members__:
        problems.append(f"未知状态 {status}")
        status = ""
    since, until = parse_day(q.get("since"), "since"), parse_day(q.get("until"), "until")
    for key, value in (("since", since), ("until", until)):
        if q.get(key) and value is None:
            problems.append(f"{key}：日期格式应为 YYYY-MM-DD")
    after: int | None = None
    if q.get("after", "").strip().isdigit():
        after = int_param(q, "after", default=None, lo=1, hi=MAX_ROW_ID)
    elif q.get("after"):
        problems.append("after：应为数字")
    f = DeliveryFilter(
        item=text_param(q, "item"),
        channel=text_param(q, "channel"),
        status=status or None,
        region=text_param(q, "region"),
        since=day_start(since, tz) if since else None,
        until=day_start(until + timedelta(days=1), tz) if until else None,  # the whole last day
        limit=limit,
        after_id=after,
    )
    return f, problems


@routes.get("/admin/deliveries")
async def delivery_log(request: web.Request) -> web.Response:
    f, problems = log_filter(request, request.query, PAGE_SIZE)
    async with request.app[MAKER]() as session:
        rows = await list_deliveries(session, f)
        labels = await target_labels(session, {d.target_id for d in rows if d.target_id})
        titles = (
            dict(
                (
                    await session.exec(
                        select(Item.id, Item.title).where(
                            col(Item.id).in_({d.item_id for d in rows})
                        )
                    )
                ).all()
            )
            if rows
            else {}
        )
        regions = await regions_named(session, [*(d.region_code for d in rows), f.region])
    data = [(d, delivery_public(d, labels.get(d.target_id or -1))) for d in rows]
    params = {k: request.query[k] for k in FILTER_KEYS if request.query.get(k)}
    next_after = rows[-1].id if len(rows) == f.limit else None
    return await page(
        request,
        "deliveries.html.j2",
        active="deliveries",
        rows=data,
        titles=titles,
        regions=regions,
        params=params,
        next_after=next_after,
        after=f.after_id,
        problems=problems,
        channels=registry.CHANNEL_NAMES,
        statuses=list(DeliveryStatus),
        query=request.query,
    )


@routes.get("/admin/deliveries.csv")
async def delivery_log_csv(request: web.Request) -> web.StreamResponse:
    f, _ = log_filter(request, request.query, CSV_BATCH)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="deliveries.csv"',
        }
    )
    await response.prepare(request)
    await response.write("\ufeff".encode())  # so spreadsheet software reads the Chinese as UTF-8
    first = True
    while True:
        async with request.app[MAKER]() as session:
            data = await list_delivery_rows(session, f)
        rows = data
        text = deliveries_csv(data)
        if not first:
            text = text.split("\n", 1)[1] if "\n" in text else ""  # the header once
        if data or first:
            await response.write(text.encode("utf-8"))
        first = False
        if len(rows) < f.limit:
            break
        f.after_id = rows[-1]["id"]
    await response.write_eof()
    return response
