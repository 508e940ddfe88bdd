"""The official account's callback: ``GET/POST /wechat/{account}``.

Order matters, and is the same for every request: the account, the timestamp window and the
signature first (nothing is parsed for a stranger), then the size-capped body, then — in
compatible and safe mode — wechatpy's `WeChatCrypto` checks the ``msg_signature`` over the
ciphertext and decrypts (and seals the reply in its envelope), then the duplicate guard,
then the rate limit, then the answer. The answer is passive XML when it is ready within the
budget; otherwise WeChat gets "success" at once and the resident gets the answer through the
customer-service API.

The duplicate guard is also the replay defence. A signed request passes `check_signed` for
as long as its timestamp is within ``TIME_WINDOW`` of our clock, so both the request
(timestamp, nonce, signature) and the message (MsgId, or sender + CreateTime + Event for an
event) are remembered in Redis, shared by every web process, until that window has closed for
the request (`replay_ttl`). A duplicate is never handled again: within ``SEEN_TTL`` it gets
the reply the first copy got (WeChat's own retries come within 15 s, and the resident may not
have had the first), later just "success", which is what WeChat expects for a message that
needs no answer. A captured plain-mode query (whose signature does not cover the body) reused
with another body gets "success" too, and that body is not looked at further.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException

from gongkai.bot.conversation import Context, answer_entry, command, latest, respond, welcome
from gongkai.bot.inbound import INBOUND, SEEN_TTL, Admission, Inbound, install
from gongkai.bot.keys import HTTP, MAKER, POOL, SETTINGS
from gongkai.bot.phrases import say
from gongkai.bot.villages import find_regions
from gongkai.bot.wechat_messages import (
    MAX_BODY,
    Refused,
    check_signed,
    dedup_key,
    parse_xml,
    replay_ttl,
    reply_nonce,
    request_key,
    text_reply,
)
from gongkai.channels.base import PermanentError, TransientError
from gongkai.channels.wechat_api import WechatApi
from gongkai.channels.wechat_verdicts import mass_outcome_from_event, outcome_from_event
from gongkai.dispatch.delivery import complete_pending
from gongkai.storage.models import Follower

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
REPLY_BUDGET = 3.0  # seconds; WeChat gives up at 5 and retries
SUCCESS = "success"
MODES = ("plain", "compatible", "safe")


@dataclass
class WechatAccount:
    name: str
    app_id: str
    app_secret: str
    token: str
    mode: str
    crypto: WeChatCrypto | None  # one AES cipher per account, reused for every message
    budget: float
    config: dict[str, Any]


_opened: dict[int, WechatAccount] = {}


async def _account(request: web.Request) -> WechatAccount:
    name = request.match_info["account"]
    config = await request.app[INBOUND].account("wechat_mp", name)
    if config is None or not config.get("token"):
        raise Refused(404, "no such official account")
    cached = _opened.get(id(config))
    if cached is not None and cached.config is config:
        return cached
    aes = config.get("encoding_aes_key")
    mode = str(config.get("encryption_mode") or ("safe" if aes else "plain"))
    if mode not in MODES:
        mode = "safe" if aes else "plain"
    app_id, token = str(config.get("app_id") or ""), str(config["token"])
    account = WechatAccount(
        name=name,
        app_id=app_id,
        app_secret=str(config.get("app_secret") or ""),
        token=token,
        mode=mode,
        crypto=WeChatCrypto(token, str(aes), app_id) if aes else None,
        budget=float(config.get("reply_budget", REPLY_BUDGET)),
        config=config,
    )
    if len(_opened) > 256:
        _opened.clear()
    _opened[id(config)] = account
    return account


def _refusal(exc: Refused) -> web.Response:
    return web.Response(status=exc.status, text=exc.reason)


@routes.get("/wechat/{account}")
async def verify(request: web.Request) -> web.Response:
    """URL verification: the signature over (token, timestamp, nonce) earns the echo."""
    try:
        account = await _account(request)
        q = request.query
        now = request.app[INBOUND].clock()
        check_signed(account.token, q.get("timestamp"), q.get("nonce"), q.get("signature"), now=now)
    except Refused as exc:
        return _refusal(exc)
    return web.Response(text=q.get("echostr", ""), content_type="text/plain")


async def _read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Refused(413, "body too large")
    data = bytearray()
    while chunk := await request.content.read(MAX_BODY + 1 - len(data)):
        data += chunk
        if len(data) > MAX_BODY:
            raise Refused(413, "body too large")
    return bytes(data)


async def _open(
    request: web.Request, account: WechatAccount, now: float
) -> tuple[dict[str, Any], bool]:
    """The message's fields, and whether the request (so our reply) is encrypted."""
    q = request.query
    timestamp, nonce = q.get("timestamp"), q.get("nonce")
    check_signed(account.token, timestamp, nonce, q.get("signature"), now=now)
    encrypted = q.get("encrypt_type", "raw") == "aes"
    if not encrypted and account.mode == "safe":
        raise Refused(403, "this account accepts encrypted messages only")
    if encrypted and account.crypto is None:
        raise Refused(400, "encrypted message but no EncodingAESKey configured")
    outer = parse_xml(await _read_body(request))
    if not encrypted:
        return outer, False
    assert account.crypto is not None
    ciphertext = outer.get("Encrypt")
    if not isinstance(ciphertext, str) or not ciphertext:
        raise Refused(400, "no Encrypt field")
    given = (q.get("msg_signature") or "").lower()
    try:  # the timestamp was judged by check_signed; it is the same one
        plain = account.crypto.decrypt_message(outer, given, timestamp, nonce)
    except InvalidSignatureException:
        raise Refused(403, "bad msg_signature") from None
    except InvalidAppIdException:
        raise Refused(403, "message for another app id") from None
    except Exception:  # wrong key, bad padding, bad base64: all just garbage to us
        raise Refused(400, "cannot decrypt") from None
    return parse_xml(plain), True


