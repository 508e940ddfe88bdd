"""Planning: an item becomes deliveries, each rendered once and stored exactly as it will be sent.

Every target in the item's regions' subtrees × the item's channels; each target gets its
region's languages (inherited down the tree). Rendering happens here, before sending, so the
console can show what residents will see. The planning job (``plan_job.py``) calls these a
chunk at a time, after the POST has answered.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.channels import registry
from gongkai.channels.base import Channel, ItemView, Rendered, TargetView
from gongkai.storage.crypto import Sealer, mask_phone
from gongkai.storage.followers import followers_for
from gongkai.storage.models import Account, Delivery, DeliveryStatus, Item, Region, Target
from gongkai.storage.types import utcnow

DEFAULT_LANGUAGES = ("zh",)
YIELD_EVERY = 50  # renders between two turns of the event loop
DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
TARGET = Target.__table__  # type: ignore[attr-defined]
REGION = Region.__table__  # type: ignore[attr-defined]


def item_view(item: Item, interpretation_ids: tuple[str, ...] = ()) -> ItemView:
    return ItemView(
        id=item.id,
        kind=item.kind,
        title=item.title,
        summary=item.summary,
        body=item.public_body or "",
        doc_number=item.doc_number,
        issuer=item.issuer,
        issued_at=item.issued_at,
        published_at=item.published_at,
        domain=item.domain,
        urgent=item.urgent,
        catalog=dict(item.catalog or {}),
        translations={k: dict(v) for k, v in (item.translations or {}).items()},
        interprets=item.interprets,
        interpretation_ids=interpretation_ids,
        regions=tuple(item.regions or ()),
        options=dict(item.options or {}),
    )


class Directory:
    """Opens targets and accounts for rendering and sending; caches within one unit of work."""

    def __init__(
        self,
        session: AsyncSession,
        sealer: Sealer,
        regions: dict[str, Region | None] | None = None,
        accounts: dict[tuple[str, str], dict[str, Any] | None] | None = None,
        places: dict[str, tuple[str, dict[str, str], tuple[str, ...]]] | None = None,
    ) -> None:
        """``regions``, ``accounts`` and ``places`` let a worker keep its caches across units
        of work."""
        self.session = session
        self.sealer = sealer
        self._places = {} if places is None else places
        self._regions: dict[str, Region | None] = {} if regions is None else regions
        self._accounts: dict[tuple[str, str], dict[str, Any] | None] = (
            {} if accounts is None else accounts
        )

    async def region(self, code: str | None) -> Region | None:
        if code is None:
            return None
        if code not in self._regions:
            region = await self.session.get(Region, code)
            if region is not None:
                self.session.expunge(region)  # cached beyond this session
            self._regions[code] = region
        return self._regions[code]

    async def languages(self, code: str | None) -> tuple[str, ...]:
        """A region's wanted languages, inherited from the nearest ancestor that lists some."""
        region = await self.region(code)
        while region is not None:
            if region.languages:
                return tuple(region.languages)
            region = await self.region(region.parent_code)
        return DEFAULT_LANGUAGES

    async def place(self, code: str) -> tuple[str, dict[str, str], tuple[str, ...]]:
        """A region's name, its names by language and its languages: what a target view
        needs of its region, worked out once per region rather than once per target."""
        hit = self._places.get(code)
        if hit is None:
            region = await self.region(code)
            hit = (
                region.name if region else code,
                dict(region.names) if region else {},
                await self.languages(code),
            )
            self._places[code] = hit
        return hit

    async def account(self, channel: str, name: str | None) -> dict[str, Any] | None:
        if name is None:
            return None
        key = (channel, name)
        if key not in self._accounts:
            acc = (
                await self.session.exec(
                    select(Account).where(Account.channel == channel, Account.name == name)
                )
            ).first()
            if acc is None and channel == "loudspeaker":  # a committee reached by SMS
                acc = (
                    await self.session.exec(
                        select(Account).where(Account.channel == "sms", Account.name == name)
                    )
                ).first()
            self._accounts[key] = (
                None
                if acc is None
                else {
                    "name": acc.name,
                    "provider": acc.provider,
                    "region": acc.region_code,
                    **acc.config,
                    **(self.sealer.open(acc.secrets_sealed) if acc.secrets_sealed else {}),
                }
            )
        return self._accounts[key]

    async def target_view(self, target: Target | None, channel: str) -> TargetView:
        if target is None:  # a targetless channel (the web page)
            return TargetView(None, channel, None, "", {}, DEFAULT_LANGUAGES, {})
        return await self.open_target(
            target.id,  # type: ignore[arg-type]
            target.channel,
            target.region_code,
            target.address_sealed,
            target.account_name,
            target.options,
        )

    async def open_target(
        self,
        target_id: int,
        channel: str,
        region_code: str,
        address_sealed: str | None,
        account_name: str | None,
        options: dict[str, Any] | None,
    ) -> TargetView:
        """A target's view from its columns: a worker opens a batch of them from plain rows."""
        place = await self.place(region_code)
        account = await self.account(channel, account_name)
        return TargetView(
            id=target_id,
            channel=channel,
            region_code=region_code,
            region_name=place[0],
            region_names=place[1],
            languages=place[2],
            address=self.sealer.open(address_sealed) if address_sealed else {},
            account=account,
            account_name=account_name,
            options=dict(options or {}),
        )


