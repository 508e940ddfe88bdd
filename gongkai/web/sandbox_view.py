"""What the sandbox received, shown as its readers see it, and whose target it reached.

The simulators know addresses (a robot key, a phone, a chat, an app id); the directory knows
which village's group, committee or phone list each address is. This module joins the two and
turns each message into safe HTML: a robot's markdown rendered (WeCom's ``<font color>``
included), a Telegram message with only Telegram's tags, an SMS with its signature and
segments. Nothing a provider received is put on the page unescaped; an official-account
article (HTML with inline styles, as WeChat takes it) is a document of its own, shown in a
sandboxed frame whose CSP lets nothing run and nothing load from elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from markdown_it import MarkdownIt
from markupsafe import Markup, escape
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.channels.sms_providers import mainland_mobile, mask
from gongkai.dispatch.planning import Directory
from gongkai.sandbox.inbox import Received
from gongkai.storage.crypto import Sealer
from gongkai.storage.models import Target

CHANNEL_ORDER = ("village_group", "loudspeaker", "sms", "wechat_mp", "telegram")
CHANNEL_TITLES = {
    "web": "网页 / web",
    "wechat_mp": "公众号 / official account",
    "village_group": "村群 / village group",
    "sms": "短信 / SMS",
    "loudspeaker": "大喇叭 / loudspeaker",
    "telegram": "Telegram",
}
# the channel a message most likely belongs to when no target of the directory has its address
PROVIDER_CHANNEL = {
    "wecom": "village_group",
    "telegram": "telegram",
    "aliyun": "sms",
    "tencent": "sms",
    "wechat": "wechat_mp",
}
MONGOLIAN = re.compile(r"[\u1800-\u18AF]")

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_FONT = re.compile(
    r"&lt;font color=(?:&quot;|\")?(info|comment|warning)(?:&quot;|\")?&gt;(.*?)&lt;/font&gt;", re.S
)
_TG_TAG = re.compile(r"&lt;(/?)(b|i|u|s|code|pre|blockquote|tg-spoiler)&gt;")
_TG_LINK = re.compile(r"&lt;a href=&#34;(https?://[^&\s]+?)&#34;&gt;(.*?)&lt;/a&gt;", re.S)


def wecom_markdown(text: str) -> Markup:
    """WeCom robot markdown as the group shows it: commonmark without raw HTML, plus WeCom's
    three ``<font color>`` colours."""
    html = _markdown.render(text)
    return Markup(_FONT.sub(r'<span class="wc-\1">\2</span>', html))


def telegram_html(raw: str, parse_mode: str | None) -> Markup:
    """A message in Telegram's HTML parse mode: only its tags come back to life, links only
    to http(s)."""
    escaped = str(escape(raw))
    if parse_mode != "HTML":
        return Markup(escaped)
    escaped = _TG_LINK.sub(r'<a href="\1" rel="noopener">\2</a>', escaped)
    return Markup(_TG_TAG.sub(r"<\1\2>", escaped))


@dataclass
class TargetCard:
    """One target of the directory (or an address no target has) and what it received."""

    key: str
    channel: str
    region_code: str
    region_name: str
    label: str  # how the reader is named: the group, the committee, the phones, the chat
    target_id: int | None = None
    lang: tuple[str, ...] = ()
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def mongolian(self) -> bool:
        return "mn" in self.lang


def _addresses(channel: str, address: dict[str, Any], account: dict[str, Any] | None) -> set[str]:
    found: set[str] = set()
    if address.get("robot_key"):
        found.add(f"wecom:{address['robot_key']}")
    for phone in address.get("phones") or []:
        mobile = mainland_mobile(str(phone))
        if mobile:
            found |= {f"aliyun:{mobile}", f"tencent:{mobile}"}
    if address.get("chat_id") is not None:
        found.add(f"telegram:{address['chat_id']}")
    if channel == "wechat_mp" and account and account.get("app_id"):
        found.add(f"wechat:{account['app_id']}")
    return found


def _label(channel: str, region_name: str, address: dict[str, Any]) -> str:
    if channel == "village_group":
        return f"{region_name} 村民群"
    if channel == "loudspeaker":
        by_sms = "（短信）" if address.get("phones") else ""
        return f"{region_name} 村委会大喇叭{by_sms}"
    if channel == "sms":
        phones = [mask(str(p)) for p in address.get("phones") or []]
        return f"{region_name} · {', '.join(phones)}"
    if channel == "telegram":
        return f"{region_name} · chat {address.get('chat_id')}"
    return f"{region_name} 公众号"


async def target_cards(
    session: AsyncSession, sealer: Sealer
) -> tuple[list[TargetCard], dict[str, list[TargetCard]]]:
    """Every active target but the web's, and an index from ``provider:address`` to them."""
    directory = Directory(session, sealer)
    rows = (
        await session.exec(
            select(Target)
            .where(col(Target.active).is_(True))
            .order_by(col(Target.region_code), col(Target.id))
        )
    ).all()
    cards: list[TargetCard] = []
    index: dict[str, list[TargetCard]] = {}
    for t in rows:
        if t.channel not in CHANNEL_ORDER:
            continue
        view = await directory.target_view(t, t.channel)
        card = TargetCard(
            key=f"t{t.id}",
            channel=t.channel,
            region_code=t.region_code,
            region_name=view.region_name,
            label=_label(t.channel, view.region_name, view.address),
            target_id=t.id,
            lang=tuple(view.languages),
        )
        cards.append(card)
        for addr in _addresses(t.channel, view.address, view.account):
            index.setdefault(addr, []).append(card)
    return cards, index


def _address_key(r: Received) -> str:
    return f"{r.provider}:{r.address}"


def shown(r: Received, tz: ZoneInfo) -> dict[str, Any]:
    """The record as the page and the JSON give it: phones masked, the time in local time."""
    address = mask(r.address) if r.provider in ("aliyun", "tencent") else r.address
    at = datetime.fromtimestamp(r.at, UTC).astimezone(tz)
    return {
        "id": r.id,
        "provider": r.provider,
        "address": address,
        "kind": r.kind,
        "at": at.isoformat(timespec="seconds"),
        "time": at.strftime("%H:%M:%S"),
        "text": r.text,
        "meta": {k: v for k, v in r.meta.items() if k != "content"}
        | ({"content_bytes": len(str(r.meta["content"]).encode())} if "content" in r.meta else {}),
        "mongolian": bool(MONGOLIAN.search(r.text)),
    }


def assign(
    records: list[Received],
    cards: list[TargetCard],
    index: dict[str, list[TargetCard]],
    tz: ZoneInfo,
) -> list[TargetCard]:
    """Put each record (newest first) on the cards of the targets its address belongs to; an
    address no target has gets a card of its own."""
    strays: dict[str, TargetCard] = {}
    for r in records:
        owners = index.get(_address_key(r))
        if not owners:
            key = _address_key(r)
            if key not in strays:
                shown_address = (
                    mask(r.address) if r.provider in ("aliyun", "tencent") else r.address
                )
                strays[key] = TargetCard(
                    key=f"x{len(strays)}",
                    channel=PROVIDER_CHANNEL[r.provider],
                    region_code="",
                    region_name="",
                    label=f"名录外 / not in the directory: {shown_address}",
                )
            owners = [strays[key]]
        for card in owners:
            card.messages.append({**shown(r, tz), "channel": card.channel})
    return cards + list(strays.values())
