"""Before sending: the checks ingest will make, and every channel's rendering per language.

Rendering uses the same channel code, the same target views and the same sealing of phone
numbers as planning, so the preview is what each delivery row will hold. One target stands for
all the targets of a channel that want the same languages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.channels import registry
from gongkai.channels.base import TargetView
from gongkai.console.parts import ShownPart, shown_parts
from gongkai.dispatch.ingest import directory_errors as ingest_directory_errors
from gongkai.dispatch.ingest import item_row
from gongkai.dispatch.planning import Directory, item_view, seal_parts, targets_for
from gongkai.domain.items import FieldError, ItemIn
from gongkai.storage.crypto import Sealer
from gongkai.storage.models import Item, Target
from gongkai.storage.types import utcnow


@dataclass
class PreviewGroup:
    languages: list[str]
    target_label: str
    targets: int
    parts: list[ShownPart]
    notes: list[str]
    meta: dict[str, Any]


@dataclass
class ChannelPreview:
    channel: str
    groups: list[PreviewGroup] = field(default_factory=list)
    error: str | None = None


async def directory_errors(session: AsyncSession, item_in: ItemIn) -> list[FieldError]:
    """What ``ingest_item`` refuses after the item itself is valid, checked without writing."""
    errors: list[FieldError] = []
    existing = await session.get(Item, item_in.id)
    if existing is not None and existing.content_hash != item_in.content_hash():
        errors.append(
            FieldError(
                field="id",
                message=f"编号 {item_in.id} 已被另一条目使用；更正请用新编号"
                " / the id is taken by different content",
            )
        )
    errors += await ingest_directory_errors(session, item_in)
    return errors


def unsaved_item(item_in: ItemIn) -> Item:
    """The row ingest would store (never added to the session)."""
    scheduled = item_in.publish_at is not None and item_in.publish_at > utcnow()
    return item_row(item_in, published_at=None if scheduled else utcnow())


async def _group(
    directory: Directory,
    channel: Any,
    view: Any,
    target: Target | None,
    count: int,
    public_url: str,
    sealer: Sealer,
) -> PreviewGroup:
    tv: TargetView = await directory.target_view(target, channel.name)
    rendered = channel.render(view, tv, public_url)
    parts = seal_parts(rendered.parts, sealer)
    label = "公开页面" if target is None else f"{tv.region_label('zh')} {tv.region_code}"
    return PreviewGroup(
        languages=list(tv.languages),
        target_label=label,
        targets=count,
        parts=shown_parts({"parts": parts, "meta": rendered.meta}),
        notes=list(rendered.notes),
        meta=dict(rendered.meta),
    )


async def channel_previews(
    session: AsyncSession, sealer: Sealer, item_in: ItemIn, public_url: str
) -> list[ChannelPreview]:
    item = unsaved_item(item_in)
    view = item_view(item)
    directory = Directory(session, sealer)
    out = []
    for name in item_in.channels or registry.available():
        preview = ChannelPreview(name)
        out.append(preview)
        try:
            channel = registry.get(name)
            if channel.targetless:
                preview.groups.append(
                    await _group(directory, channel, view, None, 1, public_url, sealer)
                )
                continue
            by_languages: dict[tuple[str, ...], list[Target]] = {}
            for target in await targets_for(session, channel, list(item.regions)):
                by_languages.setdefault(await directory.languages(target.region_code), []).append(
                    target
                )
            for targets in by_languages.values():
                preview.groups.append(
                    await _group(
                        directory, channel, view, targets[0], len(targets), public_url, sealer
                    )
                )
        except Exception as exc:  # a channel that cannot render must not hide the others
            preview.error = f"{type(exc).__name__}: {exc}"
    return out
