"""A fake Aliyun Dysms endpoint (dysmsapi.aliyuncs.com) that keeps Aliyun's rules.

It speaks RPC style on ``/`` (GET query or POST form), verifies the signature v1 with its own
code (not the client's), refuses stale timestamps (±15 min) and replayed nonces, and enforces
the SendSms rules: ≤ 1000 numbers, mainland mobiles only (one bad number fails the request),
known sign name and template, every template variable present and within the length limit,
credit, and the per-number limit (50 a day per sign + template + number). Error shapes follow
Aliyun: gateway errors with HTTP 4xx, business errors with HTTP 200 and an ``isv.*`` Code.
QuerySendDetails lists one number's sends of one Beijing day (1–50 a page) with their OutId.

Unconfirmed, and modelled conservatively: when only some numbers of a batch are over their
limit Aliyun still answers OK and reports those numbers later in receipts (``state.receipts``);
when every number is over the limit the request fails with isv.BUSINESS_LIMIT_CONTROL.

Test hooks: ``state.fail_next(code)``, ``state.answer_late(seconds)``, ``state.records_lag``
(QuerySendDetails lists nothing yet), ``state.advance(seconds)``, ``state.texts_to(phone)``.
"""

from __future__ import annotations

import asyncio
import base64
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
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from aiohttp import web

_MOBILE = re.compile(r"^(?:\+86|0086|86)?(1[3-9][0-9]{9})$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_REQUIRED = (  # of every request
    "AccessKeyId",
    "Action",
    "Signature",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "Timestamp",
    "Version",
)
_REQUIRED_BY_ACTION = {
    "SendSms": ("PhoneNumbers", "SignName", "TemplateCode"),
    "QuerySendDetails": ("PhoneNumber", "SendDate", "PageSize", "CurrentPage"),
}
DAY = 86_400.0


@dataclass
class SentMessage:
    phone: str
    text: str
    sign_name: str
    template_code: str
    params: dict[str, str]
    biz_id: str
    out_id: str | None
    at: float = 0.0


@dataclass
class AliyunState:
    access_key_id: str
    access_key_secret: str
    sign_names: set[str]
    templates: dict[str, str]
    variable_max_len: int
    per_number_daily_limit: int
    max_numbers: int
    balance: int | None  # billable segments left; None = unlimited
    offset: float = 0.0
    messages: list[SentMessage] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    receipts: list[dict[str, Any]] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    history: dict[tuple[str, str, str], list[float]] = field(
        default_factory=lambda: defaultdict(list)
    )
    forced: list[tuple[int, str, str]] = field(default_factory=list)
    late: list[float] = field(default_factory=list)
    records_lag: bool = False  # QuerySendDetails does not list sends yet (as Aliyun can)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(900_000_000))

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def fail_next(self, code: str, message: str = "", status: int = 200) -> None:
        """The next signed, well-formed request is answered with this error."""
        self.forced.append((status, code, message or code))

    def answer_late(self, seconds: float) -> None:
        """The next SendSms is carried out, but its answer leaves only after ``seconds``: what
        a client whose own timeout is shorter sees as a request lost in the network."""
        self.late.append(seconds)

    def texts_to(self, phone: str) -> list[str]:
        return [m.text for m in self.messages if m.phone == phone]

    @property
    def accepted_requests(self) -> int:
        return len({m.biz_id for m in self.messages})


def _pct(value: str) -> str:
    # Aliyun POP encoding: UTF-8, unreserved A-Za-z0-9-_.~ kept, everything else %XX.
    return quote(value.encode("utf-8"), safe="-_.~")


