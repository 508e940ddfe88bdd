"""Applying for disclosure in the chat (WeChat or Telegram): ``申请公开`` starts a short guided
conversation — what information, for what purpose (optional), how to receive the answer, a name
and a mobile number — then a summary to confirm. ``我的申请`` lists the chat's applications with
their status; the same chat needs no lookup code.

The half-filled application lives in the follower's ``pending`` state like the bots' other
offers, so it survives between messages and across processes; ``取消`` drops it. What is
submitted goes through the same form model and the same ``application_flow.submit`` as the web
form, the channel being the platform: an online application, received once the office confirms.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlmodel import col, select

from gongkai.bots.pending_choice import pending_of, set_pending
from gongkai.domain.application_form import ApplicationIn
from gongkai.domain.applications import (
    OUTCOME_LABELS,
    STATUS_LABELS,
    Channel,
    Outcome,
    ReplyChannel,
    Status,
)
from gongkai.domain.pii import normalize_mobile
from gongkai.domain.workdays import WorkCalendar
from gongkai.storage import application_flow as flow
from gongkai.storage.applications import Application
from gongkai.storage.models import Follower

START_WORDS = ("申请公开", "依申请公开", "申请信息公开", "政府信息公开申请")
LIST_WORDS = ("我的申请", "申请进度", "查询申请")
CANCEL_WORDS = ("取消", "退出", "算了")
SKIP_WORDS = ("跳过", "无", "没有", "不填")
KIND = "apply"
Context = Any  # bots.conversation.Context (which calls this module), with settings and sealer

ASK = {
    "what": "请发送您需要的政府信息：文件名称、文号，或者便于查找的内容描述。"
    "（回复“取消”可随时退出）",
    "purpose": "申请用途是什么？（选填，回复“跳过”）",
    "reply": "您希望怎样收到答复？\n1. 在本对话中\n2. 短信通知\n3. 网上查询",
    "name": "请告诉我们申请人的姓名（或单位名称）。",
    "phone": "请留一个手机号码，以便联系您。",
}
REPLIES = {"1": None, "2": ReplyChannel.sms, "3": ReplyChannel.online}


@lru_cache(maxsize=4)
def _calendar(path: str | None) -> WorkCalendar:
    return WorkCalendar.from_file(Path(path) if path else None)


def _is(text: str, words: tuple[str, ...]) -> bool:
    return text.strip(" 。.!！") in words


async def turn(ctx: Context, follower: Follower, text: str) -> str | None:
    """This message's reply when it belongs to applying; None to let the bot go on as usual."""
    pending = pending_of(follower)
    if pending is not None and pending.get("kind") == KIND:
        if _is(text, CANCEL_WORDS):
            set_pending(follower, None)
            return "已取消申请。需要时回复“申请公开”重新开始。"
        return await _next(ctx, follower, dict(pending), text.strip())
    if _is(text, START_WORDS):
        if ctx.settings is None or ctx.sealer is None:
            return None
        set_pending(follower, {"kind": KIND, "stage": "what", "form": {}})
        return ASK["what"]
    if _is(text, LIST_WORDS) and follower.id is not None:
        return await _mine(ctx, follower)
    number = text.strip().removeprefix("查看答复").strip().upper()
    if text.strip().startswith("查看答复") and follower.id is not None:
        return await _letter(ctx, follower, number)
    return None


