"""The JSON API under ``/api/v1`` (routes in the contract)."""

from __future__ import annotations

from aiohttp import web
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.dispatch.ingest import ItemConflict, ingest_item
from gongkai.dispatch.queue import enqueue_delivery
from gongkai.dispatch.recall import recall_item
from gongkai.dispatch.retry import NotRetryable, requeue
from gongkai.domain.items import FieldError, ItemRefused, parse_item
from gongkai.storage.models import Delivery, Item, Role
from gongkai.storage.queries import (
    DeliveryFilter,
    attempts_for,
    counts_by_channel,
    deliveries_csv,
    delivery_public,
    item_public,
    list_deliveries,
    list_delivery_rows,
    target_labels,
)
from gongkai.web.answers import (
    DeliveryPage,
    DeliveryPublic,
    DeliveryRecord,
    Error,
    FieldErrors,
    Ingested,
    ItemDeliveries,
    ItemPublic,
    OpenAPIDocument,
    PlannedDelivery,
    Queued,
    Recalled,
    answer,
    not_found,
)
from gongkai.web.auth import principal, require
from gongkai.web.inputs import BodyRefused, read_json, row_id
from gongkai.web.keys import CALENDAR, HTTP, MAKER, POOL, SEALER, SETTINGS
from gongkai.web.openapi import openapi_document
from gongkai.web.params import MAX_PAGE, PAGE, DeliveryQuery

routes = web.RouteTableDef()


def _refused(exc: ItemRefused) -> FieldErrors:
    return FieldErrors.model_validate(exc.as_json())


@routes.post("/api/v1/items")
@require(Role.publisher)
async def post_item(request: web.Request) -> web.Response:
    """Ingest one approved item; the same id again is idempotent."""
    try:
        data = await read_json(request)
    except BodyRefused as exc:
        return answer(
            _refused(ItemRefused([FieldError(field="(body)", message=exc.message)])),
            status=exc.status,
        )
    app = request.app
    who = await principal(request)
    try:
        item_in = parse_item(data)
        async with app[MAKER]() as session:
            result = await ingest_item(
                session,
                app[SEALER],
                item_in,
                actor=who["name"] if who else "?",
                public_url=app[SETTINGS].public_url,
                calendar=app[CALENDAR],
                pool=app[POOL],
                tz=app[SETTINGS].tz,
            )
            counts = await counts_by_channel(session, result.item.id)
    except ItemRefused as exc:
        return answer(_refused(exc), status=422)
    except ItemConflict as exc:
        return answer(Error(error="conflict", message=str(exc)), status=409)
    planned = [
        PlannedDelivery(
            id=d.id,
            channel=d.channel,
            region=d.region_code,
            languages=d.languages,
            status=d.status,
            notes=d.notes,
        )
        for d in result.deliveries
    ]
    body = Ingested(**item_public(result.item, counts), planned=planned, warnings=result.warnings)
    return answer(body, status=201 if result.created else 200)


async def _item_or_404(session: AsyncSession, request: web.Request) -> Item:
    item = await session.get(Item, request.match_info["id"])
    if item is None:
        raise not_found("no such item")
    return item


@routes.get("/api/v1/items/{id}")
@require(Role.viewer)
async def get_item(request: web.Request) -> web.Response:
    async with request.app[MAKER]() as session:
        item = await _item_or_404(session, request)
        counts = await counts_by_channel(session, item.id)
        return answer(ItemPublic.model_validate(item_public(item, counts)))


@routes.get("/api/v1/items/{id}/deliveries")
@require(Role.viewer)
async def get_item_deliveries(request: web.Request) -> web.Response:
    async with request.app[MAKER]() as session:
        item = await _item_or_404(session, request)
        rows = list(
            (
                await session.exec(
                    select(Delivery).where(Delivery.item_id == item.id).order_by(Delivery.id)
                )
            ).all()
        )
        attempts = await attempts_for(session, [d.id for d in rows if d.id])
        labels = await target_labels(session, {d.target_id for d in rows if d.target_id})
        records = [
            DeliveryRecord(
                **delivery_public(d, labels.get(d.target_id or -1), attempts.get(d.id or -1, [])),
                payload=d.payload,
            )
            for d in rows
        ]
        return answer(ItemDeliveries(item=item.id, deliveries=records))


@routes.post("/api/v1/items/{id}/recall")
@require(Role.publisher)
async def post_recall(request: web.Request) -> web.Response:
    app = request.app
    who = await principal(request)
    async with app[MAKER]() as session:
        item = await _item_or_404(session, request)
        report = await recall_item(
            session,
            app[SEALER],
            app[SETTINGS],
            app[HTTP],
            item,
            who["name"] if who else "?",
            redis=app[POOL],
        )
    return answer(Recalled(item=item.id, status="recalled", **report.as_json()))


def _filter(query: DeliveryQuery) -> DeliveryFilter:
    """The log's filters; bounds are checked in ``DeliveryQuery.read`` (``limit=-1`` used to lift
    the row cap, ``after`` past 64 bits and years 1 or 9999 answered 500)."""
    default = MAX_PAGE if query.format == "csv" else PAGE
    return DeliveryFilter(
        item=query.item,
        channel=query.channel,
        status=query.status,
        region=query.region,
        since=query.since,
        until=query.until,
        limit=query.limit or default,
        after_id=query.after,
    )


@routes.get("/api/v1/deliveries")
@require(Role.viewer)
async def get_deliveries(request: web.Request) -> web.StreamResponse:
    query = DeliveryQuery.read(request.query)
    f = _filter(query)
    if query.format == "csv":
        async with request.app[MAKER]() as session:
            csv_rows = await list_delivery_rows(session, f)
        return web.Response(
            text=deliveries_csv(csv_rows),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": 'attachment; filename="deliveries.csv"'},
        )
    async with request.app[MAKER]() as session:
        rows = await list_deliveries(session, f)
        labels = await target_labels(session, {d.target_id for d in rows if d.target_id})
    data = [
        DeliveryPublic.model_validate(delivery_public(d, labels.get(d.target_id or -1)))
        for d in rows
    ]
    next_after = rows[-1].id if len(rows) == f.limit and rows else None
    return answer(DeliveryPage(deliveries=data, next_after=next_after))


@routes.post("/api/v1/deliveries/{id}/retry")
@require(Role.admin)
async def post_retry(request: web.Request) -> web.Response:
    """Requeue a dead or failed delivery; delivered ones are never sent again."""
    app = request.app
    who = await principal(request)
    delivery_id = row_id(request)
    async with app[MAKER]() as session:
        d = await session.get(Delivery, delivery_id)
        if d is None:
            raise not_found("no such delivery")
        try:
            job = await requeue(session, d, who["name"] if who else "?")
        except NotRetryable as exc:
            return answer(Error(error=str(exc)), status=409)
    await enqueue_delivery(app[POOL], delivery_id, job=job)
    return answer(Queued(id=delivery_id, status="queued"))


@routes.get("/api/v1/openapi.json")
async def get_openapi(request: web.Request) -> web.Response:
    document = openapi_document(request.app[SETTINGS].public_url)
    return answer(OpenAPIDocument.model_validate(document))
