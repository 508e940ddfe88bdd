"""The conversation with a resident, the same on WeChat and Telegram: plain functions over a
database session and the FAQ index (no aiohttp, no aiogram), so both bots and the tests share it.

A message is a command (订阅 / 退订 / 我的订阅 / 绑定 / 最新 / a language / 帮助), a number
answering the numbered list we just offered, or a question for the FAQ. Every question is
stored, answered or not: the unanswered ones tell the county what residents need.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.bots import apply_talk
from gongkai.bots.pending_choice import pending_of, set_pending
from gongkai.bots.phrases import available_languages, say
from gongkai.bots.subscriptions import (
    ALL,
    CHOICES,
    domains_of,
    followers_for,
    latest_items,
    match_domains,
    subscribe,
    unsubscribe,
)
from gongkai.bots.villages import display_name, find_regions
from gongkai.domain.links import page_url
from gongkai.faq.engine import FaqIndex, normalize_question
from gongkai.faq.text import parse_choice
from gongkai.storage.models import Follower, Question, Region
from gongkai.storage.types import utcnow

__all__ = [
    "MAX_CHARS",
    "Context",
    "Reply",
    "command",
    "follower_for",
    "followers_for",
    "respond",
    "welcome",
]

MAX_CHARS = 500  # longer is not a question but a letter: refused politely, not stored
SEEN_EVERY = timedelta(minutes=10)  # last_seen_at is coarse: not a write per message
_COMMANDS = (  # longest prefix first
    ("取消订阅", "unsubscribe"),
    ("退订", "unsubscribe"),
    ("订阅", "subscribe"),
    ("绑定", "bind"),
)
_WORDS = {
    "我的订阅": "subscriptions",
    "订阅列表": "subscriptions",
    "查看订阅": "subscriptions",
    "最新": "latest",
    "最新信息": "latest",
    "最新通知": "latest",
    "最新公开": "latest",
    "帮助": "help",
    "help": "help",
    "菜单": "help",
    "功能": "help",
    "?": "help",
    "？": "help",
    "转人工": "human",
    "人工": "human",
    "人工服务": "human",
}
LANGUAGE_WORDS = {
    "蒙古文": "mn",
    "蒙文": "mn",
    "蒙语": "mn",
    "蒙古语": "mn",
    "ᠮᠣᠩᠭᠣᠯ": "mn",
    "ᠮᠣᠩᠭᠣᠯᠪᠢᠴᠢᠭ": "mn",
    "mongol": "mn",
    "汉文": "zh",
    "中文": "zh",
    "汉语": "zh",
    "汉字": "zh",
    "ᠬᠢᠲᠠᠳ": "zh",
}
_MONGOLIAN_MARKS = dict.fromkeys(map(ord, "\u180b\u180c\u180d\u180e\u180f\u200c\u200d\u202f "))


@dataclass
class Context:
    """What a conversation needs besides the follower: the session, the FAQ, the account."""

    session: AsyncSession
    index: FaqIndex
    platform: str  # wechat | telegram
    public_url: str
    hotline: str = "12345"
    account_region: str | None = None
    languages: tuple[str, ...] = ("zh",)
    title: str = ""
    # Where plain question rows go; None: into this session. The bots pass a batching writer,
    # so a question costs no transaction of its own.
    record: Callable[[dict[str, Any]], None] | None = None
    settings: Any = None  # config.Settings and storage.crypto.Sealer, for applying (apply_talk)
    sealer: Any = None
    # What ends a reply's writes; None: commit the session. The bots pass one that commits only
    # what the next message must find and leaves the rest to their background writer.
    settle: Callable[[], Awaitable[None]] | None = None


@dataclass
class Reply:
    text: str
    kind: str = "command"  # answer | choose | fallback | command | refusal
    faq_id: str | None = None


async def follower_for(
    session: AsyncSession, platform: str, account: str, external_id: str
) -> Follower:
    """The follower, created on first contact (a race with a twin request is harmless)."""
    stmt = select(Follower).where(
        Follower.platform == platform,
        Follower.account == account,
        Follower.external_id == external_id,
    )
    row = (await session.exec(stmt)).first()
    if row is not None:
        return row
    row = Follower(platform=platform, account=account, external_id=external_id)
    session.add(row)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        row = (await session.exec(stmt)).one()
    return row


def parse_command(text: str) -> tuple[str, str] | None:
    t = text.strip()
    key = t.translate(_MONGOLIAN_MARKS)
    if key.lower() in LANGUAGE_WORDS or key in LANGUAGE_WORDS:
        return "language", LANGUAGE_WORDS.get(key, LANGUAGE_WORDS.get(key.lower(), "zh"))
    if t.lower() in _WORDS:
        return _WORDS[t.lower()], ""
    for prefix, name in _COMMANDS:
        if t.startswith(prefix):
            return name, t[len(prefix) :].strip(" ：:，,")
    return None


def _numbered(head: str, labels: list[str]) -> str:
    return "\n".join([head, *(f"{n}. {label}" for n, label in enumerate(labels, 1))])


async def respond(ctx: Context, follower: Follower, text: str) -> Reply:
    """Answer one message; commits the follower, any subscription and the question row."""
    text = text.strip()
    _seen(follower)
    lang = follower.language
    if len(text) > MAX_CHARS:
        reply = Reply(say(lang, "too_long", limit=MAX_CHARS), "refusal")
    elif not (normalized := normalize_question(text)):
        reply = Reply(say(lang, "help"))
    else:
        talk = await apply_talk.turn(ctx, follower, text)  # 申请公开, a guided application
        reply = Reply(talk) if talk is not None else await _resolve(ctx, follower, text)
        if reply is None:
            parsed = parse_command(text)
            if parsed is not None:
                reply = await command(ctx, follower, *parsed, commit=False)
            else:
                reply = await _ask(ctx, follower, text, normalized)
    await _commit(ctx)
    return reply


async def _commit(ctx: Context) -> None:
    """Commit what there is; a plain question writes nothing here (its row is batched), and
    skipping the empty commit is a tenth of the cost of an answer."""
    if ctx.settle is not None:
        await ctx.settle()
        return
    session = ctx.session
    if session.in_transaction() or session.new or session.dirty or session.deleted:
        await session.commit()


def _seen(follower: Follower) -> None:
    now = utcnow()
    if follower.last_seen_at is None or now - follower.last_seen_at > SEEN_EVERY:
        follower.last_seen_at = now


async def _resolve(ctx: Context, follower: Follower, text: str) -> Reply | None:
    """A number answering the list we offered; anything else drops the offer."""
    pending = pending_of(follower)
    if pending is None:
        return None
    set_pending(follower, None)
    n = parse_choice(text)
    options = pending.get("options") or []
    if n is None or not 1 <= n <= len(options):
        return None
    kind = pending.get("kind")
    if kind == "choose":
        got = ctx.index.pick([tuple(o) for o in options], text, follower.language)
        if got is None:
            return None
        qid = pending.get("question_id")
        question = await ctx.session.get(Question, qid) if qid else None
        if question is not None:  # the resident found their answer among the offers
            question.answered, question.faq_id, question.score = True, got.id, got.score
            ctx.session.add(question)
        return Reply(got.answer, "answer", got.id)
    if kind == "bind":
        return await _bind_to(ctx, follower, str(options[n - 1][0]))
    if kind == "domain":
        return await _subscription(
            ctx, follower, pending.get("action", "subscribe"), str(options[n - 1])
        )
    return None


async def command(
    ctx: Context, follower: Follower, name: str, arg: str = "", *, commit: bool = True
) -> Reply:
    """One command by name (Telegram's /subscribe etc. land here too)."""
    lang = follower.language
    if name in ("subscribe", "unsubscribe"):
        reply = await _subscribe_words(ctx, follower, name, arg)
    elif name == "subscriptions":
        domains = await domains_of(ctx.session, follower)
        shown = [say(lang, "all_domains") if d == ALL else d for d in domains]
        reply = Reply(
            say(lang, "subscriptions", domains="、".join(shown))
            if shown
            else say(lang, "no_subscriptions")
        )
    elif name == "bind":
        reply = await _bind_words(ctx, follower, arg)
    elif name == "language":
        code = arg if arg in available_languages() else follower.language
        follower.language = code
        reply = Reply(say(code, "language_set"))
    elif name == "latest":
        reply = await latest(ctx, follower)
    elif name == "human":
        reply = Reply(say(lang, "human", hotline=ctx.hotline))
    elif name == "start":
        reply = await welcome(ctx, follower)
    else:
        reply = Reply(say(lang, "help"))
    if commit:
        _seen(follower)
        await _commit(ctx)
    return reply


async def _as_question(ctx: Context, follower: Follower, text: str) -> Reply | None:
    """A command word that found nothing may still be a question ("绑定一卡通怎么弄")."""
    got = ctx.index.ask(
        text, follower.region_code or ctx.account_region, follower.language, hotline=ctx.hotline
    )
    return await _ask(ctx, follower, text) if got.kind == "answer" else None


async def _subscribe_words(ctx: Context, follower: Follower, action: str, arg: str) -> Reply:
    lang = follower.language
    listing = "、".join(CHOICES)
    if not arg:
        return Reply(say(lang, "domain_usage", domains=listing))
    found = match_domains(arg)
    if not found:
        prefix = "订阅" if action == "subscribe" else "退订"
        as_question = await _as_question(ctx, follower, prefix + arg)
        return as_question or Reply(say(lang, "domain_unknown", domains=listing))
    if len(found) > 1:
        set_pending(follower, {"kind": "domain", "action": action, "options": found})
        return Reply(_numbered(say(lang, "domain_choose"), found))
    return await _subscription(ctx, follower, action, found[0])


async def _subscription(ctx: Context, follower: Follower, action: str, domain: str) -> Reply:
    lang = follower.language
    shown = say(lang, "all_domains") if domain == ALL else domain
    if action == "subscribe":
        new = await subscribe(ctx.session, follower, domain)
        return Reply(say(lang, "subscribed" if new else "already_subscribed", domain=shown))
    gone = await unsubscribe(ctx.session, follower, domain)
    return Reply(say(lang, "unsubscribed" if gone else "not_subscribed", domain=shown))


async def _bind_words(ctx: Context, follower: Follower, arg: str) -> Reply:
    lang = follower.language
    if not arg:
        return Reply(say(lang, "bind_usage"))
    regions = await find_regions(ctx.session, arg, within=ctx.account_region)
    if not regions:
        return await _as_question(ctx, follower, "绑定" + arg) or Reply(say(lang, "bind_unknown"))
    if len(regions) == 1:
        return await _bind_to(ctx, follower, regions[0].code)
    options = [[r.code, await _label(ctx.session, r, lang)] for r in regions]
    set_pending(follower, {"kind": "bind", "options": options})
    return Reply(_numbered(say(lang, "bind_choose"), [label for _, label in options]))


async def _label(session: AsyncSession, region: Region, lang: str) -> str:
    """ "巴图塔嘎查（乌兰木伦镇）": the parent tells two villages of one name apart."""
    name = (region.names or {}).get(lang) or region.name
    if region.parent_code:
        return f"{name}（{await display_name(session, region.parent_code, lang)}）"
    return name


async def _bind_to(ctx: Context, follower: Follower, code: str) -> Reply:
    follower.region_code = code
    name = await display_name(ctx.session, code, follower.language)
    return Reply(say(follower.language, "bound", name=name))


async def _ask(ctx: Context, follower: Follower, text: str, normalized: str = "") -> Reply:
    region = follower.region_code or ctx.account_region
    got = ctx.index.ask(text, region, follower.language, hotline=ctx.hotline)
    if follower.id is None and (got.kind == "choose" or ctx.record is None):
        await ctx.session.flush()  # a newcomer whose question row is written now: their row first
    row = {
        "asked_at": utcnow(),
        "platform": ctx.platform,
        "follower_id": follower.id,
        "region_code": region,
        "language": follower.language,
        "text": text,
        "normalized": normalized or normalize_question(text),
        "answered": got.kind == "answer",
        "faq_id": got.id,
        "score": got.score,
    }
    if got.kind != "choose" and ctx.record is not None:
        ctx.record(row)
        return Reply(got.answer, got.kind, got.id)
    question = Question(**row)
    ctx.session.add(question)
    if got.kind == "choose":  # the offer remembers the row, to mark it answered on a pick
        await ctx.session.flush()
        set_pending(
            follower,
            {
                "kind": "choose",
                "question_id": question.id,
                "options": [list(c) for c in got.candidates],
            },
        )
    return Reply(got.answer, got.kind, got.id)


async def answer_entry(ctx: Context, follower: Follower, faq_id: str) -> Reply:
    """A menu button bound to one FAQ entry ("faq:<id>")."""
    entry = ctx.index.get(faq_id)
    if entry is None:
        return Reply(say(follower.language, "entry_missing"), "fallback")
    lang = follower.language
    text = entry.answers.get(lang, entry.answer) if lang != "zh" else entry.answer
    return Reply(text, "answer", entry.id)


async def latest(ctx: Context, follower: Follower) -> Reply:
    lang = follower.language
    items = await latest_items(ctx.session, follower.region_code or ctx.account_region)
    if not items:
        return Reply(say(lang, "latest_none"))
    lines = [say(lang, "latest_head")]
    for n, item in enumerate(items, 1):
        tr = (item.translations or {}).get(lang) if lang != "zh" else None
        title = (tr or {}).get("title") or item.title
        url = page_url(ctx.public_url, item.id, lang if tr and tr.get("title") else None)
        lines.append(f"{n}. {title}\n{url}")
    if not follower.region_code:
        lines.append(say(lang, "latest_bind_hint"))
    return Reply("\n".join(lines))


async def welcome(ctx: Context, follower: Follower) -> Reply:
    """The greeting for a new follower, in each of the account's languages."""
    languages = [follower.language] if follower.language != "zh" else list(ctx.languages)
    texts = [say(lang, "welcome", title=ctx.title) for lang in dict.fromkeys(languages)]
    return Reply("\n\n".join(texts))
