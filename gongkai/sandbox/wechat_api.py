"""A fake WeChat official-account API (api.weixin.qq.com) that keeps WeChat's rules.

It speaks the real paths, bodies and errcodes and enforces what bites in production: token
expiry and replacement, the daily token budget, size limits of a draft, permanent-material
thumbs, the daily publish cap, the mass-send quota and ``clientmsgid`` deduplication, the
customer-service window. Its memory and test hooks are in ``wechat_state.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from typing import Any

from aiohttp import web

from gongkai.sandbox.wechat_state import DEFAULT_AUTOREPLY, FakeWechatState, PublishJob, Token

__all__ = ["DEFAULT_AUTOREPLY", "FakeWechatState", "PublishJob", "Token", "make_app"]

TITLE_MAX, AUTHOR_MAX, DIGEST_MAX = 32, 16, 128
CONTENT_MAX_CHARS, CONTENT_MAX_BYTES = 20_000, 1_000_000
# Script tags, and javascript: URLs or on* handlers inside a tag (not in escaped text).
_FOREIGN_IMAGE = re.compile(r'<img\b[^>]*\bsrc="(?!https://mmbiz\.qpic\.cn/)[^"]*"[^>]*>')
_JS = re.compile(r"<\s*script|<[^>]*(?:javascript\s*:|\son[a-z]+\s*=)", re.IGNORECASE)
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8", b"GIF87a", b"GIF89a", b"BM")


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
        # WeChat keeps only the images it hosts (uploadimg); any other <img> silently goes.
        kept = [{**a, "content": _FOREIGN_IMAGE.sub("", a["content"])} for a in articles]
        state.drafts[media_id] = {"app_id": app_id, "articles": kept}
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
        if state.on_submit is not None:
            state.on_submit(job)
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
            "status": "sending",
            "polls_left": state.mass_polls,
        }
        return _ok(
            {
                "errcode": 0,
                "errmsg": "send job submission success",
                "msg_id": int(msg_id),
                "msg_data_id": int(state.next_id()),
            }
        )

    async def mass_get(request: web.Request, app_id: str, body: Any) -> web.Response:
        msg_id = str((body or {}).get("msg_id", ""))
        sent = state.mass_sends.get(msg_id)
        if not sent or sent["app_id"] != app_id:
            return _err(40007, "invalid msg_id")
        if sent["status"] == "sending":
            if sent["polls_left"] > 0:
                sent["polls_left"] -= 1
            else:
                state.finish_mass(msg_id)
        if sent["deleted"]:
            status = "DELETE"
        elif sent["status"] == "sending":
            status = "SENDING"
        else:
            status = "SEND_SUCCESS" if sent["status"] == "send success" else "SEND_FAIL"
        return _ok({"msg_id": int(msg_id), "msg_status": status})

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
        state.templates_sent.append({**body, "msgid": msgid, "app_id": app_id, "at": state.now()})
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
        "message/mass/get": mass_get,
        "message/template/send": template_send,
        "message/custom/send": custom_send,
    }.items():
        app.router.add_post(f"/cgi-bin/{path}", business(handler))
    app.router.add_get("/cgi-bin/get_current_autoreply_info", business(autoreply))
    return app, state