def _reply_response(
    account: WechatAccount, xml: str | None, encrypted: bool, nonce: str, now: float
) -> web.Response:
    if xml is None:
        return web.Response(text=SUCCESS, content_type="text/plain")
    if encrypted:
        assert account.crypto is not None
        xml = str(account.crypto.encrypt_message(xml, reply_nonce(nonce), str(int(now))))
    return web.Response(text=xml, content_type="application/xml")


@routes.post("/wechat/{account}")
async def receive(request: web.Request) -> web.Response:
    inbound = request.app[INBOUND]
    now = inbound.clock()
    try:
        account = await _account(request)
        fields, encrypted = await _open(request, account, now)
    except Refused as exc:
        return _refusal(exc)
    q = request.query
    nonce = q.get("nonce", "")
    key = dedup_key(account.app_id, fields)
    # Checked by _open: present, and the timestamp a number within the window.
    signed = request_key(account.app_id, q["timestamp"], nonce, q["signature"])
    ttl = replay_ttl(q["timestamp"], now)
    openid = str(fields.get("FromUserName") or "")
    ours = str(fields.get("ToUserName") or "")
    admission = await inbound.admit(
        key,
        "wechat",
        account.name,
        openid,
        ttl=max(SEEN_TTL, ttl),
        request_key=signed,
        request_ttl=ttl,
    )
    if not admission.first:  # a retry or a replay: the first's answer, or "success"
        cached = admission.reply.decode() if admission.reply else None
        return _reply_response(account, cached, encrypted, nonce, now)
    work = inbound.spawn(
        _handle(request.app, inbound, account, fields, admission), name=f"wechat {key}"
    )
    done, _ = await asyncio.wait({work}, timeout=account.budget)
    if not done:  # too slow for a passive reply: answer later through the service API
        inbound.spawn(_follow_up(request.app, account, openid, work))
        return _reply_response(account, None, encrypted, nonce, now)
    if work.exception() is not None:
        await inbound.forget(key, signed)  # let WeChat's retry try again
        return web.Response(status=500, text="temporarily unavailable")
    text = work.result()
    xml = text_reply(openid, ours, text) if text else None
    if xml is not None:
        await inbound.remember_reply(key, xml.encode())
    return _reply_response(account, xml, encrypted, nonce, now)


async def _follow_up(
    app: web.Application, account: WechatAccount, openid: str, work: asyncio.Task[str | None]
) -> None:
    text = await work
    if not text or not openid:
        return
    api = WechatApi(
        app[SETTINGS].wechat_api_base,
        account.app_id,
        account.app_secret,
        app[HTTP],
        app[POOL],
        token_endpoint=str(account.config.get("token_endpoint") or "stable"),
    )
    try:
        await api.send_custom({"touser": openid, "msgtype": "text", "text": {"content": text}})
    except (TransientError, PermanentError) as exc:  # window closed (45015), count used (45047)
        log.warning("could not send the late answer to %s: %s", account.name, exc)


