"""The CLI's publish and render: the same ingest and renderers the API uses."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

from arq import create_pool
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlmodel import select

from gongkai.channels import registry
from gongkai.channels.base import TargetView
from gongkai.channels.rendering import utf8_len
from gongkai.cli.runtime import redis_for
from gongkai.config import Settings
from gongkai.dispatch.ingest import ItemConflict, ingest_item, item_row
from gongkai.dispatch.planning import Directory, item_view, seal_parts, targets_for
from gongkai.dispatch.queue import QUEUE_NAME, arq_settings
from gongkai.dispatch.worker import build_worker
from gongkai.domain.items import ItemIn, check_publishable
from gongkai.domain.links import page_url
from gongkai.domain.workdays import WorkCalendar
from gongkai.storage.crypto import Sealer
from gongkai.storage.db import make_engine, make_sessionmaker, upgrade
from gongkai.storage.models import FINAL_STATUSES, Delivery, DeliveryStatus, Item, Region
from gongkai.storage.queries import counts_by_channel


async def publish_from_cli(
    s: Settings, item_in: ItemIn, actor: str, wait: bool, out: Console
) -> None:
    await upgrade(s.resolved_database_url)
    engine = make_engine(s.resolved_database_url)
    maker = make_sessionmaker(engine)
    try:
        with redis_for(s) as redis_url:
            pool = await create_pool(arq_settings(redis_url))
            try:
                async with maker() as session:
                    try:
                        result = await ingest_item(
                            session,
                            Sealer(s.resolved_secret_key()),
                            item_in,
                            actor=actor,
                            public_url=s.public_url,
                            calendar=WorkCalendar.from_file(s.holidays_file),
                            pool=pool,
                            tz=s.tz,
                        )
                    except ItemConflict as exc:
                        raise ValueError(str(exc)) from None
                verb = "ingested" if result.created else "already ingested (nothing planned twice)"
                out.print(
                    f"[bold]{result.item.id}[/] {verb}: {len(result.deliveries)} deliveries; "
                    f"page {page_url(s.public_url, result.item.id)}"
                )
                for w in result.warnings:
                    out.print(f"[yellow]warning:[/] {w}")
                if wait:
                    await _wait(s, maker, pool, redis_url, result.item.id, out)
            finally:
                await pool.aclose()
    finally:
        await engine.dispose()


async def _worker_alive(pool: Any) -> bool:
    return bool(await pool.exists(QUEUE_NAME + ":health-check"))


async def _wait(
    s: Settings, maker: Any, pool: Any, redis_url: str, item_id: str, out: Console
) -> None:
    """Progress until every delivery has ended; runs a worker here when none is running."""
    local_worker = None
    task = None
    if not await _worker_alive(pool):
        out.print("no worker is running: delivering from this process")
        local_worker = build_worker(s, redis_url)
        task = asyncio.create_task(local_worker.async_run())
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=out,
        ) as progress:
            bar = progress.add_task("delivering", total=None)
            while True:
                async with maker() as session:
                    rows = (
                        await session.exec(
                            select(Delivery.status).where(Delivery.item_id == item_id)
                        )
                    ).all()
                    item = await session.get(Item, item_id)
                done = sum(1 for st in rows if st in FINAL_STATUSES)
                waiting = sum(1 for st in rows if st == DeliveryStatus.sending)
                progress.update(
                    bar,
                    total=len(rows),
                    completed=done,
                    description=f"delivering ({waiting} awaiting provider)"
                    if waiting
                    else "delivering",
                )
                if done == len(rows) or (item is not None and item.status == "recalled"):
                    break
                if task is not None and task.done():
                    task.result()
                await asyncio.sleep(0.3)
        async with maker() as session:
            counts = await counts_by_channel(session, item_id)
        table = Table(
            "channel", "delivered", "dead", "cancelled", "waiting", "reach", title="summary"
        )
        for channel, by_status in sorted(counts.items()):
            total = sum(by_status.values())
            delivered = by_status.get(DeliveryStatus.delivered, 0)
            waiting = (
                total
                - delivered
                - by_status.get(DeliveryStatus.dead, 0)
                - by_status.get(DeliveryStatus.cancelled, 0)
            )
            table.add_row(
                channel,
                str(delivered),
                str(by_status.get(DeliveryStatus.dead, 0)),
                str(by_status.get(DeliveryStatus.cancelled, 0)),
                str(waiting),
                f"{delivered / total:.0%}" if total else "-",
            )
        out.print(table)
    finally:
        if local_worker is not None:
            await local_worker.close()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


async def render_preview(
    s: Settings, item_in: ItemIn, channel_name: str, lang: str | None, region: str | None
) -> dict[str, Any]:
    try:
        channel = registry.get(channel_name)
    except registry.UnknownChannel:
        raise ValueError(
            f"--channel: unknown channel '{channel_name}'; known: "
            + ", ".join(registry.available())
        ) from None
    check_publishable(item_in, list(registry.CHANNEL_NAMES))
    await upgrade(s.resolved_database_url)
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            item = item_row(item_in)
            view = item_view(item)
            directory = Directory(session, Sealer(s.resolved_secret_key()))
            target_view: TargetView
            if channel.targetless:
                target_view = await directory.target_view(None, channel_name)
            else:
                regions = [region] if region else list(item_in.regions)
                if region and await session.get(Region, region) is None:
                    raise ValueError(f"--region: {region} is not in the directory")
                targets = await targets_for(session, channel, regions)
                if not targets:
                    raise ValueError(
                        f"no {channel_name} target in region(s) {', '.join(regions)}; "
                        "import a directory first (gongkai directory import)"
                    )
                target_view = await directory.target_view(targets[0], channel_name)
            if lang:
                langs = (lang,) if lang == "zh" else (lang, "zh")
                target_view = dataclasses.replace(target_view, languages=langs)
            rendered = channel.render(view, target_view, s.public_url)
            label = (
                "(the public page)"
                if channel.targetless
                else (f"{target_view.region_label('zh')} {target_view.region_code}")
            )
    finally:
        await engine.dispose()
    parts = []
    for part in seal_parts(rendered.parts, Sealer(s.resolved_secret_key())):
        part.pop("sealed", None)
        text = _part_text(part)
        parts.append({**part, "text": text, "bytes": utf8_len(text), "chars": len(text)})
    return {
        "channel": channel_name,
        "target": label,
        "languages": list(target_view.languages),
        "parts": parts,
        "notes": rendered.notes,
        "meta": rendered.meta,
    }


def _part_text(part: dict[str, Any]) -> str:
    for key in ("text", "content", "script"):
        if isinstance(part.get(key), str):
            return part[key]
    for value in part.values():
        if isinstance(value, dict):
            for key in ("content", "text"):
                if isinstance(value.get(key), str):
                    return value[key]
    return " ".join(f"{k}={v}" for k, v in part.items() if not isinstance(v, (dict, list)))
