"""What every simulator received, as one list of plain records, newest first.

Each record names the provider and the address it arrived at (a robot key, a phone number, a
chat, an official account) and keeps what its reader sees: the markdown a village group shows,
the SMS text with its signature and segment count, the article, the Telegram message. The page
and the JSON of ``/sandbox/`` are drawn from this; which target of the directory an address
belongs to is the web side's business.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from gongkai.sandbox.site import Sandbox

PUBLISH_STATUS = {
    0: "published",
    1: "publishing",
    2: "original_check_failed",
    3: "failed",
    4: "rejected",
    5: "deleted",
}


@dataclass
class Received:
    id: str  # unique within the sandbox: provider and sequence
    provider: str  # wecom, wechat, telegram, aliyun, tencent
    address: str  # robot key, chat id, phone number, app id
    kind: str  # markdown, text, file, news, image, voice, article, sms, message
    at: float  # wall clock, seconds
    text: str  # what the reader sees (markdown for a robot, the SMS as it lands, …)
    meta: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def sms_segments(text: str) -> tuple[int, int]:
    """Characters (UTF-16 units, as carriers count) and billed segments: 70 in one, 67 each
    in a long one."""
    chars = len(text.encode("utf-16-le")) // 2
    return chars, 1 if chars <= 70 else math.ceil(chars / 67)


def received(sb: Sandbox) -> list[Received]:
    out: list[Received] = []
    for n, m in enumerate(sb.wecom.messages):
        meta: dict[str, Any] = {}
        if m.msgtype in ("file", "voice"):
            upload = sb.wecom.uploads.get(m.content)
            if upload is not None:
                meta = {
                    "media_id": m.content,
                    "filename": upload.filename,
                    "bytes": len(upload.data),
                }
        out.append(
            Received(
                f"wecom-{n}",
                "wecom",
                m.key,
                m.msgtype,
                m.at,
                m.content if m.msgtype in ("text", "markdown") else "",
                meta,
            )
        )
    for n, t in enumerate(sb.telegram.messages):
        out.append(
            Received(
                f"telegram-{n}",
                "telegram",
                str(t.chat_id),
                "message",
                t.at,
                t.text,
                {
                    "html": t.raw,
                    "parse_mode": t.parse_mode,
                    "deleted": t.deleted,
                    "message_id": t.message_id,
                },
            )
        )
    for n, s in enumerate(sb.aliyun.messages):
        chars, segments = sms_segments(s.text)
        out.append(
            Received(
                f"aliyun-{n}",
                "aliyun",
                s.phone,
                "sms",
                s.at,
                s.text,
                {
                    "sign": s.sign_name,
                    "template": s.template_code,
                    "chars": chars,
                    "segments": segments,
                    "out_id": s.out_id,
                },
            )
        )
    for n, s in enumerate(sb.tencent.messages):
        chars, segments = sms_segments(s.text)
        out.append(
            Received(
                f"tencent-{n}",
                "tencent",
                s.phone[-11:],
                "sms",
                s.at,
                s.text,
                {
                    "template": s.template_id,
                    "chars": chars,
                    "segments": segments,
                    "sign": s.text[1 : s.text.find("】")] if s.text.startswith("【") else "",
                },
            )
        )
    for job in sb.wechat.jobs.values():
        for i, article in enumerate(job.articles):
            out.append(
                Received(
                    f"wechat-{job.publish_id}-{i}",
                    "wechat",
                    job.app_id,
                    "article",
                    job.at,
                    str(article.get("title") or ""),
                    {
                        "status": PUBLISH_STATUS.get(job.status, str(job.status)),
                        "digest": article.get("digest") or "",
                        "author": article.get("author") or "",
                        "content": article.get("content") or "",
                        "source_url": article.get("content_source_url") or "",
                        "article_url": job.article_url or "",
                    },
                )
            )
    for n, sent in enumerate(sb.wechat.templates_sent):  # 精准推送: one follower each
        data = sent.get("data") or {}
        shown = "\n".join(f"{k}: {(v or {}).get('value', '')}" for k, v in data.items())
        out.append(
            Received(
                f"wechat-template-{n}",
                "wechat",
                str(sent.get("app_id") or ""),
                "template",
                float(sent.get("at") or time.time()),
                shown,
                {"touser": sent.get("touser"), "url": sent.get("url") or ""},
            )
        )
    out.sort(key=lambda r: r.at, reverse=True)
    return out
