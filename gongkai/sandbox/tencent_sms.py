"""A fake Tencent Cloud SMS endpoint (sms.tencentcloudapi.com, SendSms 2021-01-11).

API 3.0 style: ``POST /`` with a JSON body, the action in ``X-TC-*`` headers and a
TC3-HMAC-SHA256 ``Authorization`` that this fake recomputes with its own code from the headers
and the body it received. Request-level errors come back as ``{"Response": {"Error": …}}``
with HTTP 200; per-number results in ``SendStatusSet``. Enforced: timestamp within 5 minutes,
the secret, action/version/region, SdkAppId, ≤ 200 numbers, approved sign and template, the
template's parameter count, each variable's length (12 characters unless configured), no
URLs in variables, credit, and per number: a phone format Tencent accepts, the same content
at most once in 30 s (LimitExceeded.PhoneNumberThirtySecondLimit) and a daily cap
(LimitExceeded.PhoneNumberDailyLimit). Templates number their variables ``{1}``, ``{2}`` ….

Test hooks: ``state.fail_next(code)``, ``state.advance(seconds)``, ``state.texts_to(phone)``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import math
import re
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

_AUTH = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)"
    r"/tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)
_PHONE = re.compile(r"^(?:\+86|0086|86)?(1[3-9][0-9]{9})$")
_URL = re.compile(r"(https?://|www\.|\b[a-z0-9-]+\.(?:com|cn|net|org|gov)\b)", re.IGNORECASE)
_SLOT = re.compile(r"\{(\d+)\}")
DAY = 86_400.0


@dataclass
class SentMessage:
    phone: str  # as given in PhoneNumberSet
    text: str
    template_id: str
    params: list[str]
    serial_no: str
    session_context: str
    at: float = field(default_factory=time.time)


@dataclass
class TencentState:
    secret_id: str
    secret_key: str
    sdk_app_id: str
    sign_names: set[str]
    templates: dict[str, str]
    variable_max_len: int | None
    forbid_urls: bool
    same_content_window: float
    daily_limit_per_number: int
    max_numbers: int
    balance: int | None
    regions: set[str]
    offset: float = 0.0
    messages: list[SentMessage] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    last_content: dict[tuple[str, str], float] = field(default_factory=dict)
    daily: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    forced: list[tuple[str, str]] = field(default_factory=list)
    late: list[float] = field(default_factory=list)
    _serials: itertools.count = field(default_factory=lambda: itertools.count(1))

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def answer_late(self, seconds: float) -> None:
        """The next SendSms is carried out, but its answer leaves only after ``seconds``."""
        self.late.append(seconds)

    def fail_next(self, code: str, message: str = "") -> None:
        self.forced.append((code, message or code))

    def texts_to(self, phone: str) -> list[str]:
        digits = phone[-11:]
        return [m.text for m in self.messages if m.phone[-11:] == digits]


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def expected_signature(
    secret_key: str, request_headers: Any, signed: list[str], body: bytes, stamp: int, service: str
) -> str:
    """Recompute TC3 from what arrived: header values lower-cased and trimmed."""
    canonical_headers = "".join(
        f"{h}:{request_headers.get(h, '').strip().lower()}\n" for h in signed
    )
    canonical = "\n".join(
        ["POST", "/", "", canonical_headers, ";".join(signed), hashlib.sha256(body).hexdigest()]
    )
    date = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join(
        ["TC3-HMAC-SHA256", str(stamp), scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode(), date), service), "tc3_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _error(code: str, message: str) -> web.Response:
    return web.json_response(
        {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}}
    )


async def _handle(request: web.Request) -> web.Response:
    state: TencentState = request.app[STATE]
    body = await request.read()
    auth = _AUTH.match(request.headers.get("Authorization", ""))
    if auth is None:
        return _error("AuthFailure.InvalidAuthorization", "Authorization is not in TC3 form.")
    try:
        stamp = int(request.headers.get("X-TC-Timestamp", ""))
    except ValueError:
        return _error(
            "MissingParameter", "The request is missing a required parameter `Timestamp`."
        )
    if abs(stamp - state.now()) > 300:
        return _error("AuthFailure.SignatureExpire", "Signature expired.")
    if auth["id"] != state.secret_id:
        return _error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
    signed = auth["signed"].split(";")
    date = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d")
    if (
        "content-type" not in signed
        or "host" not in signed
        or signed != sorted(signed)
        or auth["date"] != date
        or auth["service"] != "sms"
    ):
        return _error("AuthFailure.InvalidAuthorization", "Credential scope or headers invalid.")
    expected = expected_signature(state.secret_key, request.headers, signed, body, stamp, "sms")
    if not hmac.compare_digest(expected, auth["sig"]):
        return _error(
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. "
            "Please check your signature is correct.",
        )
    if request.headers.get("X-TC-Action") != "SendSms":
        return _error("InvalidAction", "The action is not found.")
    if request.headers.get("X-TC-Version") != "2021-01-11":
        return _error("NoSuchVersion", "The version is not found.")
    if request.headers.get("X-TC-Region") not in state.regions:
        return _error("UnsupportedRegion", "The region is not supported.")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return _error("FailedOperation.JsonParseFail", "Failed to parse the JSON body.")
    state.requests.append(data)
    if state.forced:
        return _error(*state.forced.pop(0))
    response = _send_sms(state, data)
    if state.late:
        await asyncio.sleep(state.late.pop(0))
    return response


def _send_sms(state: TencentState, data: dict[str, Any]) -> web.Response:
    phones = data.get("PhoneNumberSet") or []
    if str(data.get("SmsSdkAppId")) != state.sdk_app_id:
        return _error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId does not exist.")
    if not phones:
        return _error("MissingParameter.EmptyPhoneNumberSet", "The number list is empty.")
    if len(phones) > state.max_numbers:
        return _error("LimitExceeded.PhoneNumberCountLimit", "More than 200 numbers in a request.")
    sign = data.get("SignName")
    if sign not in state.sign_names:
        return _error("FailedOperation.SignatureIncorrectOrUnapproved", "签名未审批或格式错误")
    template = state.templates.get(str(data.get("TemplateId")))
    if template is None:
        return _error("FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批或内容不匹配")
    params = [str(p) for p in data.get("TemplateParamSet") or []]
    slots = {int(n) for n in _SLOT.findall(template)}
    if slots != set(range(1, len(params) + 1)):
        return _error(
            "FailedOperation.TemplateParamSetNotMatchApprovedTemplate", "参数个数与模板不匹配"
        )
    for p in params:
        if state.variable_max_len is not None and len(p) > state.variable_max_len:
            return _error(
                "InvalidParameterValue.TemplateParameterLengthLimit", "单个模板变量字符数超过12个"
            )
        if state.forbid_urls and _URL.search(p):
            return _error(
                "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter",
                "禁止在模板变量中使用 URL",
            )
    text = f"【{sign}】" + _SLOT.sub(lambda m: params[int(m.group(1)) - 1], template)
    n = len(text.encode("utf-16-le")) // 2
    fee = 1 if n <= 70 else math.ceil(n / 67)
    if state.balance is not None and state.balance < fee * len(phones):
        return _error("FailedOperation.InsufficientBalanceInSmsPackage", "套餐包余量不足")
    now, statuses = state.now(), []
    for raw in phones:
        statuses.append(_one_number(state, data, str(raw), text, params, fee, now))
    return web.json_response(
        {"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}}
    )


def _one_number(
    state: TencentState,
    data: dict[str, Any],
    raw: str,
    text: str,
    params: list[str],
    fee: int,
    now: float,
) -> dict[str, Any]:
    base = {
        "SerialNo": "",
        "PhoneNumber": raw,
        "Fee": 0,
        "SessionContext": data.get("SessionContext", ""),
        "IsoCode": "CN",
    }
    m = _PHONE.match(raw)
    if m is None:
        return {
            **base,
            "Code": "InvalidParameterValue.IncorrectPhoneNumber",
            "Message": "手机号格式错误",
            "IsoCode": "DEF",
        }
    mobile = m.group(1)
    last = state.last_content.get((mobile, text))
    if last is not None and now - last < state.same_content_window:
        return {
            **base,
            "Code": "LimitExceeded.PhoneNumberThirtySecondLimit",
            "Message": "单个手机号30秒内下发短信条数超过设定的上限",
        }
    today = [t for t in state.daily[mobile] if now - t < DAY]
    state.daily[mobile] = today
    if len(today) >= state.daily_limit_per_number:
        return {
            **base,
            "Code": "LimitExceeded.PhoneNumberDailyLimit",
            "Message": "单个手机号日下发短信条数超过设定的上限",
        }
    if state.balance is not None:
        state.balance -= fee
    serial = f"2645:{next(state._serials):020d}"
    state.last_content[(mobile, text)] = now
    today.append(now)
    state.messages.append(
        SentMessage(
            raw,
            text,
            str(data.get("TemplateId")),
            params,
            serial,
            str(data.get("SessionContext", "")),
        )
    )
    return {**base, "SerialNo": serial, "Fee": fee, "Code": "Ok", "Message": "send success"}


STATE = web.AppKey("tencent_sms_state", TencentState)


def make_app(
    *,
    secret_id: str = "AKIDfakeSmsSecretId0001",
    secret_key: str = "fake-tencent-secret-key",
    sdk_app_id: str = "1400000001",
    sign_names: tuple[str, ...] = ("伊金霍洛旗政务公开",),
    templates: dict[str, str] | None = None,
    variable_max_len: int | None = 12,
    forbid_urls: bool = True,
    same_content_window: float = 30.0,
    daily_limit_per_number: int = 10,
    max_numbers: int = 200,
    balance: int | None = None,
    regions: tuple[str, ...] = ("ap-guangzhou", "ap-beijing", "ap-nanjing"),
) -> tuple[web.Application, TencentState]:
    state = TencentState(
        secret_id=secret_id,
        secret_key=secret_key,
        sdk_app_id=sdk_app_id,
        sign_names=set(sign_names),
        templates=templates or {"1001": "{1}政务公开：{2}，详情请登录政府网站查看（{3}）"},
        variable_max_len=variable_max_len,
        forbid_urls=forbid_urls,
        same_content_window=same_content_window,
        daily_limit_per_number=daily_limit_per_number,
        max_numbers=max_numbers,
        balance=balance,
        regions=set(regions),
    )
    app = web.Application()
    app[STATE] = state
    app.router.add_route("POST", "/", _handle)
    return app, state
