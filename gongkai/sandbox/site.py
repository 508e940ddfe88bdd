"""Every simulator on one aiohttp app, under ``/sandbox/<provider>/``.

One ``Sandbox`` holds the five simulators with the sandbox's accounts (``credentials.py``), the
training faults, and what WeChat does on its own: a submitted article is published a moment
later and WeChat pushes PUBLISHJOBFINISH to the account's callback, as the real one does, so
an official-account delivery settles in seconds instead of at the next poll.

Mounted on the service's own app (``GONGKAI_SANDBOX=on``): one port, one address to open, and
the sandbox page reads the simulators' memory directly. That memory is the web process's: run
one web process (``gongkai run``) when training, and expect it to start empty after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from gongkai.sandbox import (
    aliyun_sms,
    credentials,
    telegram_api,
    tencent_sms,
    wechat_api,
    wecom_robot,
)
from gongkai.sandbox.faults import Faults, middleware
from gongkai.sandbox.wechat_state import PublishJob

log = logging.getLogger(__name__)

UPLOAD_MAX = 24 * 1024 * 1024  # WeCom files (20 MB) and WeChat materials, above the API's 4 MiB
PUSH_DELAY = 1.0  # seconds between a submitted article and WeChat's PUBLISHJOBFINISH push

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _larger_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Providers take bigger uploads than Gongkai's own API (audio, images)."""
    return await handler(request.clone(client_max_size=UPLOAD_MAX))


def _signature(*parts: str) -> str:
    """WeChat's callback signature: SHA-1 of the sorted, joined token, timestamp and nonce."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


class Sandbox:
    """The simulators, their memory and the controls, for one web process."""

    def __init__(self, callback_base: str, push_delay: float = PUSH_DELAY) -> None:
        self.callback_base = callback_base.rstrip("/")
        self.push_delay = push_delay
        self.started_at = time.time()
        self.faults = Faults()
        self.apps: dict[str, web.Application] = {}
        self.wecom_app, self.wecom = wecom_robot.make_app(valid_keys=None)
        self.wechat_app, self.wechat = wechat_api.make_app(
            {a.app_id: a.app_secret for a in credentials.WECHAT}, publish_polls=0
        )
        self.wechat.on_submit = self._push_later
        self.telegram_app, self.telegram = telegram_api.make_app(credentials.TELEGRAM_TOKENS)
        self.aliyun_app, self.aliyun = aliyun_sms.make_app(
            access_key_id=credentials.ALIYUN_KEY_ID,
            access_key_secret=credentials.ALIYUN_KEY_SECRET,
            sign_names=credentials.SMS_SIGNS,
            templates=dict(credentials.ALIYUN_TEMPLATES),
        )
        self.tencent_app, self.tencent = tencent_sms.make_app(
            secret_id=credentials.TENCENT_SECRET_ID,
            secret_key=credentials.TENCENT_SECRET_KEY,
            sdk_app_id=credentials.TENCENT_SDK_APP_ID,
            sign_names=credentials.SMS_SIGNS,
            templates=dict(credentials.TENCENT_TEMPLATES),
        )
        for name, app in (
            ("wecom", self.wecom_app),
            ("wechat", self.wechat_app),
            ("telegram", self.telegram_app),
            ("aliyun", self.aliyun_app),
            ("tencent", self.tencent_app),
        ):
            app.middlewares.extend([_larger_bodies, middleware(self.faults, name)])
            self.apps[name] = app
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None
        self._push_lock: asyncio.Lock | None = None
        self._last_push_second = 0

    def mount(self, app: web.Application, prefix: str = "/sandbox") -> None:
        """Each provider at ``{prefix}/{provider}/``; closed with ``app``."""
        for name, sub in self.apps.items():
            app.add_subapp(f"{prefix}/{name}/", sub)
        app.on_cleanup.append(self._close)

    # --- WeChat's own pushes ------------------------------------------------------------------

    def _push_later(self, job: PublishJob) -> None:
        with contextlib.suppress(RuntimeError):  # no running loop: a test drives it by hand
            task = asyncio.get_running_loop().create_task(self._push(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _push(self, job: PublishJob) -> None:
        """Publish the job and push PUBLISHJOBFINISH to the account's callback, signed with
        its token, as WeChat does; on failure the channel's own poll still settles it."""
        await asyncio.sleep(self.push_delay)
        account = next((a for a in credentials.WECHAT if a.app_id == job.app_id), None)
        if account is None:
            return
        if self._push_lock is None:
            self._push_lock = asyncio.Lock()
        async with self._push_lock:
            # One push a second: an event's sender, CreateTime and type are what the callback
            # tells repeats by, and the system sender is the same for every job.
            second = math.floor(time.time())
            if second <= self._last_push_second:
                await asyncio.sleep(self._last_push_second + 1 - time.time())
            self._last_push_second = math.floor(time.time())
            await self._send_push(job, account)

    async def _send_push(self, job: PublishJob, account: credentials.WechatAccount) -> None:
        xml = self.wechat.publish_event_xml(job.publish_id, to_user=f"gh_{account.name}")
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
        query = {
            "signature": _signature(account.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": "oSandboxSystem",
        }
        url = f"{self.callback_base}/wechat/{account.name}?{urlencode(query)}"
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        try:
            async with self._http.post(
                url, data=xml.encode(), headers={"Content-Type": "text/xml"}
            ) as resp:
                await resp.read()
                if resp.status != 200:
                    log.warning("sandbox: PUBLISHJOBFINISH push answered %s", resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("sandbox: PUBLISHJOBFINISH push failed: %s", exc)

    async def _close(self, app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._http is not None:
            await self._http.close()
