"""Telling an applicant who applied in a chat, in that chat: a WeChat customer-service message
or a Telegram bot message to the resident's own conversation.

Both go through the clients the channels already use (``channels.wechat_api.WechatApi`` with its
shared access token, ``channels.telegram.TelegramChannel`` with aiogram), addressed to the
follower the application was made from. WeChat allows a customer-service message only within
48 hours of the resident's last message (errcode 45015 after that, 45047 when the five messages
are used up): when our own record of the last message is older than ``WECHAT_WINDOW`` we do not
try, and either refusal raises ``OutsideWindow`` so the caller can fall back to SMS or post.

Like the SMS notice, the message says what happened and how to read the reply (``查看答复``
in the same chat, which only that resident can do); the reply itself is not in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from redis.asyncio import Redis
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.channels.base import SendContext, TargetView
from gongkai.config import Settings
from gongkai.dispatch.application_notice import NoticeUnavailable
from gongkai.storage.applications import Application
from gongkai.storage.crypto import Sealer
from gongkai.storage.models import Account, Follower

# WeChat's window is 48 hours; an hour's margin for our coarse last-seen time and clock skew.
WECHAT_WINDOW = timedelta(hours=47)
WINDOW_CLOSED = frozenset({45015, 45047})
ACCOUNT_CHANNEL = {"wechat": "wechat_mp", "telegram": "telegram"}


class OutsideWindow(NoticeUnavailable):
    """WeChat no longer lets us write to this resident (48 hours since their last message)."""


@dataclass
class ChatNotice:
    channel: str  # wechat | telegram
    provider_message_id: str | None
    text: str


def chat_text(number: str, status: str) -> str:
    return f"您的政府信息公开申请 {number} {status}。发送“查看答复 {number}”查看详情。"


async def _account(
    session: AsyncSession, sealer: Sealer, channel: str, name: str
) -> dict[str, Any] | None:
    row = (
        await session.exec(select(Account).where(Account.channel == channel, Account.name == name))
    ).first()
    if row is None:
        return None
    return {
        "name": row.name,
        **row.config,
        **(sealer.open(row.secrets_sealed) if row.secrets_sealed else {}),
    }


async def notify_in_chat(
    session: AsyncSession,
    sealer: Sealer,
    settings: Settings,
    http: aiohttp.ClientSession,
    redis: Redis | None,
    app: Application,
    *,
    status: str,
    now: datetime,
) -> ChatNotice:
    """Send one notice to the chat the application came from (``NoticeUnavailable`` when
    there is none, ``OutsideWindow`` when WeChat's window is closed)."""
    follower = await session.get(Follower, app.follower_id) if app.follower_id else None
    if follower is None or follower.platform not in ACCOUNT_CHANNEL:
        raise NoticeUnavailable("the application was not made in a chat")
    channel = ACCOUNT_CHANNEL[follower.platform]
    account = await _account(session, sealer, channel, follower.account)
    if account is None:
        raise NoticeUnavailable(f"no {channel} account {follower.account!r} in the directory")
    text = chat_text(app.number, status)
    target = TargetView(
        id=None,
        channel=channel,
        region_code=None,
        region_name="",
        region_names={},
        languages=(app.language,),
        address={"chat_id": follower.external_id},
        account=account,
        account_name=follower.account,
    )
    ctx = SendContext(
        http=http,
        settings=settings,
        redis=redis,
        target=target,
        item_id=app.number,
        delivery_id=0,
        part_index=0,
    )
    # Imported here: aiogram alone is ~125 MB and seconds of start-up, and every process that
    # can record an application step imports this module, most of them never sending a notice.
    from gongkai.channels.telegram import TelegramChannel
    from gongkai.channels.wechat_api import WechatPermanentError
    from gongkai.channels.wechat_mp import api_for

    if follower.platform == "telegram":
        sent = await TelegramChannel().send({"text": text}, ctx)
        return ChatNotice("telegram", sent.provider_message_id, text)
    seen = follower.last_seen_at
    if seen is None or now - seen > WECHAT_WINDOW:
        raise OutsideWindow("more than 48 hours since the resident's last message")
    try:
        await api_for(ctx).send_custom(
            {"touser": follower.external_id, "msgtype": "text", "text": {"content": text}}
        )
    except WechatPermanentError as exc:
        if exc.errcode in WINDOW_CLOSED:
            raise OutsideWindow(str(exc)) from exc
        raise
    return ChatNotice("wechat", None, text)
