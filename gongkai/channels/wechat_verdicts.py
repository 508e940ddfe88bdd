"""WeChat's verdicts on what we submitted: an article's publishing and a mass send.

Both are asynchronous at WeChat: the API only says "accepted", review follows, and the verdict
arrives as a push to the callback (PUBLISHJOBFINISH, MASSSENDJOBFINISH) or is polled. Parsing
lives here, once, for the callback and the channel's poll alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gongkai.channels.wechat_api import WechatApi

PUBLISH_FAILURES = {
    2: "originality check failed (原创校验失败)",
    3: "publishing failed (常规失败)",
    4: "rejected in platform review (平台审核不通过)",
    5: "deleted after publishing (已删除)",
    6: "banned after publishing (已封禁)",
}

# Why WeChat's review stopped a mass send, as its documentation lists the err(…) statuses.
MASS_REFUSALS = {
    "10001": "涉嫌广告",
    "20001": "涉嫌政治",
    "20002": "涉嫌色情",
    "20004": "涉嫌社会",
    "20006": "涉嫌违法犯罪",
    "20008": "涉嫌欺诈",
    "20013": "涉嫌版权",
    "21000": "涉嫌其他",
    "22000": "涉嫌互推",
}


@dataclass(frozen=True)
class PublishOutcome:
    status: str  # "delivered" | "pending" | "failed"
    article_id: str | None = None
    article_url: str | None = None
    reason: str | None = None
    publish_status: int | None = None


def _outcome(fields: dict[str, Any]) -> PublishOutcome:
    status = int(fields.get("publish_status", 1))
    if status == 1:
        return PublishOutcome("pending", publish_status=1)
    if status == 0:
        detail = fields.get("article_detail") or {}
        items = detail.get("item") if isinstance(detail, dict) else None
        if isinstance(items, dict):  # one <item> parsed from XML is a dict, several a list
            items = [items]
        url = next((i.get("article_url") for i in items or [] if i.get("article_url")), None)
        return PublishOutcome("delivered", str(fields.get("article_id") or ""), url, None, 0)
    reason = PUBLISH_FAILURES.get(status, f"publish_status {status}")
    fail_idx = fields.get("fail_idx")
    if fail_idx not in (None, "", []):
        reason += f"; failed articles: {fail_idx}"
    return PublishOutcome("failed", reason=reason, publish_status=status)


def outcome_from_event(xml_fields: dict[str, Any]) -> PublishOutcome:
    """The verdict from a PUBLISHJOBFINISH push, parsed to a dict (values may be strings)."""
    return _outcome(xml_fields.get("PublishEventInfo") or xml_fields)


async def poll_publish(api: WechatApi, publish_id: str) -> PublishOutcome:
    return _outcome(await api.get_publish(str(publish_id)))


@dataclass(frozen=True)
class MassOutcome:
    msg_id: str
    ok: bool
    reason: str  # the Status, explained when WeChat's review refused it
    note: str | None  # the reach, when sent


def mass_outcome_from_event(fields: dict[str, Any]) -> MassOutcome | None:
    """The verdict from a MASSSENDJOBFINISH push; None without a message id."""
    msg_id = str(fields.get("MsgID") or fields.get("MsgId") or "").strip()
    if not msg_id:
        return None
    status = str(fields.get("Status") or "").strip()

    def count(name: str) -> int:
        try:
            return int(str(fields.get(name) or 0))
        except ValueError:
            return 0

    if status == "send success":
        note = (
            f"群发送达 {count('SentCount')} 人（过滤后 {count('FilterCount')} 人，"
            f"粉丝 {count('TotalCount')} 人，失败 {count('ErrorCount')} 人）"
        )
        return MassOutcome(msg_id, True, status, note)
    code = status.removeprefix("err(").removesuffix(")") if status.startswith("err(") else ""
    reason = f"WeChat did not send the mass message: {status}"
    if code in MASS_REFUSALS:
        reason += f" ({MASS_REFUSALS[code]})"
    return MassOutcome(msg_id, False, reason, None)
