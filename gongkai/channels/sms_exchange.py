"""One SMS part's request to Aliyun or Tencent, and what a lost answer means.

Failing to connect is transient: nothing reached the provider. Once the request has gone out, a
timeout or a dropped connection is uncertain, and neither provider deduplicates, so the part
is not sent again on its own. Aliyun can be asked (QuerySendDetails, by our OutId) whether the
send exists; Tencent cannot, so its uncertain sends wait for a person.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import aiohttp

from gongkai.channels.base import SendContext, SentPart, TransientError, UncertainError
from gongkai.channels.sms_providers import (
    ALIYUN,
    aliyun_query_params,
    aliyun_send_params,
    percent_encode,
    tencent_send_request,
)
from gongkai.channels.sms_verdicts import aliyun_sent_with, aliyun_verdict, tencent_verdict


async def send_aliyun(
    ctx: SendContext, account: dict[str, Any], part: dict[str, Any], tag: str, seconds: float
) -> SentPart:
    params = aliyun_send_params(
        account, part, out_id=tag, timestamp=time.time(), nonce=uuid.uuid4().hex
    )
    try:
        with _reference("OutId", tag):
            status, data = await _exchange(
                ctx.http, ctx.settings.aliyun_sms_endpoint, _form(params), _FORM, seconds
            )
    except UncertainError:
        if await aliyun_has_sent(ctx, account, part, tag, seconds):
            return SentPart(
                provider_message_id=f"outid:{tag}",
                extra={
                    "provider": ALIYUN,
                    "accepted": len(part["phones"]),
                    "note": "短信接口未及时应答；按 OutId 查到已发送，未重发",
                },
            )
        raise
    return aliyun_verdict(status, data, list(part["phones"]))


async def send_tencent(
    ctx: SendContext, account: dict[str, Any], part: dict[str, Any], tag: str, seconds: float
) -> SentPart:
    endpoint = ctx.settings.tencent_sms_endpoint
    host = urlsplit(endpoint).netloc.lower()
    headers, payload = tencent_send_request(
        account, part, session_context=tag, host=host, timestamp=int(time.time())
    )
    with _reference("SessionContext", tag):
        status, data = await _exchange(ctx.http, endpoint, payload, headers, seconds)
    return tencent_verdict(status, data, list(part["phones"]))


_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _form(params: dict[str, str]) -> bytes:
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items()).encode(
        "ascii"
    )


async def aliyun_has_sent(
    ctx: SendContext, account: dict[str, Any], part: dict[str, Any], tag: str, seconds: float
) -> bool:
    """After a lost answer, ask Aliyun whether the send exists: QuerySendDetails lists one
    number's sends of a day with our OutId. Found means sent; anything else stays uncertain
    (Aliyun's records can lag behind the send)."""
    phone = str(part["phones"][0])
    day = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")  # Aliyun keeps Beijing days
    params = aliyun_query_params(
        account, phone=phone, send_date=day, timestamp=time.time(), nonce=uuid.uuid4().hex
    )
    try:
        _, data = await _exchange(
            ctx.http, ctx.settings.aliyun_sms_endpoint, _form(params), _FORM, seconds
        )
    except (TransientError, UncertainError):
        return False
    return aliyun_sent_with(data, tag)


@contextmanager
def _reference(field: str, tag: str) -> Iterator[None]:
    """An uncertain send names what to look for in the provider's send records."""
    try:
        yield
    except UncertainError as exc:
        raise UncertainError(f"{exc} ({field} {tag} in the provider's send records)") from exc


async def _exchange(
    http: aiohttp.ClientSession,
    endpoint: str,
    body: bytes,
    headers: dict[str, str],
    seconds: float,
) -> tuple[int, dict[str, Any] | None]:
    """One POST; the module's docstring says how each failure is classed."""
    url = endpoint.rstrip("/") + "/"
    try:
        async with http.post(
            url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=seconds)
        ) as resp:
            raw = await resp.read()
            status = resp.status
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
        raise TransientError(f"sms provider unreachable: {type(exc).__name__}: {exc}") from exc
    except TimeoutError as exc:
        raise UncertainError(f"sms provider did not answer within {seconds:g}s") from exc
    except aiohttp.ClientError as exc:
        raise UncertainError(
            f"sms provider dropped the request: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        data = None
    return status, data if isinstance(data, dict) else None
