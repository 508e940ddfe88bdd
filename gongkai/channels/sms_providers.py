"""Aliyun Dysms and Tencent Cloud SMS: phone numbers, signing and request building.

Pure functions over data (no I/O, no clock of their own) so the documented signature
examples can be checked byte for byte, and so the loudspeaker channel can reuse them to reach
a village committee by SMS. Facts: shared/spec/providers.md "SMS"; Aliyun RPC signature v1
(help.aliyun.com/document_detail/28839, 56189); Tencent TC3-HMAC-SHA256
(cloud.tencent.com/document/api/213/30654) and SendSms 2021-01-11 (382/55981). What their
answers mean is in ``sms_verdicts``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from gongkai.channels.base import PermanentError

ALIYUN = "aliyun"
TENCENT = "tencent"
PROVIDERS = (ALIYUN, TENCENT)

ALIYUN_VERSION = "2017-05-25"
ALIYUN_MAX_NUMBERS = 1000  # SendSms: PhoneNumbers, comma-separated
TENCENT_VERSION = "2021-01-11"
TENCENT_SERVICE = "sms"
TENCENT_MAX_NUMBERS = 200  # SendSms: PhoneNumberSet
TENCENT_CONTENT_TYPE = "application/json; charset=utf-8"

MAX_NUMBERS = {ALIYUN: ALIYUN_MAX_NUMBERS, TENCENT: TENCENT_MAX_NUMBERS}
# Unconfirmed limits (providers.md): a per-account setting, these are only the defaults.
DEFAULT_VARIABLE_MAX_LEN = {ALIYUN: 35, TENCENT: 12}

_MAINLAND_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")


# --- phone numbers ---------------------------------------------------------------------------


def mainland_mobile(value: str) -> str | None:
    """The 11-digit mainland mobile number, accepting the +86 / 0086 / 86 prefixes both
    providers accept; None when it is not one (one bad number fails a whole Aliyun batch)."""
    digits = re.sub(r"[\s\-()]", "", str(value))
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
            break
    else:
        if digits.startswith("86") and len(digits) == 13:
            digits = digits[2:]
    return digits if _MAINLAND_MOBILE.match(digits) else None


def e164(mobile: str) -> str:
    return "+86" + mobile


def mask(phone: str) -> str:
    """138****0000: how a number appears in logs, notes and the console."""
    digits = phone[3:] if phone.startswith("+86") else phone
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 8 else "****"


# --- Aliyun RPC signature v1 -------------------------------------------------------------------


def percent_encode(value: str) -> str:
    """RFC 3986 in UTF-8, keeping only A-Za-z0-9-_.~ (space → %20, * → %2A, ~ kept)."""
    return quote(value, safe="~")


def aliyun_string_to_sign(method: str, params: dict[str, str]) -> str:
    """``METHOD&%2F&pct(canonical query)``; ``Signature`` itself is never signed."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}"
        for k, v in sorted(params.items())
        if k != "Signature"
    )
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"


