"""The county's WeChat official account: one article per account, published through drafts.

Publishing is asynchronous at WeChat: freepublish/submit only says "accepted", review follows,
and the verdict arrives as a PUBLISHJOBFINISH push (or by polling freepublish/get). So an
article part returns ``pending=True`` and the worker finishes the delivery with
:func:`~gongkai.channels.wechat_verdicts.outcome_from_event` or
:func:`~gongkai.channels.wechat_verdicts.poll_publish`.

A draft leaves the draft box once it is published *or* mass-sent, so an item is either
published quietly (part ``article``: no follower notification, no quota) or mass-sent (part
``mass_send``: notifies followers, spends the scarce quota); a mass_send part carries its own
article. Template pushes (part ``template``) reach single followers of service accounts.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from gongkai.channels.base import (
    Channel,
    ItemView,
    PermanentError,
    RateLimit,
    Rendered,
    SendContext,
    SentPart,
    TargetView,
    TransientError,
)
from gongkai.channels.wechat_api import MASS_DUPLICATE, WechatApi, WechatPermanentError
from gongkai.channels.wechat_article import build_article, cut, default_cover
from gongkai.channels.wechat_images import with_body_images
from gongkai.channels.wechat_verdicts import poll_publish

TEMPLATE_VALUE_MAX = 20  # "thing" values of a template message: 20 characters
DRAFT_TTL = 7 * 86400

# Reserve one mass send unless the quota is spent; a retry of the same clientmsgid is free
# (WeChat deduplicates it), so a timeout never costs the day's only send twice.
_RESERVE = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""


def api_for(ctx: SendContext) -> WechatApi:
    account = ctx.target.account or {}
    if ctx.redis is None:
        raise PermanentError("the wechat_mp channel needs Redis to share the access token")
    if not account.get("app_id") or not account.get("app_secret"):
        raise PermanentError("the official account has no app_id / app_secret configured")
    return WechatApi(
        ctx.settings.wechat_api_base,
        str(account["app_id"]),
        str(account["app_secret"]),
        ctx.http,
        ctx.redis,
        token_endpoint=str(account.get("token_endpoint") or "stable"),
    )


def _draft_notes(ctx: SendContext) -> str | None:
    """What building the draft had to give up (body images left as links), said once."""
    notes = ctx.state.pop("notes", [])
    return "; ".join(notes) or None


def _app_id(target: TargetView) -> str:
    return str((target.account or {}).get("app_id") or "unconfigured")


def _int_option(account: dict[str, Any], name: str, default: int) -> int:
    value = account.get(name)
    return default if value in (None, "") else int(value)  # 0 is a real setting: no mass sends


def _cover_choice(target: TargetView, notes: list[str]) -> str:
    path = (target.account or {}).get("cover_image")
    if not path:
        return "default"
    if not Path(path).is_file():
        notes.append(f"cover image {path} not found; the default cover is used")
        return "default"
    return str(path)


def _cover_bytes(choice: str) -> tuple[bytes, str]:
    if choice != "default" and Path(choice).is_file():
        return Path(choice).read_bytes(), Path(choice).name
    return default_cover(), "gongkai-cover.png"


def render_mass_send(
    item: ItemView, target: TargetView, public_url: str, *, tag_id: int | None = None
) -> Rendered:
    """A mass send (群发) of the article to all followers or one tag: notifies, spends quota."""
    notes: list[str] = []
    article, more, meta = build_article(item, target, public_url)
    notes.extend(more)
    digest = hashlib.sha1(f"{item.id}|{_app_id(target)}|{tag_id}".encode()).hexdigest()[:32]
    part = {
        "kind": "mass_send",
        "tag_id": tag_id,
        "clientmsgid": f"gongkai-{digest}",
        "send_ignore_reprint": 0,
        "cover": _cover_choice(target, notes),
        "article": article,
    }
    return Rendered(parts=[part], notes=notes, meta=meta)


def render_template_push(
    item: ItemView,
    target: TargetView,
    public_url: str,
    *,
    openids: list[str],
    template_id: str,
    fields: dict[str, str] | None = None,
) -> Rendered:
    """One template message per follower; ``fields`` maps template keys to item fields."""
    fields = fields or {"thing1": "title", "time2": "issued_at", "thing3": "issuer"}
    data: dict[str, dict[str, str]] = {}
    notes: list[str] = []
    for key, source in fields.items():
        value = getattr(item, source, None)
        text = value.isoformat() if hasattr(value, "isoformat") else str(value or "")
        short = cut(text, TEMPLATE_VALUE_MAX)
        if short != text:
            notes.append(f"template value {key} cut to {TEMPLATE_VALUE_MAX} characters")
        data[key] = {"value": short}
    url = item.page_link(public_url, "wechat_mp")
    parts = [
        {
            "kind": "template",
            "touser": openid,
            "template_id": template_id,
            "url": url,
            "client_msg_id": hashlib.sha1(f"{item.id}|{openid}".encode()).hexdigest()[:32],
            "data": data,
        }
        for openid in openids
    ]
    return Rendered(parts=parts, notes=sorted(set(notes)), meta={"recipients": len(parts)})


# 43004: the follower unsubscribed; 43101: they refused template messages.
FOLLOWER_GONE = {43004, 43101}


class WechatMpChannel(Channel):
    name: ClassVar[str] = "wechat_mp"
    title: ClassVar[str] = "WeChat official account"
    quiet_hours_apply: ClassVar[bool] = False
    targetless: ClassVar[bool] = False  # one delivery per official account (one target each)
    can_recall: ClassVar[bool] = True
    broadcast: ClassVar[bool] = True  # the county account carries a village's notice too

    def render(self, item: ItemView, target: TargetView, public_url: str) -> Rendered:
        wishes = item.options.get("wechat") or {}
        if wishes.get("mass_send"):  # a mass send carries the article itself (see render_mass_send)
            return render_mass_send(item, target, public_url, tag_id=wishes.get("tag_id"))
        article, notes, meta = build_article(item, target, public_url)
        part = {"kind": "article", "cover": _cover_choice(target, notes), "article": article}
        return Rendered(parts=[part], notes=notes, meta=meta)

    def rate_limits(self, target: TargetView, part: dict[str, Any]) -> list[RateLimit]:
        app_id = _app_id(target)
        draft = RateLimit("1000/day", f"wechat:draft:{app_id}")
        kind = part.get("kind")
        if kind == "article":
            return [draft, RateLimit("100/day", f"wechat:submit:{app_id}")]
        if kind == "mass_send":
            return [draft, RateLimit("60/minute", f"wechat:mass:{app_id}")]
        return []

    async def send(self, part: dict[str, Any], ctx: SendContext) -> SentPart:
        kind = part.get("kind")
        if kind == "article":
            return await self._publish(part, ctx)
        if kind == "mass_send":
            return await self._mass_send(part, ctx)
        if kind == "template":
            api = api_for(ctx)
            body = {k: part[k] for k in ("touser", "template_id", "url", "client_msg_id", "data")}
            try:
                msgid = await api.send_template(body)
            except PermanentError as exc:
                if getattr(exc, "errcode", None) not in FOLLOWER_GONE:
                    raise
                # One follower who left must not stop the push to everyone after them.
                return SentPart(extra={"note": f"template not sent to {body['touser']}: {exc}"})
            return SentPart(provider_message_id=f"template:{msgid}")
        raise PermanentError(f"unknown wechat_mp part kind {kind!r}")

    async def poll(self, provider_message_id: str, ctx: SendContext) -> SentPart | None:
        """The verdict on a published article or a mass send; None while WeChat is still at it."""
        kind, _, ident = provider_message_id.partition(":")
        if kind == "mass":
            status = await api_for(ctx).get_mass(ident)
            if status == "SENDING":
                return None
            if status != "SEND_SUCCESS":
                raise PermanentError(f"WeChat did not carry out the mass send: {status}")
            return SentPart(provider_message_id=None)
        if kind != "publish":
            return SentPart(provider_message_id=provider_message_id)
        outcome = await poll_publish(api_for(ctx), ident)
        if outcome.status == "pending":
            return None
        if outcome.status == "failed":
            raise PermanentError(f"WeChat did not publish the article: {outcome.reason}")
        return SentPart(
            provider_message_id=f"article:{outcome.article_id}",
            extra={"article_url": outcome.article_url},
        )

    async def _draft(self, api: WechatApi, part: dict[str, Any], ctx: SendContext) -> str:
        """draft/add once per part: a retry after a failed submit reuses the same draft."""
        assert ctx.redis is not None
        key = f"gongkai:wechat:draft:{api.app_id}:{ctx.delivery_id}:{ctx.part_index}"
        cached = await ctx.redis.get(key)
        if cached:
            return cached.decode() if isinstance(cached, bytes) else str(cached)
        cover, filename = _cover_bytes(str(part.get("cover") or "default"))
        thumb = await api.upload_image_material(cover, filename)
        article = dict(part["article"])
        article["content"], notes = await with_body_images(
            api, ctx.http, article["content"], ctx.settings.image_host_allowed
        )
        ctx.state.setdefault("notes", []).extend(notes)
        try:
            media_id = await api.add_draft([{**article, "thumb_media_id": thumb}])
        except WechatPermanentError as exc:
            if exc.errcode != 40007:
                raise
            # The remembered cover was deleted from the account's library: upload it again.
            thumb = await api.upload_image_material(cover, filename, refresh=True)
            media_id = await api.add_draft([{**article, "thumb_media_id": thumb}])
        await ctx.redis.set(key, media_id, ex=DRAFT_TTL)
        return media_id

    async def _forget_draft(self, api: WechatApi, ctx: SendContext) -> None:
        assert ctx.redis is not None
        await ctx.redis.delete(
            f"gongkai:wechat:draft:{api.app_id}:{ctx.delivery_id}:{ctx.part_index}"
        )

    async def _publish(self, part: dict[str, Any], ctx: SendContext) -> SentPart:
        api = api_for(ctx)
        media_id = await self._draft(api, part, ctx)
        try:
            publish_id = await api.submit_publish(media_id)
        except WechatPermanentError as exc:
            if exc.errcode == 40007:
                await self._forget_draft(api, ctx)
                raise PermanentError(
                    "the draft of an earlier attempt is gone: it was published by an attempt "
                    "whose answer was lost, or deleted in the console; check the account's "
                    "publish history before retrying"
                ) from exc
            raise
        await self._forget_draft(api, ctx)
        return SentPart(
            provider_message_id=f"publish:{publish_id}",
            pending=True,
            extra={"media_id": media_id, "publish_id": publish_id, "note": _draft_notes(ctx)},
        )

    async def _mass_send(self, part: dict[str, Any], ctx: SendContext) -> SentPart:
        api = api_for(ctx)
        clientmsgid = str(part["clientmsgid"])
        quota_key, limit, ttl, period = self._quota(ctx)
        assert ctx.redis is not None
        if not await ctx.redis.eval(_RESERVE, 1, quota_key, clientmsgid, str(limit), str(ttl)):
            raise PermanentError(f"mass send quota used up for {period}")
        try:
            media_id = await self._draft(api, part, ctx)
            tag_id = part.get("tag_id")
            body: dict[str, Any] = {
                "filter": {"is_to_all": True}
                if tag_id is None
                else {"is_to_all": False, "tag_id": tag_id},
                "mpnews": {"media_id": media_id},
                "msgtype": "mpnews",
                "send_ignore_reprint": int(part.get("send_ignore_reprint") or 0),
                "clientmsgid": clientmsgid,
            }
            answer = await api.mass_send(body)
        except PermanentError as exc:
            if getattr(exc, "errcode", None) != 45028:  # nothing went out: give the quota back
                await ctx.redis.srem(quota_key, clientmsgid)
            raise
        await self._forget_draft(api, ctx)
        duplicate = int(answer.get("errcode") or 0) == MASS_DUPLICATE
        if duplicate:  # sent by an earlier attempt: the draft made for this one is an orphan
            try:
                await api.delete_draft(media_id)
            except (PermanentError, TransientError):
                pass
        # Accepted is not sent: WeChat reviews the mass send and says how it went in the
        # MASSSENDJOBFINISH push (or message/mass/get when polled).
        return SentPart(
            provider_message_id=f"mass:{answer['msg_id']}",
            pending=True,
            extra={
                "msg_data_id": answer.get("msg_data_id"),
                "duplicate": duplicate,
                "note": _draft_notes(ctx),
            },
        )

    def _quota(self, ctx: SendContext) -> tuple[str, int, int, str]:
        account = ctx.target.account or {}
        now = datetime.now(ctx.settings.tz)
        if account.get("account_type") == "service":
            period = now.strftime("%Y-%m")
            limit = _int_option(account, "mass_send_monthly_quota", 4)
            return (
                f"gongkai:wechat:quota:{account['app_id']}:{period}",
                limit,
                32 * 86400,
                "this month",
            )
        period = now.strftime("%Y-%m-%d")
        limit = _int_option(account, "mass_send_daily_quota", 1)
        return f"gongkai:wechat:quota:{account['app_id']}:{period}", limit, 2 * 86400, "today"

    async def recall(self, provider_message_ids: list[str], ctx: SendContext) -> str:
        api = api_for(ctx)
        notes: list[str] = []
        deleted: set[str] = set()
        for pmid in provider_message_ids:
            kind, _, ident = pmid.partition(":")
            if kind == "publish":
                outcome = await poll_publish(api, ident)
                if outcome.status == "pending":
                    raise TransientError("the article is still in review; recall it later", 60)
                if outcome.status != "delivered" or not outcome.article_id:
                    notes.append(f"publish {ident} never went out ({outcome.reason})")
                    continue
                kind, ident = "article", outcome.article_id
            if kind == "template":
                notes.append(f"template message {ident} cannot be recalled")
                continue
            if kind not in ("article", "draft", "mass") or f"{kind}:{ident}" in deleted:
                if f"{kind}:{ident}" not in deleted:
                    notes.append(f"unknown message id {pmid}")
                continue
            deleted.add(f"{kind}:{ident}")
            notes.append(await self._delete(api, kind, ident))
        return "; ".join(notes) or "nothing to recall"

    async def _delete(self, api: WechatApi, kind: str, ident: str) -> str:
        try:
            if kind == "article":
                await api.delete_article(ident)
            elif kind == "draft":
                await api.delete_draft(ident)
            else:
                await api.delete_mass(ident)
        except WechatPermanentError as exc:
            if exc.errcode != 40007:
                raise
            return f"{kind} {ident} was already gone"
        return f"deleted {kind} {ident}"


CHANNEL = WechatMpChannel()
