"""The CLI's publish and render: the same ingest and renderers the API uses."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
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
from gongkai.storage.models import (
    FINAL_STATUSES,
    PLANNING_OPEN,
    Delivery,
    DeliveryStatus,
    Item,
    PlanningStatus,
    Region,
)
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
                if result.created:
                    verb = "ingested, planning queued"
                else:
                    verb = (
                        f"already ingested (nothing planned twice): {len(result.deliveries)} "
                        "deliveries"
                    )
                out.print(
                    f"[bold]{result.item.id}[/] {verb}; "
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


class Follow:
    """Planning, then deliveries: rich bars on a terminal, a plain line per change (at most one
    a second) when the output goes to a file or a pipe."""

    def __init__(self, out: Console) -> None:
        self.out = out
        self.plain = not out.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=out,
        )
        self.tasks: dict[str, Any] = {}
        self.last: dict[str, tuple[str, float]] = {}

    def __enter__(self) -> Follow:
        if not self.plain:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.plain:
            self.progress.__exit__(None, None, None)

    def show(
        self, bar: str, done: int, total: int | None, note: str = "", final: bool = False
    ) -> None:
        description = f"{bar} ({note})" if note else bar
        if self.plain:
            line = f"{bar}: {done} of {total if total is not None else '?'}" + (
                f" ({note})" if note else ""
            )
            seen, at = self.last.get(bar, ("", 0.0))
            if line != seen and (final or time.monotonic() - at >= 1.0):
                self.out.print(line, highlight=False)
                self.last[bar] = (line, time.monotonic())
            return
        if bar not in self.tasks:
            self.tasks[bar] = self.progress.add_task(bar, total=None)
        self.progress.update(self.tasks[bar], total=total, completed=done, description=description)


async def _wait(
    s: Settings, maker: Any, pool: Any, redis_url: str, item_id: str, out: Console
) -> None:
    """Progress until the item is planned and every delivery has ended; runs a worker here when
    none is running."""
    local_worker = None
    task = None
    if not await _worker_alive(pool):
        out.print("no worker is running: planning and delivering from this process")
        local_worker = build_worker(s, redis_url)
        task = asyncio.create_task(local_worker.async_run())
    try:
        with Follow(out) as follow:
            while True:
                async with maker() as session:
                    item = await session.get(Item, item_id)
                if item is None or item.planning_status not in PLANNING_OPEN:
                    break
                follow.show("planning", item.planned, item.planning_total, item.planning_status)
                if task is not None and task.done():
                    task.result()
                await asyncio.sleep(0.2)
            if item is not None:
                follow.show("planning", item.planned, item.planning_total, final=True)
            if item is not None and item.planning_status == PlanningStatus.failed:
                raise ValueError(f"planning {item_id} failed: {item.planning_error}")
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
                over = done == len(rows) or (item is not None and item.status == "recalled")
                note = f"{waiting} awaiting provider" if waiting else ""
                follow.show("delivering", done, len(rows), note, final=over)
                if over:
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
