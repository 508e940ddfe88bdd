"""A fake WeChat official-account API (api.weixin.qq.com) that keeps WeChat's rules.

It speaks the real paths, bodies and errcodes and enforces what bites in production: token
expiry and replacement, the daily token budget, size limits of a draft, permanent-material
thumbs, the daily publish cap, the mass-send quota and ``clientmsgid`` deduplication, the
customer-service window. Time is the fake's own clock (``state.advance``), so expiry needs no
waiting. Test hooks: ``fail_next`` injects an errcode, ``finish_publish`` settles a job,
``publish_event_xml`` gives the PUBLISHJOBFINISH push WeChat would send.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TITLE_MAX, AUTHOR_MAX, DIGEST_MAX = 32, 16, 128
CONTENT_MAX_CHARS, CONTENT_MAX_BYTES = 20_000, 1_000_000
# Script tags, and javascript: URLs or on* handlers inside a tag (not in escaped text).
_JS = re.compile(r"<\s*script|<[^>]*(?:javascript\s*:|\son[a-z]+\s*=)", re.IGNORECASE)
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8", b"GIF87a", b"GIF89a", b"BM")
PUBLISH_REASONS = {2: "原创校验失败", 3: "常规失败", 4: "平台审核不通过", 5: "已删除", 6: "已封禁"}

DEFAULT_AUTOREPLY: dict[str, Any] = {
    "is_add_friend_reply_open": 1,
    "is_autoreply_open": 1,
    "add_friend_autoreply_info": {"type": "text", "content": "感谢关注！回复“低保”了解申请办法。"},
    "message_default_autoreply_info": {
        "type": "text",
        "content": "您的留言已收到，我们将尽快答复。",
    },
    "keyword_autoreply_info": {
        "list": [
            {
                "rule_name": "低保申请",
                "create_time": 1700000000,
                "reply_mode": "reply_all",
                "keyword_list_info": [
                    {"type": "text", "match_mode": "contain", "content": "低保"},
                    {"type": "text", "match_mode": "contain", "content": "最低生活保障"},
                ],
                "reply_list_info": [
                    {
                        "type": "text",
                        "content": "持户口簿、身份证到户籍所在地苏木乡镇人民政府"
                        "（街道办事处）提出书面申请。",
                    }
                ],
            },
            {
                "rule_name": "办公时间",
                "create_time": 1700000100,
                "reply_mode": "random_one",
                "keyword_list_info": [
                    {"type": "text", "match_mode": "equal", "content": "办公时间"}
                ],
                "reply_list_info": [
                    {"type": "text", "content": "工作日上午8:30-12:00，下午14:30-18:00。"}
                ],
            },
            {
                "rule_name": "政策图文",
                "create_time": 1700000200,
                "reply_mode": "reply_all",
                "keyword_list_info": [{"type": "text", "match_mode": "contain", "content": "政策"}],
                "reply_list_info": [
                    {"type": "img", "content": "MEDIA_ID_OF_A_POSTER"},
                    {
                        "type": "news",
                        "news_info": {
                            "list": [
                                {
                                    "title": "政策解读",
                                    "author": "政务公开办",
                                    "digest": "",
                                    "show_cover": 1,
                                    "cover_url": "https://mmbiz.qpic.cn/fake/cover",
                                    "content_url": "https://mp.weixin.qq.com/s/fake",
                                    "source_url": "",
                                }
                            ]
                        },
                    },
                ],
            },
        ]
    },
}


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


@dataclass
class FakeWechatState:
    accounts: dict[str, str]
    token_ttl: int = 7200
    daily_token_limit: int = 2000
    per_minute_cap: int | None = None
    mass_quota: int = 1  # successful mass sends a day (verified subscription account)
    publish_outcome: int = 0  # publish_status a submitted job ends in
    publish_polls: int = 1  # freepublish/get answers "publishing" this many times first
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


def _err(code: int, msg: str, **extra: Any) -> web.Response:
    return _ok({"errcode": code, "errmsg": msg, **extra})


def _ok(data: dict[str, Any]) -> web.Response:
    return web.Response(text=json.dumps(data, ensure_ascii=False), content_type="application/json")


def make_app(
    accounts: dict[str, str], token_ttl: int = 7200, daily_token_limit: int = 2000, **options: Any
) -> tuple[web.Application, FakeWechatState]:
    state = FakeWechatState(
        accounts=dict(accounts), token_ttl=token_ttl, daily_token_limit=daily_token_limit, **options
    )
    app = web.Application(client_max_size=16 * 1024 * 1024)

    def credentials(
        appid: str | None, secret: str | None, grant: str | None
    ) -> web.Response | None:
        if grant != "client_credential":
            return _err(40002, "invalid grant_type")
        if not appid:
            return _err(41002, "appid missing")
        if appid not in state.accounts:
            return _err(40013, "invalid appid")
        if secret != state.accounts[appid]:
            return _err(40125, "invalid appsecret")
        state.counters[("token", appid, state.day())] += 1
        if state.counters[("token", appid, state.day())] > state.daily_token_limit:
            return _err(45009, "reach max api daily quota limit")
        return None

    def issue(appid: str, kind: str) -> Token:
        old = state.current.get((appid, kind))
        if old and kind == "token":  # the old token lives on for five minutes
            state.tokens[old].expires_at = min(state.tokens[old].expires_at, state.now() + 300)
        token = Token(secrets.token_urlsafe(48), appid, kind, state.now() + state.token_ttl)
        state.tokens[token.value] = token
        state.current[(appid, kind)] = token.value
        return token

    async def get_token(request: web.Request) -> web.Response:
        state.token_calls += 1
        q = request.query
        refused = credentials(q.get("appid"), q.get("secret"), q.get("grant_type"))
        if refused:
            return refused
        token = issue(q["appid"], "token")
        return _ok({"access_token": token.value, "expires_in": state.token_ttl})

    async def stable_token(request: web.Request) -> web.Response:
        state.token_calls += 1
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _err(47001, "data format error")
        refused = credentials(body.get("appid"), body.get("secret"), body.get("grant_type"))
        if refused:
            return refused
        appid = body["appid"]
        current = state.tokens.get(state.current.get((appid, "stable"), ""))
        if body.get("force_refresh"):
            if current:
                current.revoked = True
            current = None
        if current and not current.revoked and current.expires_at - state.now() > 300:
            return _ok(
                {"access_token": current.value, "expires_in": int(current.expires_at - state.now())}
            )
        token = issue(appid, "stable")
        return _ok({"access_token": token.value, "expires_in": state.token_ttl})

    def authorise(request: web.Request) -> str | web.Response:
        value = request.query.get("access_token")
        if not value:
            return _err(41001, "access_token missing")
        token = state.tokens.get(value)
        if token is None:
            return _err(40014, "invalid access_token")
        if token.revoked:
            return _err(40001, "invalid credential, access_token is invalid or not latest")
        if token.expires_at <= state.now():
            return _err(42001, "access_token expired")
        return token.app_id

    def business(handler):  # type: ignore[no-untyped-def]
        async def wrapped(request: web.Request) -> web.Response:
            path = request.path.lstrip("/")
            app_id = authorise(request)
            if isinstance(app_id, web.Response):
                state.calls.append((path, None))
                return app_id
            body: Any = None
            if request.content_type.startswith("multipart/"):
                body = await request.post()
            elif request.method == "POST":
                try:
                    body = json.loads((await request.read()).decode("utf-8"))
                except ValueError:
                    state.calls.append((path, None))
                    return _err(47001, "data format error")
            state.calls.append((path, body))
            minute = ("minute", app_id, int(state.now() // 60))
            state.counters[minute] += 1
            if state.per_minute_cap is not None and state.counters[minute] > state.per_minute_cap:
                return _err(45009, "reach max api daily quota limit")
            if state.failures.get(path):
                return _err(state.failures[path].pop(0), "injected by the test")
            cap = state.daily_caps.get(path)
            if cap is not None:
                state.counters[(path, app_id, state.day())] += 1
                if state.counters[(path, app_id, state.day())] > cap:
                    return _err(45009, "reach max api daily quota limit")
            return await handler(request, app_id, body)

        return wrapped

    async def add_material(request: web.Request, app_id: str, form: Any) -> web.Response:
        kind = request.query.get("type")
        if kind not in ("image", "voice", "video", "thumb"):
            return _err(40004, "invalid media type")
        media = form.get("media") if form else None
        if media is None or not hasattr(media, "file"):
            return _err(41005, "media data missing")
        content = media.file.read()
        if kind == "image" and not content.startswith(_IMAGE_MAGIC):
            return _err(40005, "invalid file type")
        if kind == "image" and len(content) > 10 * 1024 * 1024:
            return _err(40009, "invalid image size")
        media_id = secrets.token_urlsafe(24)
        url = f"https://mmbiz.qpic.cn/fake/{media_id}/0"
        state.materials[media_id] = {"app_id": app_id, "type": kind, "content": content, "url": url}
        return _ok({"media_id": media_id, "url": url})

    async def uploadimg(request: web.Request, app_id: str, form: Any) -> web.Response:
        media = form.get("media") if form else None
        if media is None or not hasattr(media, "file"):
            return _err(41005, "media data missing")
        content = media.file.read()
        if not content.startswith((b"\x89PNG", b"\xff\xd8")):
            return _err(40005, "invalid file type")
        if len(content) > 1024 * 1024:
            return _err(40009, "invalid image size")
        url = f"https://mmbiz.qpic.cn/fake/body/{hashlib.sha1(content).hexdigest()}/0"
        state.body_images.append(url)
        return _ok({"url": url})

    async def draft_add(request: web.Request, app_id: str, body: Any) -> web.Response:
        articles = body.get("articles") if isinstance(body, dict) else None
        if not articles or not isinstance(articles, list):
            return _err(47001, "data format error")
        for article in articles:
            refused = check_article(app_id, article)
            if refused:
                return refused
        media_id = secrets.token_urlsafe(32)
        state.drafts[media_id] = {"app_id": app_id, "articles": articles}
        return _ok({"media_id": media_id})

    def check_article(app_id: str, article: dict[str, Any]) -> web.Response | None:
        title, content = article.get("title"), article.get("content")
        if not title or content is None:
            return _err(47001, "data format error")
        if len(title) > TITLE_MAX:
            return _err(45003, "title size out of limit")
        if len(article.get("author") or "") > AUTHOR_MAX:
            return _err(45110, "author size out of limit")
        if len(article.get("digest") or "") > DIGEST_MAX:
            return _err(45004, "description size out of limit")
        if len(content) >= CONTENT_MAX_CHARS or len(content.encode()) >= CONTENT_MAX_BYTES:
            return _err(45002, "content size out of limit")
        if _JS.search(content):
            return _err(45166, "invalid content: scripts are not allowed")
        if len((article.get("content_source_url") or "").encode()) > 1024:
            return _err(40039, "invalid url size")
        thumb = state.materials.get(article.get("thumb_media_id") or "")
        if not thumb or thumb["app_id"] != app_id or thumb["type"] not in ("image", "thumb"):
            return _err(40007, "invalid media_id")
        return None

    async def draft_delete(request: web.Request, app_id: str, body: Any) -> web.Response:
        draft = state.drafts.get((body or {}).get("media_id", ""))
        if not draft or draft["app_id"] != app_id:
            return _err(40007, "invalid media_id")
        del state.drafts[body["media_id"]]
        return _err(0, "ok")

    async def submit(request: web.Request, app_id: str, body: Any) -> web.Response:
        media_id = (body or {}).get("media_id", "")
        draft = state.drafts.get(media_id)
        if not draft or draft["app_id"] != app_id:
            return _err(40007, "invalid media_id")
        del state.drafts[media_id]  # a published draft leaves the draft box
        job = PublishJob(
            state.next_id(),
            app_id,
            media_id,
            draft["articles"],
            state.publish_outcome,
            state.publish_polls,
        )
        state.jobs[job.publish_id] = job
        return _ok(
            {
                "errcode": 0,
                "errmsg": "ok",
                "publish_id": int(job.publish_id),
                "msg_data_id": int(state.next_id()),
            }
        )

    async def publish_get(request: web.Request, app_id: str, body: Any) -> web.Response:
        job = state.jobs.get(str((body or {}).get("publish_id", "")))
        if not job or job.app_id != app_id:
            return _err(40007, "invalid publish_id")
        if job.status == 1:
            if job.polls_left > 0:
                job.polls_left -= 1
            else:
                state.finish_publish(job.publish_id)
        answer: dict[str, Any] = {"publish_id": job.publish_id, "publish_status": job.status}
        if job.status == 0:
            answer["article_id"] = job.article_id
            answer["article_detail"] = {
                "count": 1,
                "item": [{"idx": 1, "article_url": job.article_url}],
            }
            answer["fail_idx"] = []
        elif job.status in (2, 3, 4):
            answer["fail_idx"] = [1]
        return _ok(answer)

    async def publish_delete(request: web.Request, app_id: str, body: Any) -> web.Response:
        article = state.articles.get((body or {}).get("article_id", ""))
        if not article or article["app_id"] != app_id:
            return _err(40007, "invalid article_id")
        article["deleted"] = True
        state.jobs[article["publish_id"]].status = 5
        return _err(0, "ok")

    async def sendall(request: web.Request, app_id: str, body: Any) -> web.Response:
        body = body or {}
        filter_ = body.get("filter")
        if not isinstance(filter_, dict) or (
            "tag_id" not in filter_ and not filter_.get("is_to_all")
        ):
            return _err(40130, "invalid filter: need is_to_all or tag_id")
        clientmsgid = body.get("clientmsgid")
        if clientmsgid and len(str(clientmsgid).encode()) > 64:
            return _err(45067, "clientmsgid size out of limit")
        for msg_id, sent in state.mass_sends.items():
            if (
                clientmsgid
                and sent["app_id"] == app_id
                and sent["clientmsgid"] == clientmsgid
                and state.now() - sent["at"] < 86400
            ):
                return _err(45065, "clientmsgid exist", msg_id=int(msg_id))
        msgtype = body.get("msgtype")
        if msgtype == "mpnews":
            draft = state.drafts.get((body.get("mpnews") or {}).get("media_id", ""))
            if not draft or draft["app_id"] != app_id:
                return _err(40007, "invalid media_id")
        elif msgtype != "text" or not (body.get("text") or {}).get("content"):
            return _err(40008, "invalid message type")
        used = ("mass", app_id, state.day())
        if state.counters[used] >= state.mass_quota:
            return _err(45028, "has no masssend quota")
        state.counters[used] += 1
        msg_id = state.next_id()
        if msgtype == "mpnews":
            state.drafts.pop(body["mpnews"]["media_id"])
        state.mass_sends[msg_id] = {
            "app_id": app_id,
            "clientmsgid": clientmsgid,
            "body": body,
            "at": state.now(),
            "deleted": False,
        }
        return _ok(
            {
                "errcode": 0,
                "errmsg": "send job submission success",
                "msg_id": int(msg_id),
                "msg_data_id": int(state.next_id()),
            }
        )

    async def mass_delete(request: web.Request, app_id: str, body: Any) -> web.Response:
        sent = state.mass_sends.get(str((body or {}).get("msg_id", "")))
        if not sent or sent["app_id"] != app_id:
            return _err(40007, "invalid msg_id")
        sent["deleted"] = True
        return _err(0, "ok")

    async def template_send(request: web.Request, app_id: str, body: Any) -> web.Response:
        body = body or {}
        touser, template_id = body.get("touser"), body.get("template_id")
        if not touser:
            return _err(40003, "invalid openid")
        if not template_id or (
            state.template_ids is not None and template_id not in state.template_ids
        ):
            return _err(40037, "invalid template_id")
        if touser in state.unsubscribed:
            return _err(43004, "require subscribe")
        key = body.get("client_msg_id")
        for sent in state.templates_sent:
            if key and sent["touser"] == touser and sent["client_msg_id"] == key:
                return _ok({"errcode": 0, "errmsg": "ok", "msgid": sent["msgid"]})
        msgid = int(state.next_id())
        state.templates_sent.append({**body, "msgid": msgid, "app_id": app_id})
        return _ok({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    async def custom_send(request: web.Request, app_id: str, body: Any) -> web.Response:
        touser = (body or {}).get("touser")
        if not touser or not body.get("msgtype"):
            return _err(40003 if not touser else 40008, "invalid openid or msgtype")
        if touser in state.closed_windows:
            return _err(45015, "response out of time limit or subscription is canceled")
        if state.custom_counts[touser] >= 5:
            return _err(45047, "out of response count limit")
        state.custom_counts[touser] += 1
        state.custom_messages.append({**body, "app_id": app_id})
        return _err(0, "ok")

    async def autoreply(request: web.Request, app_id: str, body: Any) -> web.Response:
        return _ok(state.autoreply)

    app.router.add_get("/cgi-bin/token", get_token)
    app.router.add_post("/cgi-bin/stable_token", stable_token)
    for path, handler in {
        "material/add_material": add_material,
        "media/uploadimg": uploadimg,
        "draft/add": draft_add,
        "draft/delete": draft_delete,
        "freepublish/submit": submit,
        "freepublish/get": publish_get,
        "freepublish/delete": publish_delete,
        "message/mass/sendall": sendall,
        "message/mass/delete": mass_delete,
        "message/template/send": template_send,
        "message/custom/send": custom_send,
    }.items():
        app.router.add_post(f"/cgi-bin/{path}", business(handler))
    app.router.add_get("/cgi-bin/get_current_autoreply_info", business(autoreply))
    return app, state
