"""Telling an applicant by SMS that their application moved: a correction is asked for, the
answer is extended (条例 art. 33 requires the notice), or the answer is ready.

Sent through the county's SMS account and its provider exchange (Aliyun or Tencent Cloud, the
same requests, signatures and verdicts as item deliveries) with a template the provider has
approved for this purpose (``GONGKAI_APPLICATIONS_SMS_TEMPLATE``). On Aliyun its variables
are ``${number}``, ``${status}`` and, optionally, ``${link}`` (the status page, without the code);
on Tencent ``{1}`` the number and ``{2}`` the status. The message says what happened; the reply
itself stays behind the lookup code, so an SMS read by someone else discloses nothing.

One notice is one request; the outcome (provider message id or the error) is recorded as an
event of the application by the caller. A notice whose answer was lost is not sent again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.channels.base import SendContext, TargetView
from gongkai.channels.sms_exchange import send_aliyun, send_tencent
from gongkai.channels.sms_providers import ALIYUN, TENCENT, e164, mainland_mobile
from gongkai.config import Settings
from gongkai.storage.applications import Application
from gongkai.storage.crypto import Sealer
from gongkai.storage.models import Account

NOTICE_TIMEOUT = 10.0


class NoticeUnavailable(Exception):
    """No SMS account, no approved template, or no mobile number: nothing was sent."""


@dataclass
class Notice:
    provider_message_id: str | None
    text: str


async def sms_account(session: AsyncSession, sealer: Sealer) -> dict[str, Any] | None:
    """The county's first SMS account, its secrets opened."""
    row = (
        await session.exec(
            select(Account).where(Account.channel == "sms").order_by(col(Account.id))
        )
    ).first()
    if row is None:
        return None
    return {
        "name": row.name,
        "provider": row.provider,
        **row.config,
        **(sealer.open(row.secrets_sealed) if row.secrets_sealed else {}),
    }


async def notify_by_sms(
    session: AsyncSession,
    sealer: Sealer,
    settings: Settings,
    http: aiohttp.ClientSession,
    app: Application,
    *,
    status: str,
    sequence: int,
) -> Notice:
    """Send one notice; ``sequence`` makes the provider-side reference (OutId /
    SessionContext) unique per notice of this application."""
    template = settings.applications_sms_template
    if not template:
        raise NoticeUnavailable("GONGKAI_APPLICATIONS_SMS_TEMPLATE is not set")
    phone = str(sealer.open(app.contact_sealed).get("phone") or "")
    link = f"{settings.public_url.rstrip('/')}/apply/{app.number}"
    return await send_sms(
        session,
        sealer,
        settings,
        http,
        phone=phone,
        template=template,
        number=app.number,
        status=status,
        link=link,
        tag=f"{app.number}-{sequence}",
    )


async def send_sms(
    session: AsyncSession,
    sealer: Sealer,
    settings: Settings,
    http: aiohttp.ClientSession,
    *,
    phone: str,
    template: str,
    number: str,
    status: str,
    link: str,
    tag: str,
) -> Notice:
    """One SMS about application ``number`` with an approved template (to the applicant, or a
    reminder to its handler); ``tag`` is the provider-side reference, unique per message."""
    account = await sms_account(session, sealer)
    if account is None:
        raise NoticeUnavailable("no SMS account in the directory")
    mobile = mainland_mobile(phone)
    if mobile is None:
        raise NoticeUnavailable("no mobile number to send to")
    provider = str(account.get("provider") or "")
    params: dict[str, str] | list[str] = {"number": number, "status": status, "link": link}
    if provider == TENCENT:
        params = [number, status]  # Tencent's templates number their variables: {1}, {2}
    part = {
        "provider": provider,
        "phones": [mobile] if provider == ALIYUN else [e164(mobile)],
        "template_code": template,
        "params": params,
        "sign_name": str(account.get("sign_name") or ""),
    }
    target = TargetView(
        id=None,
        channel="sms",
        region_code=None,
        region_name="",
        region_names={},
        languages=("zh",),
        address={},
        account=account,
        account_name=str(account["name"]),
    )
    ctx = SendContext(
        http=http,
        settings=settings,
        redis=None,
        target=target,
        item_id=number,
        delivery_id=0,
        part_index=0,
    )
    if provider == ALIYUN:
        sent = await send_aliyun(ctx, account, part, tag, NOTICE_TIMEOUT)
    elif provider == TENCENT:
        sent = await send_tencent(ctx, account, part, tag, NOTICE_TIMEOUT)
    else:
        raise NoticeUnavailable(f"unknown SMS provider {provider!r}")
    return Notice(sent.provider_message_id, f"{number} {status}")
