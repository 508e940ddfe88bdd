"""The fake WeChat's memory and its test hooks (the routes live in ``wechat_api.py``).

Time is the fake's own clock (``advance``), so token expiry needs no waiting; ``fail_next``
injects an errcode, ``finish_publish`` settles a publish job and ``publish_event_xml`` gives
the PUBLISHJOBFINISH push WeChat would send to the callback URL.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Rules in the documented get_current_autoreply_info shape; the FAQ import reads them.
DEFAULT_AUTOREPLY: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent / "data" / "wechat_autoreply.json").read_text("utf-8")
)


@dataclass
class Token:
    value: str
    app_id: str
    kind: str  # "token" or "stable": WeChat keeps the two apart
    expires_at: float
    revoked: bool = False


@dataclass
class PublishJob:
    publish_id: str
    app_id: str
    media_id: str
    articles: list[dict[str, Any]]
    final_status: int
    polls_left: int
    status: int = 1  # publishing
    article_id: str | None = None
    article_url: str | None = None
    at: float = field(default_factory=time.time)  # when it was submitted (wall clock)


@dataclass
class FakeWechatState:
    accounts: dict[str, str]
    token_ttl: int = 7200
    daily_token_limit: int = 2000
    per_minute_cap: int | None = None
    mass_quota: int = 1  # successful mass sends a day (verified subscription account)
    publish_outcome: int = 0  # publish_status a submitted job ends in
    publish_polls: int = 1  # freepublish/get answers "publishing" this many times first
    mass_outcome: str = "send success"  # the Status a mass send ends in ("err(10001)", …)
    mass_polls: int = 1  # message/mass/get answers "SENDING" this many times first
    mass_reach: int = 1200  # followers a mass send is filtered down to (FilterCount)
    daily_caps: dict[str, int] = field(
        default_factory=lambda: {"cgi-bin/draft/add": 1000, "cgi-bin/freepublish/submit": 100}
    )
    template_ids: set[str] | None = None  # None: any template id is accepted
    unsubscribed: set[str] = field(default_factory=set)
    closed_windows: set[str] = field(default_factory=set)
    autoreply: dict[str, Any] = field(
        default_factory=lambda: json.loads(json.dumps(DEFAULT_AUTOREPLY))
    )
    offset: float = 0.0
    token_calls: int = 0
    tokens: dict[str, Token] = field(default_factory=dict)
    current: dict[tuple[str, str], str] = field(default_factory=dict)
    materials: dict[str, dict[str, Any]] = field(default_factory=dict)
    body_images: list[str] = field(default_factory=list)
    drafts: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, PublishJob] = field(default_factory=dict)
    articles: dict[str, dict[str, Any]] = field(default_factory=dict)
    mass_sends: dict[str, dict[str, Any]] = field(default_factory=dict)  # msg_id → record
    templates_sent: list[dict[str, Any]] = field(default_factory=list)
    custom_messages: list[dict[str, Any]] = field(default_factory=list)
    custom_counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    calls: list[tuple[str, Any]] = field(default_factory=list)
    failures: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    counters: dict[tuple[Any, ...], int] = field(default_factory=lambda: defaultdict(int))
    _ids: Any = field(default_factory=lambda: itertools.count(100000001))
    # called with each submitted publish job: the sandbox pushes PUBLISHJOBFINISH from here
    on_submit: Callable[[PublishJob], None] | None = None

    # --- test hooks -----------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def revoke(self, token: str) -> None:
        self.tokens[token].revoked = True

    def fail_next(self, path: str, errcode: int, times: int = 1) -> None:
        """The next ``times`` calls of ``path`` (e.g. ``cgi-bin/draft/add``) answer errcode."""
        self.failures[path.lstrip("/")].extend([errcode] * times)

    def calls_to(self, path: str) -> list[Any]:
        return [body for p, body in self.calls if p == path.lstrip("/")]

    def open_window(self, openid: str) -> None:
        self.closed_windows.discard(openid)
        self.custom_counts[openid] = 0

    def finish_publish(self, publish_id: str, status: int | None = None) -> PublishJob:
        job = self.jobs[str(publish_id)]
        job.status = job.final_status if status is None else status
        if job.status == 0 and job.article_id is None:
            job.article_id = f"art_{secrets.token_hex(8)}"
            job.article_url = f"https://mp.weixin.qq.com/s/{secrets.token_urlsafe(12)}"
            self.articles[job.article_id] = {
                "app_id": job.app_id,
                "publish_id": job.publish_id,
                "articles": job.articles,
                "url": job.article_url,
                "deleted": False,
            }
        return job

    def finish_mass(self, msg_id: str) -> dict[str, Any]:
        sent = self.mass_sends[str(msg_id)]
        if sent["status"] == "sending":
            sent["status"] = self.mass_outcome
        return sent

    def mass_event_xml(self, msg_id: str, to_user: str = "gh_fake") -> str:
        """The MASSSENDJOBFINISH push (shape as WeChat really sends it)."""
        sent = self.finish_mass(msg_id)
        ok = sent["status"] == "send success"
        reach = self.mass_reach if ok else 0
        errors = 3 if ok else 0
        return (
            f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName>"
            "<FromUserName><![CDATA[oFakeSystem]]></FromUserName>"
            f"<CreateTime>{int(self.now())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[MASSSENDJOBFINISH]]></Event><MsgID>{msg_id}</MsgID>"
            f"<Status><![CDATA[{sent['status']}]]></Status>"
            f"<TotalCount>{self.mass_reach + 100 if ok else 0}</TotalCount>"
            f"<FilterCount>{reach}</FilterCount><SentCount>{reach - errors}</SentCount>"
            f"<ErrorCount>{errors}</ErrorCount></xml>"
        )

    def publish_event_xml(self, publish_id: str, to_user: str = "gh_fake") -> str:
        """The PUBLISHJOBFINISH push (shape as WeChat really sends it)."""
        job = self.jobs[str(publish_id)]
        if job.status == 1:
            job = self.finish_publish(publish_id)
        inner = (
            f"<publish_id>{job.publish_id}</publish_id>"
            f"<publish_status>{job.status}</publish_status>"
        )
        if job.status == 0:
            inner += (
                f"<article_id><![CDATA[{job.article_id}]]></article_id><article_detail>"
                f"<count>1</count><item><idx>1</idx><article_url><![CDATA[{job.article_url}]]>"
                "</article_url></item></article_detail>"
            )
        elif job.status in (2, 3, 4):
            inner += "<fail_idx>1</fail_idx>"
        return (
            f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName>"
            "<FromUserName><![CDATA[oFakeSystem]]></FromUserName>"
            f"<CreateTime>{int(self.now())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[PUBLISHJOBFINISH]]></Event><PublishEventInfo>{inner}"
            "</PublishEventInfo></xml>"
        )

    def next_id(self) -> str:
        return str(next(self._ids))

    def day(self) -> int:
        return int((self.now() + 8 * 3600) // 86400)  # WeChat's day is Beijing time
