"""Publish from the console: fill the form or upload the item file, preview, then send.

"Publish" only goes through for the content that was previewed: the preview carries the item's
content hash, and a changed form is previewed again instead of being sent unseen.
"""

from __future__ import annotations

from typing import Any

import yaml
from aiohttp import web
from multidict import MultiDict
from sqlmodel import col, select

from gongkai.channels import registry
from gongkai.console import publish_form as pf
from gongkai.console.console_queries import now_local
from gongkai.console.preview import ChannelPreview, channel_previews, directory_errors
from gongkai.console.render import needs, page, see_other
from gongkai.console.sessions import SESSION, flash
from gongkai.dispatch.ingest import ItemConflict, ingest_item
from gongkai.domain import safe_yaml
from gongkai.domain.catalog import DISCLOSURE_LABELS, DOMAINS, KIND_LABELS, OTHER_DOMAIN
from gongkai.domain.items import FieldError, ItemIn, ItemRefused, check_publishable, parse_item
from gongkai.storage.models import Item, ItemStatus, Region, Role
from gongkai.web.keys import CALENDAR, MAKER, POOL, SEALER, SETTINGS

routes = web.RouteTableDef()


async def _choices(request: web.Request) -> dict[str, Any]:
    async with request.app[MAKER]() as session:
        regions = list((await session.exec(select(Region).order_by(col(Region.path)))).all())
        policies = list(
            (
                await session.exec(
                    select(Item.id, Item.title)
                    .where(Item.kind == "policy", Item.status != ItemStatus.recalled)
                    .order_by(col(Item.created_at).desc())
                    .limit(200)
                )
            ).all()
        )
    return {
        "regions": regions,
        "policies": policies,
        "channels": registry.CHANNEL_NAMES,
        "kinds": KIND_LABELS,
        "disclosures": DISCLOSURE_LABELS,
        "domains": (*DOMAINS, OTHER_DOMAIN),
        "catalog_labels": pf.CATALOG_LABELS,
        "languages": pf.FORM_LANGUAGES,
        "field_id": pf.field_id,
        "tz_name": request.app[SETTINGS].timezone,
    }


async def _form_page(
    request: web.Request,
    values: pf.FormValues,
    *,
    status: int = 200,
    errors: list[FieldError] | None = None,
    previews: list[ChannelPreview] | None = None,
    preview_hash: str = "",
    notice: str = "",
    source: str = "",
) -> web.Response:
    return await page(
        request,
        "publish.html.j2",
        status=status,
        active="publish",
        v=values,
        errors=pf.errors_by_input(errors or []),
        error_list=pf.error_links(errors or []),
        previews=previews,
        preview_hash=preview_hash,
        notice=notice,
        source=source,
        **await _choices(request),
    )


@routes.get("/admin/publish")
@needs(Role.publisher)
async def publish_page(request: web.Request) -> web.Response:
    tz = request.app[SETTINGS].tz
    now = now_local(tz)
    values = pf.FormValues(
        text={
            "kind": "notice",
            "disclosure": "public",
            "issued_at": now.date().isoformat(),
            "approved_by": request[SESSION].name,
            "approved_at": now.strftime("%Y-%m-%dT%H:%M"),
        }
    )
    if request.query.get("interprets"):
        values.text.update(kind="interpretation", interprets=request.query["interprets"])
    return await _form_page(request, values)


def _uploaded(form: MultiDict[Any]) -> tuple[Any, str] | None:
    """(the file's data, its name), or None when no file came with the form."""
    upload = form.get("item_file")
    if not isinstance(upload, web.FileField):
        return None
    raw = upload.file.read()
    if not raw:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ItemRefused(
            [FieldError(field="(file)", message="文件不是 UTF-8 文本 / not UTF-8 text")]
        ) from None
    try:  # JSON is YAML too; aliases are counted expanded, so a "billion laughs" file is refused
        return safe_yaml.load(text, max_depth=32, max_nodes=100_000), upload.filename
    except yaml.YAMLError as exc:
        raise ItemRefused(
            [FieldError(field="(file)", message=f"无法解析 / cannot parse: {exc}")]
        ) from None


async def _validate(request: web.Request, data: Any) -> ItemIn:
    item_in = parse_item(data)
    check_publishable(item_in, list(registry.CHANNEL_NAMES))
    async with request.app[MAKER]() as session:
        errors = await directory_errors(session, item_in)
    if errors:
        raise ItemRefused(errors)
    return item_in


@routes.post("/admin/publish")
@needs(Role.publisher)
async def publish(request: web.Request) -> web.StreamResponse:
    app = request.app
    tz = app[SETTINGS].tz
    form = await request.post()
    source = ""
    try:
        uploaded = _uploaded(form)
    except ItemRefused as exc:
        return await _form_page(
            request, pf.data_to_form(pf.form_to_data(form, tz), tz), status=422, errors=exc.errors
        )
    if uploaded is not None:
        data, filename = uploaded
        source = filename or "item file"
        if not isinstance(data, dict):
            return await _form_page(
                request,
                pf.FormValues(),
                status=422,
                errors=[FieldError(field="(file)", message="应为一个映射 / expected a mapping")],
            )
    else:
        data = pf.form_to_data(form, tz)
    values = pf.data_to_form(data, tz)
    try:
        item_in = await _validate(request, data)
    except ItemRefused as exc:
        return await _form_page(request, values, status=422, errors=exc.errors, source=source)
    digest = item_in.content_hash()
    if uploaded is None and form.get("action") == "publish":
        if form.get("preview_hash") == digest:
            return await _publish(request, item_in, values)
        notice = "内容在预览后有改动：请检查下面的新预览，再确认发布。"
    else:
        notice = ""
    async with app[MAKER]() as session:
        previews = await channel_previews(session, app[SEALER], item_in, app[SETTINGS].public_url)
    return await _form_page(
        request, values, previews=previews, preview_hash=digest, notice=notice, source=source
    )


async def _publish(
    request: web.Request, item_in: ItemIn, values: pf.FormValues
) -> web.StreamResponse:
    app = request.app
    try:
        async with app[MAKER]() as session:
            result = await ingest_item(
                session,
                app[SEALER],
                item_in,
                actor=request[SESSION].name,
                public_url=app[SETTINGS].public_url,
                calendar=app[CALENDAR],
                pool=app[POOL],
                tz=app[SETTINGS].tz,
            )
    except ItemRefused as exc:
        return await _form_page(request, values, status=422, errors=exc.errors)
    except ItemConflict as exc:
        return await _form_page(
            request, values, status=409, errors=[FieldError(field="id", message=str(exc))]
        )
    if result.created:
        when = "已定时" if result.item.status == ItemStatus.scheduled else "已开始发送"
        await flash(request, f"{when}：正在规划投递，进度见下。")
    else:
        await flash(request, "该条目此前已发布，内容相同，没有重复发送。", "warn")
    for warning in result.warnings:
        await flash(request, f"注意：{warning}", "warn")
    return see_other(f"/admin/items/{result.item.id}")
