"""Training controls: make one provider fail the way it really fails, until cleared.

Each mode answers in the provider's own shape, so the channels class it as they would in
production: a rate limit is the provider's throttling code (retried later), ``5xx`` a bad
gateway (retried with backoff), ``timeout`` holds the request past the client's timeout (on
SMS that is an answer that never came: the delivery goes uncertain, as it must).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

PROVIDERS = ("wecom", "wechat", "telegram", "aliyun", "tencent")
MODES = ("ok", "rate_limit", "5xx", "timeout")
MODE_LABELS = {
    "ok": "正常 / ok",
    "rate_limit": "限流 / rate limit",
    "5xx": "5xx",
    "timeout": "超时 / timeout",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Faults:
    modes: dict[str, str] = field(default_factory=lambda: dict.fromkeys(PROVIDERS, "ok"))
    hold_seconds: float = 35.0  # longer than GONGKAI_HTTP_TIMEOUT_SECONDS' default of 30
    answered: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PROVIDERS, 0))

    def set(self, provider: str, mode: str) -> None:
        if provider not in PROVIDERS or mode not in MODES:
            raise ValueError(f"unknown provider or mode: {provider} {mode}")
        self.modes[provider] = mode

    def clear(self) -> None:
        for name in PROVIDERS:
            self.modes[name] = "ok"


def _rate_limited(provider: str) -> web.Response:
    if provider == "wecom":
        return web.json_response({"errcode": 45009, "errmsg": "api freq out of limit"})
    if provider == "wechat":
        return web.json_response({"errcode": 45009, "errmsg": "reach max api daily quota limit"})
    if provider == "telegram":
        return web.json_response(
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 5",
                "parameters": {"retry_after": 5},
            },
            status=429,
        )
    if provider == "aliyun":
        return web.json_response(
            {
                "Code": "Throttling.User",
                "Message": "Request was denied due to user flow control.",
                "RequestId": "SANDBOX",
            },
            status=400,
        )
    return web.json_response(
        {
            "Response": {
                "Error": {"Code": "RequestLimitExceeded", "Message": "请求的次数超过了频率限制。"},
                "RequestId": "sandbox",
            }
        }
    )


def _server_error(provider: str) -> web.Response:
    if provider == "telegram":
        return web.json_response(
            {"ok": False, "error_code": 502, "description": "Bad Gateway"}, status=502
        )
    return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>")


def middleware(faults: Faults, provider: str):  # type: ignore[no-untyped-def]
    """The provider app's front door: answers with the chosen failure instead of the provider."""

    @web.middleware
    async def fail_on_purpose(request: web.Request, handler: Handler) -> web.StreamResponse:
        mode = faults.modes.get(provider, "ok")
        if mode == "ok":
            return await handler(request)
        faults.answered[provider] += 1
        if mode == "rate_limit":
            return _rate_limited(provider)
        if mode == "5xx":
            return _server_error(provider)
        await asyncio.sleep(faults.hold_seconds)
        return web.Response(status=504, text="gateway timeout")

    return fail_on_purpose