async def targets_for(
    session: AsyncSession, channel: Channel, region_codes: list[str]
) -> list[Target]:
    regions = [r for r in [await session.get(Region, c) for c in region_codes] if r is not None]
    if not regions:
        return []
    conditions = [Region.path.startswith(r.path) for r in regions]  # type: ignore[attr-defined]
    if channel.broadcast:
        ancestors = {code for r in regions for code in r.path.strip("/").split("/")}
        conditions.append(Region.code.in_(ancestors))  # type: ignore[attr-defined]
    stmt = (
        select(Target)
        .join(Region, Region.code == Target.region_code)
        .where(Target.channel == channel.name, Target.active == True, or_(*conditions))  # noqa: E712
        .order_by(Target.id)
    )
    return list((await session.exec(stmt)).all())


@dataclass
class PlannedDelivery:
    delivery: Delivery
    rendered: Rendered


SEALED_PART_KEYS = ("phones",)


def seal_parts(parts: list[dict[str, Any]], sealer: Sealer) -> list[dict[str, Any]]:
    """Phone numbers never rest in the payload in clear: sealed, with a masked copy for display."""
    out = []
    for part in parts:
        secret = {k: part[k] for k in SEALED_PART_KEYS if k in part}
        if not secret:
            out.append(part)
            continue
        shown = {k: v for k, v in part.items() if k not in secret}
        shown["sealed"] = sealer.seal(secret)
        if "phones" in secret:
            shown["phones_masked"] = [mask_phone(str(p)) for p in secret["phones"]]
        out.append(shown)
    return out


def open_part(part: dict[str, Any], sealer: Sealer) -> dict[str, Any]:
    if "sealed" not in part:
        return part
    opened = {k: v for k, v in part.items() if k not in ("sealed", "phones_masked")}
    opened.update(sealer.open(part["sealed"]))
    return opened


def dedup_key(item_id: str, channel: str, target_id: int | None) -> str:
    return f"{item_id}|{channel}|{target_id if target_id is not None else '-'}"


async def target_ids_for(
    session: AsyncSession, channel: Channel, region_codes: list[str]
) -> list[int]:
    """The ids of ``targets_for``, without loading the rows: a county's ten thousand ids are
    what planning counts and cuts into chunks before it renders the first one."""
    regions = [r for r in [await session.get(Region, c) for c in region_codes] if r is not None]
    if not regions:
        return []
    t, r = TARGET.c, REGION.c
    conditions = [r.path.startswith(region.path) for region in regions]
    if channel.broadcast:
        ancestors = {code for region in regions for code in region.path.strip("/").split("/")}
        conditions.append(r.code.in_(ancestors))
    stmt = (
        sa_select(t.id)
        .join(REGION, r.code == t.region_code)
        .where(t.channel == channel.name, t.active.is_(True), or_(*conditions))
        .order_by(t.id)
    )
    return [row[0] for row in (await session.execute(stmt)).all()]


Pair = tuple[str, int | None]  # (channel, target id); None for a targetless channel


async def planned_pairs(session: AsyncSession, item: Item) -> list[Pair]:
    """Every delivery the item makes, in the order planning writes them: the item's channels in
    its own order, each channel's targets by id."""
    pairs: list[Pair] = []
    for name in item.channels or registry.available():
        channel = registry.get(name)
        if channel.targetless:
            pairs.append((name, None))
        else:
            pairs += [(name, i) for i in await target_ids_for(session, channel, item.regions)]
    return pairs