USER_EVENTS = {"subscribe", "SCAN", "CLICK"}


async def _handle(
    app: web.Application,
    inbound: Inbound,
    account: WechatAccount,
    fields: dict[str, Any],
    admission: Admission,
) -> str | None:
    """The reply text for one message or event; None when nothing is to be said."""
    kind = str(fields.get("MsgType") or "")
    event = str(fields.get("Event") or "") if kind == "event" else ""
    openid = str(fields.get("FromUserName") or "")
    if event == "PUBLISHJOBFINISH":
        await _publish_finished(app, fields)
        return None
    if event == "MASSSENDJOBFINISH":
        await _mass_finished(app, fields)
        return None
    if kind == "event" and event not in USER_EVENTS and event != "unsubscribe":
        return None  # VIEW, LOCATION, TEMPLATESENDJOBFINISH …
    if not openid:
        return None
    if event != "unsubscribe" and admission.verdict != "ok":
        return say("zh", "too_many") if admission.verdict == "refuse" else None
    talk = inbound.conversation(
        "wechat", account.name, account.config, openid, cached=admission.follower
    )
    async with talk as (ctx, f):
        if kind == "event":
            return await _event(ctx, f, event, str(fields.get("EventKey") or ""))
        if kind == "text":
            return (await respond(ctx, f, str(fields.get("Content") or ""))).text
        if kind == "voice":
            heard = str(fields.get("Recognition") or "").strip()
            if heard:
                return (await respond(ctx, f, heard)).text
            return say(f.language, "voice_unclear")
        return say(f.language, "unsupported")


async def _event(ctx: Context, follower: Follower, event: str, key: str) -> str | None:
    if event == "unsubscribe":  # no reply reaches an unfollower; stop pushes
        follower.subscribed = False
        ctx.session.add(follower)
        await ctx.session.commit()
        return None
    if event in ("subscribe", "SCAN"):
        follower.subscribed = True
        code = key.removeprefix("qrscene_")  # a village's QR code carries its division code
        if code.isdigit():
            found = await find_regions(ctx.session, code, within=ctx.account_region)
            if found:
                follower.region_code = found[0].code
        ctx.session.add(follower)
        await ctx.session.commit()
        if event == "subscribe":
            return (await welcome(ctx, follower)).text
        return (await command(ctx, follower, "latest")).text
    # A menu click: "faq:<id>" answers one entry; other keys name a command.
    if key.startswith("faq:"):
        return (await answer_entry(ctx, follower, key[4:])).text
    if key == "latest":
        return (await latest(ctx, follower)).text
    name = key if key in ("subscriptions", "human", "help") else "help"
    return (await command(ctx, follower, name)).text


async def _mass_finished(app: web.Application, fields: dict[str, Any]) -> None:
    """How a mass send went: settle the pending delivery and keep the reach on it."""
    verdict = mass_outcome_from_event(fields)
    if verdict is None:
        return
    done = await complete_pending(
        app[MAKER],
        f"mass:{verdict.msg_id}",
        ok=verdict.ok,
        reason=verdict.reason,
        note=verdict.note,
    )
    if done is None:
        log.info("MASSSENDJOBFINISH for unknown msg_id %s (%s)", verdict.msg_id, verdict.reason)


async def _publish_finished(app: web.Application, fields: dict[str, Any]) -> None:
    """WeChat's verdict on an article we submitted: settle the pending delivery."""
    info = fields.get("PublishEventInfo")
    publish_id = info.get("publish_id") if isinstance(info, dict) else None
    if not publish_id:
        return
    outcome = outcome_from_event(fields)
    if outcome.status == "pending":
        return
    done = await complete_pending(
        app[MAKER],
        f"publish:{publish_id}",
        ok=outcome.status == "delivered",
        reason=outcome.reason,
        final_id=f"article:{outcome.article_id}" if outcome.article_id else None,
    )
    log.info(
        "PUBLISHJOBFINISH %s → %s (%s)",
        publish_id,
        outcome.status,
        "settled" if done else "no pending delivery",
    )


def setup(app: web.Application) -> None:
    install(app)
    app.add_routes(routes)
