"""The official account's callback: ``GET/POST /wechat/{account}``.

WeChat's protocol is spoken through wechatpy (signatures, the AES envelope both ways, typed
messages, reply XML); our limits stand in front of it (`wechat_messages`). Order matters, and
is the same for every request: the account, the timestamp window and the signature first
(nothing is parsed for a stranger), then the size-capped body and defusedxml, then — in
compatible and safe mode — wechatpy checks the ``msg_signature`` over the ciphertext and
decrypts, and the plaintext passes defusedxml in its turn, then the duplicate guard, then the
rate limit, then the answer. The answer is passive XML when it is ready within the budget;
otherwise WeChat gets "success" at once and the resident gets the answer through the
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
from wechatpy.events import (
    BaseEvent,
    ClickEvent,
    MassSendJobFinishEvent,
    ScanEvent,
    SubscribeScanEvent,
)
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.messages import BaseMessage, TextMessage, UnknownMessage, VoiceMessage

from gongkai.bots.conversation import Context, answer_entry, command, latest, respond, welcome
from gongkai.bots.inbound import INBOUND, SEEN_TTL, Admission, Inbound, install
from gongkai.bots.phrases import say
from gongkai.bots.villages import find_regions
from gongkai.bots.wechat_messages import (
    MAX_BODY,
    AccountCrypto,
    PublishJobFinishEvent,
    Refused,
    accept_tree,
    check_signed,
    dedup_key,
    read_message,
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
from gongkai.web.keys import HTTP, MAKER, POOL, SETTINGS

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
    crypto: AccountCrypto | None  # one AES envelope per account, reused for every message
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
    try:
        crypto = AccountCrypto(token, str(aes), app_id) if aes else None
    except Exception:  # stored before imports checked it: say so, never a 500 per message
        log.error("official account %s: its encoding_aes_key is not a valid key", name)
        raise Refused(503, "this official account is misconfigured") from None
    account = WechatAccount(
        name=name,
        app_id=app_id,
        app_secret=str(config.get("app_secret") or ""),
        token=token,
        mode=mode,
        crypto=crypto,
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
) -> tuple[BaseMessage, bool]:
    """The message, and whether the request (so our reply) is encrypted."""
    q = request.query
    timestamp, nonce = q.get("timestamp"), q.get("nonce")
    check_signed(account.token, timestamp, nonce, q.get("signature"), now=now)
    encrypted = q.get("encrypt_type", "raw") == "aes"
    if not encrypted and account.mode == "safe":
        raise Refused(403, "this account accepts encrypted messages only")
    if encrypted and account.crypto is None:
        raise Refused(400, "encrypted message but no EncodingAESKey configured")
    outer, tree = accept_tree(await _read_body(request))
    if not encrypted:
        return read_message(outer, tree), False
    assert account.crypto is not None
    given = (q.get("msg_signature") or "").lower()
    sealed = tree.find("Encrypt")
    if sealed is None:
        raise Refused(400, "no Encrypt field")
    if len(sealed):
        raise Refused(400, "cannot decrypt")  # markup where the ciphertext should be
    try:  # the timestamp was judged by check_signed; it is the same one. wechatpy takes the
        # fields as read, so the envelope is not parsed a second time
        envelope = {"Encrypt": (sealed.text or "").strip()}  # as xmltodict reads it
        plain = account.crypto.decrypt_message(envelope, given, timestamp, nonce)
    except InvalidSignatureException:
        raise Refused(403, "bad msg_signature") from None
    except InvalidAppIdException:
        raise Refused(403, "message for another app id") from None
    except Exception:  # wrong key, bad padding, bad base64: all just garbage to us
        raise Refused(400, "cannot decrypt") from None
    return read_message(*accept_tree(plain)), True


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
        message, encrypted = await _open(request, account, now)
    except Refused as exc:
        return _refusal(exc)
    q = request.query
    nonce = q.get("nonce", "")
    key = dedup_key(account.app_id, message)
    # Checked by _open: present, and the timestamp a number within the window.
    signed = request_key(account.app_id, q["timestamp"], nonce, q["signature"])
    ttl = replay_ttl(q["timestamp"], now)
    openid: str = message.source or ""
    ours: str = message.target or ""
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
        _handle(request.app, inbound, account, message, admission), name=f"wechat {key}"
    )
    done, _ = await asyncio.wait({work}, timeout=account.budget)
    if not done:  # too slow for a passive reply: answer later through the service API
        inbound.spawn(_follow_up(request.app, account, openid, work))
        return _reply_response(account, None, encrypted, nonce, now)
    if work.exception() is not None:
        await inbound.forget(key, signed)  # let WeChat's retry try again
        return web.Response(status=500, text="temporarily unavailable")
    text = work.result()
    xml = text_reply(openid, ours, text, now) if text else None
    if xml is not None:
        inbound.remember_reply(key, xml.encode())
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


# wechatpy's event names: lower case, and a subscribe through a QR code is "subscribe_scan".
WELCOMED = {"subscribe", "subscribe_scan", "subscribe_scan_product"}
USER_EVENTS = {*WELCOMED, "scan", "click", "unsubscribe"}


async def _handle(
    app: web.Application,
    inbound: Inbound,
    account: WechatAccount,
    message: BaseMessage,
    admission: Admission,
) -> str | None:
    """The reply text for one message or event; None when nothing is to be said."""
    if isinstance(message, PublishJobFinishEvent):
        await _publish_finished(app, message)
        return None
    if isinstance(message, MassSendJobFinishEvent):
        await _mass_finished(app, message)
        return None
    event: str = message.event if isinstance(message, BaseEvent) else ""
    if isinstance(message, UnknownMessage) or (event and event not in USER_EVENTS):
        return None  # VIEW, LOCATION, TEMPLATESENDJOBFINISH, events wechatpy does not know …
    openid: str = message.source or ""
    if not openid:
        return None
    if event != "unsubscribe" and admission.verdict != "ok":
        return say("zh", "too_many") if admission.verdict == "refuse" else None
    talk = inbound.conversation(
        "wechat", account.name, account.config, openid, cached=admission.follower
    )
    async with talk as (ctx, f):
        if isinstance(message, BaseEvent):
            return await _event(ctx, f, message)
        if isinstance(message, TextMessage):
            return (await respond(ctx, f, message.content or "")).text
        if isinstance(message, VoiceMessage):
            heard = (message.recognition or "").strip()
            if heard:
                return (await respond(ctx, f, heard)).text
            return say(f.language, "voice_unclear")
        return say(f.language, "unsupported")


async def _event(ctx: Context, follower: Follower, event: BaseEvent) -> str | None:
    if event.event == "unsubscribe":  # no reply reaches an unfollower; stop pushes
        follower.subscribed = False
        ctx.session.add(follower)
        await ctx.session.commit()
        return None
    if event.event in WELCOMED or isinstance(event, ScanEvent):
        follower.subscribed = True
        # A village's QR code carries its division code (wechatpy strips "qrscene_").
        code = (event.scene_id or "") if isinstance(event, SubscribeScanEvent | ScanEvent) else ""
        if code.isdigit():
            found = await find_regions(ctx.session, code, within=ctx.account_region)
            if found:
                follower.region_code = found[0].code
        ctx.session.add(follower)
        await ctx.session.commit()
        if event.event in WELCOMED:
            return (await welcome(ctx, follower)).text
        return (await command(ctx, follower, "latest")).text
    # A menu click: "faq:<id>" answers one entry; other keys name a command.
    key: str = (event.key or "") if isinstance(event, ClickEvent) else ""
    if key.startswith("faq:"):
        return (await answer_entry(ctx, follower, key[4:])).text
    if key == "latest":
        return (await latest(ctx, follower)).text
    name = key if key in ("subscriptions", "human", "help") else "help"
    return (await command(ctx, follower, name)).text


async def _mass_finished(app: web.Application, event: MassSendJobFinishEvent) -> None:
    """How a mass send went: settle the pending delivery and keep the reach on it."""
    verdict = mass_outcome_from_event(
        {
            "MsgID": event.id,
            "Status": event.status,
            "TotalCount": event.total_count,
            "FilterCount": event.filter_count,
            "SentCount": event.sent_count,
            "ErrorCount": event.error_count,
        }
    )
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


async def _publish_finished(app: web.Application, event: PublishJobFinishEvent) -> None:
    """WeChat's verdict on an article we submitted: settle the pending delivery."""
    info = event.info
    publish_id = info.get("publish_id") if isinstance(info, dict) else None
    if not publish_id:
        return
    outcome = outcome_from_event(info)
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