def expected_signature(method: str, params: dict[str, str], secret: str) -> str:
    query = "&".join(f"{_pct(k)}={_pct(params[k])}" for k in sorted(params) if k != "Signature")
    to_sign = method + "&" + _pct("/") + "&" + _pct(query)
    mac = hmac.new(f"{secret}&".encode(), to_sign.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def _chars(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _segments(text: str) -> int:
    n = _chars(text)
    return 1 if n <= 70 else math.ceil(n / 67)


def _error(state: AliyunState, status: int, code: str, message: str) -> web.Response:
    body = {"Code": code, "Message": message, "RequestId": str(uuid.uuid4()).upper()}
    if status != 200:
        body["HostId"] = "dysmsapi.aliyuncs.com"
        body["Recommend"] = f"https://api.aliyun.com/troubleshoot?q={code}"
    return web.json_response(body, status=status)


async def _handle(request: web.Request) -> web.Response:
    state: AliyunState = request.app[STATE]
    params: dict[str, str] = dict(request.query)
    if request.method == "POST":
        params.update({k: str(v) for k, v in (await request.post()).items()})
    state.requests.append(params)
    for name in (*_REQUIRED, *_REQUIRED_BY_ACTION.get(params.get("Action", ""), ())):
        if not params.get(name):
            return _error(state, 400, f"Missing{name}", f"{name} is mandatory for this action.")
    if params["AccessKeyId"] != state.access_key_id:
        return _error(
            state, 404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
        )
    if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
        return _error(
            state, 400, "InvalidSignatureMethod", "Specified signature method is not valid."
        )
    try:
        stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return _error(state, 400, "InvalidTimeStamp.Format", "Specified time stamp is not valid.")
    if abs(stamp.timestamp() - state.now()) > 15 * 60:
        return _error(
            state, 400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
        )
    expected = expected_signature(request.method, params, state.access_key_secret)
    if not hmac.compare_digest(expected, params["Signature"]):
        return _error(
            state,
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
        )
    if params["SignatureNonce"] in state.nonces:
        return _error(
            state, 400, "SignatureNonceUsed", "Specified signature nonce was used already."
        )
    state.nonces.add(params["SignatureNonce"])
    if params["Action"] not in ("SendSms", "QuerySendDetails"):
        return _error(state, 400, "InvalidAction.NotFound", "Specified api is not found.")
    if params["Version"] != "2017-05-25":
        return _error(state, 400, "InvalidVersion", "Specified parameter Version is not valid.")
    if params["Action"] == "QuerySendDetails":
        return _query_send_details(state, params)
    if state.forced:
        return _error(state, *state.forced.pop(0))
    response = _send_sms(state, params)
    if state.late:
        await asyncio.sleep(state.late.pop(0))
    return response


BEIJING = timezone(timedelta(hours=8))


def _query_send_details(state: AliyunState, params: dict[str, str]) -> web.Response:
    """One number's sends on one Beijing day, 1–50 a page, each with its OutId."""
    phone, day = params.get("PhoneNumber", ""), params.get("SendDate", "")
    if not phone or "," in phone:
        return _error(state, 200, "isv.MOBILE_NUMBER_ILLEGAL", "PhoneNumber must be one number")
    if not re.fullmatch(r"\d{8}", day):
        return _error(state, 200, "isv.InvalidParameter", "SendDate must be yyyyMMdd")
    try:
        size, page = int(params.get("PageSize", "")), int(params.get("CurrentPage", ""))
    except ValueError:
        return _error(state, 200, "isv.InvalidParameter", "PageSize and CurrentPage are required")
    if not 1 <= size <= 50 or page < 1:
        return _error(state, 200, "isv.InvalidParameter", "PageSize must be 1-50")

    def beijing(at: float) -> datetime:
        return datetime.fromtimestamp(at, BEIJING)

    found = [
        m
        for m in state.messages
        if m.phone == phone and beijing(m.at).strftime("%Y%m%d") == day and not state.records_lag
    ]
    shown = found[(page - 1) * size : page * size]
    details = [
        {
            "PhoneNum": m.phone,
            "SendStatus": 3,
            "ErrCode": "DELIVERED",
            "TemplateCode": m.template_code,
            "Content": m.text,
            "SendDate": beijing(m.at).strftime("%Y-%m-%d %H:%M:%S"),
            "ReceiveDate": beijing(m.at).strftime("%Y-%m-%d %H:%M:%S"),
            "OutId": m.out_id or "",
        }
        for m in shown
    ]
    return web.json_response(
        {
            "Code": "OK",
            "Message": "OK",
            "RequestId": str(uuid.uuid4()).upper(),
            "TotalCount": len(found),
            "SmsSendDetailDTOs": {"SmsSendDetailDTO": details},
        }
    )


def _send_sms(state: AliyunState, params: dict[str, str]) -> web.Response:
    raw_numbers = params["PhoneNumbers"].split(",")
    if len(raw_numbers) > state.max_numbers:
        return _error(state, 200, "isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制")
    phones: list[str] = []
    for raw in raw_numbers:
        m = _MOBILE.match(raw.strip())
        if m is None:
            return _error(state, 200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        phones.append(m.group(1))
    sign, code = params["SignName"], params["TemplateCode"]
    if sign not in state.sign_names:
        return _error(state, 200, "isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
    template = state.templates.get(code)
    if template is None:
        return _error(state, 200, "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
    try:
        values = json.loads(params.get("TemplateParam") or "{}")
    except ValueError:
        values = None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        return _error(state, 200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
    for name in _VAR.findall(template):
        if name not in values:
            return _error(state, 200, "isv.TEMPLATE_MISSING_PARAMETERS", f"模板缺少变量:{name}")
        if _chars(values[name]) > state.variable_max_len:
            return _error(state, 200, "isv.PARAM_LENGTH_LIMIT", f"参数超出长度限制:{name}")
    text = f"【{sign}】" + _VAR.sub(lambda m: values[m.group(1)], template)
    now = state.now()
    allowed, over = [], []
    for phone in phones:
        sent = [t for t in state.history[(sign, code, phone)] if now - t < DAY]
        state.history[(sign, code, phone)] = sent
        (over if len(sent) >= state.per_number_daily_limit else allowed).append(phone)
    if not allowed:
        return _error(
            state,
            200,
            "isv.BUSINESS_LIMIT_CONTROL",
            f"触发天级流控Permits:{state.per_number_daily_limit}",
        )
    cost = _segments(text) * len(allowed)
    if state.balance is not None:
        if state.balance < cost:
            return _error(state, 200, "isv.AMOUNT_NOT_ENOUGH", "账户余额不足")
        state.balance -= cost
    biz_id = f"{next(state._ids)}^0"
    for phone in allowed:
        state.history[(sign, code, phone)].append(now)
        state.messages.append(
            SentMessage(phone, text, sign, code, dict(values), biz_id, params.get("OutId"), now)
        )
    for phone in over:
        state.receipts.append(
            {
                "PhoneNum": phone,
                "BizId": biz_id,
                "SendStatus": 2,
                "ErrCode": "isv.BUSINESS_LIMIT_CONTROL",
                "OutId": params.get("OutId"),
            }
        )
    return web.json_response(
        {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": str(uuid.uuid4()).upper()}
    )


STATE = web.AppKey("aliyun_sms_state", AliyunState)


def make_app(
    *,
    access_key_id: str = "testid",
    access_key_secret: str = "testsecret",
    sign_names: tuple[str, ...] = ("伊金霍洛旗政务公开",),
    templates: dict[str, str] | None = None,
    variable_max_len: int = 35,
    per_number_daily_limit: int = 50,
    max_numbers: int = 1000,
    balance: int | None = None,
) -> tuple[web.Application, AliyunState]:
    """An app serving SendSms and its state. Templates use Aliyun's ``${name}`` variables."""
    state = AliyunState(
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
        sign_names=set(sign_names),
        templates=templates or {"SMS_000001": "${region}政务公开：${title}，详情见${link}"},
        variable_max_len=variable_max_len,
        per_number_daily_limit=per_number_daily_limit,
        max_numbers=max_numbers,
        balance=balance,
    )
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[STATE] = state
    app.router.add_route("GET", "/", _handle)
    app.router.add_route("POST", "/", _handle)
    return app, state
