"""A small async client for the WeChat official-account REST API.

Why not wechatpy: its client is synchronous and has no draft / freepublish endpoints. This one
does only what Gongkai needs, and does the access token right: WeChat allows 2,000
``cgi-bin/token`` calls a day and every new token can invalidate the previous one, so all
processes share ONE token through Redis, and fetching it is guarded by a Redis lock so five
workers starting together make one call, not five.

Errors come out as the channel contract's ``TransientError`` / ``PermanentError`` (subclassed
here to carry the errcode), so a caller can raise them straight to the dispatcher.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import aiohttp
from redis.exceptions import LockError

from gongkai.channels.base import PermanentError, TransientError

if TYPE_CHECKING:
    from redis.asyncio import Redis

TOKEN_ERRORS = frozenset({40001, 40014, 42001})  # invalid / not latest / expired
BUSY_ERRORS = frozenset({-1, 45009, 45011})  # system busy, daily quota, minute quota
MASS_DUPLICATE = 45065  # same clientmsgid within 24 h: the answer carries the earlier msg_id
TOKEN_MARGIN = 300  # seconds: WeChat itself renews a stable token 5 minutes early

# Compare-and-delete: forget the cached token only when it is still the one that failed, so a
# worker holding an old token never throws away the fresh one another worker just fetched.
_DELETE_IF_SAME = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class WechatPermanentError(PermanentError):
    def __init__(self, message: str, errcode: int | None = None) -> None:
        super().__init__(message)
        self.errcode = errcode


class WechatTransientError(TransientError):
    def __init__(
        self, message: str, errcode: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, retry_after)
        self.errcode = errcode


def token_key(app_id: str) -> str:
    return f"gongkai:wechat:token:{app_id}"


def token_lock_key(app_id: str) -> str:
    return f"gongkai:wechat:token-lock:{app_id}"


def media_key(app_id: str, digest: str) -> str:
    return f"gongkai:wechat:media:{app_id}:{digest}"


class WechatApi:
    """One official account. Cheap to build: all shared state lives in Redis."""

    def __init__(
        self,
        base_url: str,
        app_id: str,
        app_secret: str,
        http: aiohttp.ClientSession,
        redis: Redis,
        *,
        token_endpoint: str = "stable",  # "stable" (cgi-bin/stable_token) or "token"
        timeout: float = 15.0,
        lock_wait: float = 20.0,
    ) -> None:
        if token_endpoint not in ("stable", "token"):
            raise ValueError("token_endpoint must be 'stable' or 'token'")
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self._secret = app_secret
        self.http = http
        self.redis = redis
        self.token_endpoint = token_endpoint
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._lock_wait = lock_wait

    # --- access token ---------------------------------------------------------------------

    async def access_token(self) -> str:
        cached = await self.redis.get(token_key(self.app_id))
        if cached:
            return _text(cached)
        return await self._refresh(rejected=None)

    async def invalidate(self, token: str) -> bool:
        """Forget ``token`` if it is still the cached one; True when it was."""
        deleted = await self.redis.eval(_DELETE_IF_SAME, 1, token_key(self.app_id), token)
        return bool(deleted)

    async def _refresh(self, rejected: str | None) -> str:
        lock = self.redis.lock(
            token_lock_key(self.app_id),
            timeout=self._lock_wait + 10,
            blocking_timeout=self._lock_wait,
            thread_local=False,
        )
        try:
            async with lock:
                # Someone may have fetched while we waited for the lock: use theirs.
                cached = await self.redis.get(token_key(self.app_id))
                if cached and _text(cached) != rejected:
                    return _text(cached)
                token, expires_in = await self._fetch_token(force=False)
                if token == rejected and self.token_endpoint == "stable":
                    # Normal mode hands back the same token while WeChat thinks it valid;
                    # only a forced refresh replaces a token WeChat just refused.
                    token, expires_in = await self._fetch_token(force=True)
                ttl = max(60, int(expires_in) - TOKEN_MARGIN)
                await self.redis.set(token_key(self.app_id), token, ex=ttl)
                return token
        except LockError as exc:
            raise WechatTransientError(
                "timed out waiting for another process to fetch the access token", retry_after=5
            ) from exc

    async def _fetch_token(self, force: bool) -> tuple[str, int]:
        if self.token_endpoint == "stable":
            body: dict[str, Any] = {
                "grant_type": "client_credential",
                "appid": self.app_id,
                "secret": self._secret,
            }
            if force:
                body["force_refresh"] = True
            data = await self._request("POST", "cgi-bin/stable_token", json_body=body)
        else:
            params = {
                "grant_type": "client_credential",
                "appid": self.app_id,
                "secret": self._secret,
            }
            data = await self._request("GET", "cgi-bin/token", params=params)
        errcode = int(data.get("errcode") or 0)
        if errcode in (40013, 40125, 40164, 41002, 41004):
            raise WechatPermanentError(
                f"WeChat refused the credentials of {self.app_id}: "
                f"{errcode} {data.get('errmsg', '')}".strip(),
                errcode,
            )
        _raise_for_errcode(data)
        token = data.get("access_token")
        if not token:
            raise WechatTransientError("WeChat answered without an access_token")
        return str(token), int(data.get("expires_in") or 7200)

    # --- calls ----------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        params: dict[str, str] | None = None,
        accept: frozenset[int] = frozenset(),
    ) -> dict[str, Any]:
        """Call ``path`` (e.g. ``cgi-bin/draft/add``) with the token; refresh it at most once.

        ``files`` maps a form field to ``(filename, bytes, content type)``; the form is rebuilt
        for the retry because aiohttp consumes it. ``accept`` lists errcodes the caller handles
        itself (they come back in the answer instead of raising).
        """
        token = await self.access_token()
        data = await self._authorised(method, path, token, json, files, params)
        errcode = int(data.get("errcode") or 0)
        if errcode in TOKEN_ERRORS:
            await self.invalidate(token)
            token = await self._refresh(rejected=token)
            data = await self._authorised(method, path, token, json, files, params)
            errcode = int(data.get("errcode") or 0)
            if errcode in TOKEN_ERRORS:
                raise WechatTransientError(
                    f"WeChat refused a fresh access token too ({errcode}); another system "
                    "may be fetching tokens for the same account",
                    errcode,
                    retry_after=60,
                )
        if errcode and errcode not in accept:
            _raise_for_errcode(data)
        return data

    async def _authorised(
        self,
        method: str,
        path: str,
        token: str,
        json_body: dict[str, Any] | None,
        files: dict[str, tuple[str, bytes, str]] | None,
        params: dict[str, str] | None,
    ) -> dict[str, Any]:
        query = {"access_token": token, **(params or {})}
        form = None
        if files:
            form = aiohttp.FormData()
            for field, (filename, content, content_type) in files.items():
                form.add_field(field, content, filename=filename, content_type=content_type)
        return await self._request(method, path, params=query, json_body=json_body, form=form)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        form: aiohttp.FormData | None = None,
    ) -> dict[str, Any]:
        url = f"{self.base_url}/{path.lstrip('/')}"
        kwargs: dict[str, Any] = {"params": params, "timeout": self._timeout}
        if form is not None:
            kwargs["data"] = form
        elif json_body is not None:
            # Plain UTF-8, never \uXXXX escapes: WeChat counts escaped titles as too long.
            kwargs["data"] = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
            kwargs["headers"] = {"Content-Type": "application/json; charset=utf-8"}
        try:
            async with self.http.request(method, url, **kwargs) as resp:
                if resp.status >= 500:
                    raise WechatTransientError(f"WeChat answered HTTP {resp.status}")
                if resp.status >= 400:
                    raise WechatPermanentError(f"WeChat answered HTTP {resp.status} for {path}")
                raw = await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise WechatTransientError(f"WeChat unreachable: {exc.__class__.__name__}") from exc
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise WechatTransientError(
                f"WeChat answered something that is not JSON: {path}"
            ) from exc
        if not isinstance(data, dict):
            raise WechatTransientError(f"WeChat answered an unexpected JSON shape: {path}")
        return data

    # --- endpoints ------------------------------------------------------------------------

    async def upload_image_material(
        self, image: bytes, filename: str = "cover.png", *, refresh: bool = False
    ) -> str:
        """A permanent image (what ``thumb_media_id`` needs), uploaded once per account.

        Permanent material is capped (100,000 images) and never expires, so the media_id is
        remembered per image hash; ``refresh`` uploads again when WeChat lost it (40007).
        """
        key = media_key(self.app_id, hashlib.sha256(image).hexdigest())
        if not refresh:
            cached = await self.redis.get(key)
            if cached:
                return _text(cached)
        data = await self.call(
            "POST",
            "cgi-bin/material/add_material",
            params={"type": "image"},
            files={"media": (filename, image, image_type(image))},
        )
        media_id = str(data["media_id"])
        await self.redis.set(key, media_id)
        return media_id

    async def forget_image_material(self, image: bytes) -> None:
        await self.redis.delete(media_key(self.app_id, hashlib.sha256(image).hexdigest()))

    async def upload_body_image(self, image: bytes) -> str:
        """An image for the article body; WeChat filters out every other image URL."""
        kind = image_type(image)
        filename = "image." + ("png" if kind == "image/png" else "jpg")
        data = await self.call(
            "POST", "cgi-bin/media/uploadimg", files={"media": (filename, image, kind)}
        )
        return str(data["url"])

    async def add_draft(self, articles: list[dict[str, Any]]) -> str:
        data = await self.call("POST", "cgi-bin/draft/add", json={"articles": articles})
        return str(data["media_id"])

    async def delete_draft(self, media_id: str) -> None:
        await self.call("POST", "cgi-bin/draft/delete", json={"media_id": media_id})

    async def submit_publish(self, media_id: str) -> str:
        data = await self.call("POST", "cgi-bin/freepublish/submit", json={"media_id": media_id})
        return str(data["publish_id"])

    async def get_publish(self, publish_id: str) -> dict[str, Any]:
        return await self.call("POST", "cgi-bin/freepublish/get", json={"publish_id": publish_id})

    async def delete_article(self, article_id: str, index: int = 0) -> None:
        """``index`` 0 deletes every article of the publication (1 is the first one)."""
        await self.call(
            "POST", "cgi-bin/freepublish/delete", json={"article_id": article_id, "index": index}
        )

    async def mass_send(self, body: dict[str, Any]) -> dict[str, Any]:
        """``message/mass/sendall``; a repeated ``clientmsgid`` returns the earlier msg_id."""
        return await self.call(
            "POST", "cgi-bin/message/mass/sendall", json=body, accept=frozenset({MASS_DUPLICATE})
        )

    async def get_mass(self, msg_id: str) -> str:
        """``message/mass/get``: SENDING, SEND_SUCCESS, SEND_FAIL or DELETE."""
        data = await self.call("POST", "cgi-bin/message/mass/get", json={"msg_id": int(msg_id)})
        return str(data.get("msg_status") or "")

    async def delete_mass(self, msg_id: str, article_idx: int = 0) -> None:
        await self.call(
            "POST",
            "cgi-bin/message/mass/delete",
            json={"msg_id": int(msg_id), "article_idx": article_idx},
        )

    async def send_template(self, body: dict[str, Any]) -> str:
        data = await self.call("POST", "cgi-bin/message/template/send", json=body)
        return str(data.get("msgid", ""))

    async def send_custom(self, body: dict[str, Any]) -> dict[str, Any]:
        """A customer-service message (the 48-hour window after a user wrote to us)."""
        return await self.call("POST", "cgi-bin/message/custom/send", json=body)

    async def autoreply_rules(self) -> dict[str, Any]:
        return await self.call("GET", "cgi-bin/get_current_autoreply_info")


def _raise_for_errcode(data: dict[str, Any]) -> None:
    errcode = int(data.get("errcode") or 0)
    if errcode == 0:
        return
    errmsg = str(data.get("errmsg", "")).strip()
    if errcode in BUSY_ERRORS:
        retry_after = None if errcode == -1 else 60.0
        raise WechatTransientError(
            f"WeChat busy or over frequency ({errcode} {errmsg})", errcode, retry_after
        )
    if errcode == 45028:
        raise WechatPermanentError("mass send quota used up", errcode)
    if errcode == 48001:
        raise WechatPermanentError("API not authorised for this account (48001)", errcode)
    raise WechatPermanentError(f"WeChat error {errcode}: {errmsg}", errcode)


def image_type(image: bytes) -> str:
    """The MIME type of an image by its first bytes (what WeChat checks too)."""
    if image.startswith(b"\x89PNG"):
        return "image/png"
    if image.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if image.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return "application/octet-stream"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