def aliyun_signature(method: str, params: dict[str, str], secret: str) -> str:
    """base64(HMAC-SHA1(secret + "&", StringToSign))."""
    digest = hmac.new(
        (secret + "&").encode("utf-8"),
        aliyun_string_to_sign(method, params).encode("utf-8"),
        hashlib.sha1,
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def aliyun_timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _aliyun_signed(
    account: dict[str, Any],
    action: str,
    fields: dict[str, str],
    *,
    timestamp: float,
    nonce: str,
    method: str,
) -> dict[str, str]:
    """An action's fields with the RPC common parameters, signed (signature v1)."""
    params = {
        "AccessKeyId": str(account["access_key_id"]),
        "Action": action,
        "Format": "JSON",
        "RegionId": "cn-hangzhou",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": nonce,
        "SignatureVersion": "1.0",
        "Timestamp": aliyun_timestamp(timestamp),
        "Version": ALIYUN_VERSION,
        **fields,
    }
    params["Signature"] = aliyun_signature(method, params, str(account["access_key_secret"]))
    return params


def aliyun_send_params(
    account: dict[str, Any],
    part: dict[str, Any],
    *,
    out_id: str,
    timestamp: float,
    nonce: str,
    method: str = "POST",
) -> dict[str, str]:
    """The complete, signed SendSms parameter set for one part (all numbers, same params)."""
    fields = {
        "OutId": out_id,
        "PhoneNumbers": ",".join(part["phones"]),
        "SignName": part["sign_name"],
        "TemplateCode": part["template_code"],
        "TemplateParam": json.dumps(part["params"], ensure_ascii=False, separators=(",", ":")),
    }
    return _aliyun_signed(
        account, "SendSms", fields, timestamp=timestamp, nonce=nonce, method=method
    )


def aliyun_query_params(
    account: dict[str, Any],
    *,
    phone: str,
    send_date: str,
    timestamp: float,
    nonce: str,
    method: str = "POST",
) -> dict[str, str]:
    """The signed QuerySendDetails parameter set: one number's sends on one day (yyyyMMdd)."""
    fields = {"CurrentPage": "1", "PageSize": "50", "PhoneNumber": phone, "SendDate": send_date}
    return _aliyun_signed(
        account, "QuerySendDetails", fields, timestamp=timestamp, nonce=nonce, method=method
    )


# --- Tencent TC3-HMAC-SHA256 ------------------------------------------------------------------


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac256(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def tc3_canonical_request(
    method: str,
    uri: str,
    query: str,
    headers: dict[str, str],
    signed_headers: list[str],
    payload: bytes,
) -> str:
    """Header names and values lower-cased and trimmed, in ``signed_headers`` order."""
    lowered = {k.lower(): v.strip().lower() for k, v in headers.items()}
    names = sorted(h.lower() for h in signed_headers)
    canonical_headers = "".join(f"{n}:{lowered[n]}\n" for n in names)
    return "\n".join(
        [method.upper(), uri, query, canonical_headers, ";".join(names), _sha256_hex(payload)]
    )


def tc3_date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def tc3_string_to_sign(timestamp: int, service: str, canonical_request: str) -> str:
    scope = f"{tc3_date(timestamp)}/{service}/tc3_request"
    return "\n".join(
        ["TC3-HMAC-SHA256", str(timestamp), scope, _sha256_hex(canonical_request.encode("utf-8"))]
    )


def tc3_signature(secret_key: str, timestamp: int, service: str, string_to_sign: str) -> str:
    secret_date = _hmac256(("TC3" + secret_key).encode("utf-8"), tc3_date(timestamp))
    secret_service = _hmac256(secret_date, service)
    secret_signing = _hmac256(secret_service, "tc3_request")
    return hmac.new(secret_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    *,
    service: str,
    timestamp: int,
    host: str,
    payload: bytes,
    content_type: str = TENCENT_CONTENT_TYPE,
) -> str:
    """The ``Authorization`` header of a POST / JSON request signing content-type and host."""
    signed = ["content-type", "host"]
    canonical = tc3_canonical_request(
        "POST", "/", "", {"content-type": content_type, "host": host}, signed, payload
    )
    signature = tc3_signature(
        secret_key, timestamp, service, tc3_string_to_sign(timestamp, service, canonical)
    )
    scope = f"{tc3_date(timestamp)}/{service}/tc3_request"
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature}"
    )


def tencent_credentials(account: dict[str, Any]) -> tuple[str, str]:
    secret_id = account.get("secret_id") or account.get("access_key_id")
    secret_key = account.get("secret_key") or account.get("access_key_secret")
    if not secret_id or not secret_key:
        raise PermanentError(f"sms account {account.get('name')}: secret_id/secret_key missing")
    return str(secret_id), str(secret_key)


def tencent_region(account: dict[str, Any]) -> str:
    """The API region. The directory also puts the account's county code under ``region``,
    so only a Tencent-looking value there counts."""
    explicit = account.get("tencent_region")
    if explicit:
        return str(explicit)
    region = str(account.get("region") or "")
    return region if region.startswith("ap-") else "ap-guangzhou"


def tencent_send_request(
    account: dict[str, Any],
    part: dict[str, Any],
    *,
    session_context: str,
    host: str,
    timestamp: int,
) -> tuple[dict[str, str], bytes]:
    """Headers and the exact body bytes of one signed SendSms request."""
    body = {
        "PhoneNumberSet": list(part["phones"]),
        "SmsSdkAppId": str(account["sdk_app_id"]),
        "TemplateId": str(part["template_code"]),
        "SignName": part["sign_name"],
        "TemplateParamSet": list(part["params"]),
        "SessionContext": session_context,
    }
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    secret_id, secret_key = tencent_credentials(account)
    headers = {
        "Authorization": tc3_authorization(
            secret_id,
            secret_key,
            service=TENCENT_SERVICE,
            timestamp=timestamp,
            host=host,
            payload=payload,
        ),
        "Content-Type": TENCENT_CONTENT_TYPE,
        "Host": host,
        "X-TC-Action": "SendSms",
        "X-TC-Version": TENCENT_VERSION,
        "X-TC-Timestamp": str(timestamp),
        "X-TC-Region": tencent_region(account),
    }
    return headers, payload