async def _next(ctx: Context, follower: Follower, pending: dict[str, Any], text: str) -> str:
    stage = pending.get("stage")
    form: dict[str, Any] = dict(pending.get("form") or {})
    if stage == "what":
        form["description"] = text
        stage = "purpose"
    elif stage == "purpose":
        form["purpose"] = "" if _is(text, SKIP_WORDS) else text
        stage = "reply"
    elif stage == "reply":
        choice = text.strip()[:1]
        if choice not in REPLIES:
            return _ask(follower, pending, form, "reply", "请回复 1、2 或 3。\n")
        chosen = REPLIES[choice]
        form["reply_channel"] = chosen.value if chosen else ReplyChannel(ctx.platform).value
        stage = "name"
    elif stage == "name":
        form["name"] = text
        stage = "phone"
    elif stage == "phone":
        try:
            form["phone"] = normalize_mobile(text)
        except ValueError:
            return _ask(follower, pending, form, "phone", "这不像一个手机号码。")
        stage = "confirm"
    elif stage == "confirm":
        if text.startswith("1"):
            return await _submit(ctx, follower, form)
        set_pending(follower, None)
        return "已取消申请。"
    if stage == "confirm":
        try:
            ApplicationIn.model_validate(form)
        except ValidationError as exc:
            set_pending(follower, None)
            problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
            return f"申请内容有误：{problem}。请回复“申请公开”重新开始。"
        set_pending(follower, {"kind": KIND, "stage": "confirm", "form": form})
        return _summary(form)
    return _ask(follower, pending, form, str(stage), "")


def _ask(
    follower: Follower, pending: dict[str, Any], form: dict[str, Any], stage: str, lead: str
) -> str:
    set_pending(follower, {**pending, "stage": stage, "form": form})
    return lead + ASK[stage]


def _summary(form: dict[str, Any]) -> str:
    way = {"sms": "短信通知", "online": "网上查询", "wechat": "本对话", "telegram": "本对话"}
    return "\n".join(
        [
            "请核对您的申请：",
            f"所需信息：{form['description']}",
            f"用途：{form.get('purpose') or '（未填）'}",
            f"答复方式：{way.get(form['reply_channel'], form['reply_channel'])}",
            f"申请人：{form['name']}，手机 {form['phone'][:3]}****{form['phone'][-4:]}",
            "回复 1 提交，回复 2 取消。",
        ]
    )


async def _submit(ctx: Context, follower: Follower, form: dict[str, Any]) -> str:
    set_pending(follower, None)
    settings, sealer = ctx.settings, ctx.sealer
    assert settings is not None and sealer is not None
    application = ApplicationIn.model_validate({**form, "language": "zh"})
    app, code = await flow.submit(
        ctx.session,
        sealer,
        _calendar(str(settings.holidays_file) if settings.holidays_file else None),
        application,
        channel=Channel(ctx.platform),
        when=flow.now_in(settings.tz),
        follower_id=follower.id,
    )
    link = f"{ctx.public_url.rstrip('/')}/apply/{app.number}"
    return (
        f"申请已提交。\n申请编号：{app.number}\n查询码：{code}（请保存，只显示这一次）\n"
        f"本机关确认收到后开始计算20个工作日的答复期限。可回复“我的申请”查看进度，"
        f"或凭查询码访问 {link}"
    )


async def _mine(ctx: Context, follower: Follower) -> str:
    apps = (
        await ctx.session.exec(
            select(Application)
            .where(Application.follower_id == follower.id)
            .order_by(col(Application.id).desc())
            .limit(10)
        )
    ).all()
    if not apps:
        return "您在这里还没有提交过申请。回复“申请公开”开始申请。"
    lines = ["您的申请："]
    for a in apps:
        line = f"{a.number} {STATUS_LABELS[Status(a.status)]}"
        if a.due_on and a.status in (Status.registered, Status.handling):
            line += f"，答复期限 {a.due_on.isoformat()}"
        if a.outcome:
            line += f"，{OUTCOME_LABELS[Outcome(a.outcome)]}（回复“查看答复 {a.number}”）"
        lines.append(line)
    return "\n".join(lines)


async def _letter(ctx: Context, follower: Follower, number: str) -> str:
    """The reply letter, in the chat the application came from (no code needed there)."""
    app = (
        await ctx.session.exec(
            select(Application).where(
                Application.number == number, Application.follower_id == follower.id
            )
        )
    ).first()
    if app is None or not app.reply_letter:
        return "没有找到这个申请的答复。回复“我的申请”查看您的申请。"
    return app.reply_letter