async def existing_keys(session: AsyncSession, item_id: str) -> set[str]:
    """The dedup keys of the deliveries already planned for the item (a resumed plan skips them)."""
    rows = await session.execute(
        sa_select(DELIVERY.c.dedup_key).where(DELIVERY.c.item_id == item_id)
    )
    return {r[0] for r in rows.all()}


async def render_rows(
    session: AsyncSession,
    sealer: Sealer,
    directory: Directory,
    item: Item,
    view: ItemView,
    pairs: list[Pair],
    public_url: str,
    status: DeliveryStatus,
    jobs: list[str | None],
) -> list[dict[str, Any]]:
    """The delivery rows for ``pairs``, rendered, each naming its job (``jobs[i]``)."""
    t = TARGET.c
    ids = [target_id for _, target_id in pairs if target_id is not None]
    columns = (t.id, t.channel, t.region_code, t.address_sealed, t.account_name, t.options)
    found = (
        {
            row[0]: row
            for row in (await session.execute(sa_select(*columns).where(t.id.in_(ids)))).all()
        }
        if ids
        else {}
    )
    rows: list[dict[str, Any]] = []
    for n, ((name, target_id), job) in enumerate(zip(pairs, jobs, strict=True), 1):
        if n % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # a worker plans and sends at once: let the sends run
        channel = registry.get(name)
        if target_id is None:
            tv = await directory.target_view(None, name)
        elif target_id in found:
            tv = await directory.open_target(*found[target_id])
        else:
            continue  # removed from the directory since the plan was counted
        rendered = channel.render(view, tv, public_url)
        now = utcnow()
        rows.append(
            {
                "item_id": item.id,
                "target_id": target_id,
                "channel": name,
                "region_code": tv.region_code,
                "languages": list(tv.languages),
                "payload": {
                    "parts": seal_parts(rendered.parts, sealer),
                    "meta": rendered.meta,
                },
                "notes": list(rendered.notes),
                "status": DeliveryStatus.dead if rendered.refused else status,
                "last_error": rendered.refused,
                "attempts": 0,
                "parts_done": 0,
                "provider_message_ids": [],
                "created_at": now,
                "updated_at": now,
                "dedup_key": dedup_key(item.id, name, target_id),
                "not_before": item.publish_at,
                "job": job,
            }
        )
    return rows


async def insert_new(session: AsyncSession, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One multi-row INSERT … ON CONFLICT (dedup_key) DO NOTHING … RETURNING: the rows written
    now, each with its ``id``. A row another run already wrote is skipped, never doubled."""
    if not rows:
        return []
    conn = await session.connection()
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = (
        dialect_insert(DELIVERY)
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(DELIVERY.c.id, DELIVERY.c.dedup_key)
    )
    result = await session.execute(stmt, rows)
    ids = {key: i for i, key in result.all()}
    return [{**row, "id": ids[row["dedup_key"]]} for row in rows if row["dedup_key"] in ids]


async def plan_template_push(
    session: AsyncSession,
    directory: Directory,
    item: Item,
    view: ItemView,
    public_url: str,
    status: DeliveryStatus,
    existing: set[str],
) -> list[Delivery]:
    """精准推送: one template message per follower subscribed to the item's domain and place."""
    from gongkai.channels.wechat_mp import render_template_push

    channel = registry.get("wechat_mp")
    out: list[Delivery] = []
    for target in await targets_for(session, channel, item.regions):
        key = dedup_key(item.id, "wechat_mp", target.id) + "|template"
        if key in existing:
            continue
        tv = await directory.target_view(target, "wechat_mp")
        template_id = (tv.account or {}).get("template_id")
        if not template_id:
            continue  # the account has no approved template: the article alone goes out
        followers = await followers_for(
            session, item, platform="wechat", account=target.account_name
        )
        if not followers:
            continue
        rendered = render_template_push(
            view,
            tv,
            public_url,
            openids=[f.external_id for f in followers],
            template_id=str(template_id),
            fields=(tv.account or {}).get("template_fields"),
        )
        now = utcnow()
        delivery = Delivery(
            item_id=item.id,
            target_id=target.id,
            channel="wechat_mp",
            region_code=target.region_code,
            languages=list(tv.languages),
            payload={"parts": rendered.parts, "meta": rendered.meta},
            notes=list(rendered.notes),
            status=status,
            created_at=now,
            updated_at=now,
            dedup_key=key,
            not_before=item.publish_at,
        )
        session.add(delivery)
        out.append(delivery)
    return out
