"""What Aliyun's and Tencent's answers mean: sent, worth another try, or never.

Pure functions over the decoded answer, beside the signing in ``sms_providers``: a request
accepted is a SentPart, anything else raises TransientError (with how long to wait when the
provider says) or PermanentError (with what to fix).
"""

from __future__ import annotations

from typing import Any

from gongkai.channels.base import PermanentError, SentPart, TransientError
from gongkai.channels.sms_providers import ALIYUN, TENCENT, mask

# Aliyun answers business errors with HTTP 200 and a Code; these are worth another try.
_ALIYUN_TRANSIENT: dict[str, float | None] = {
    "Throttling": 1.0,
    "Throttling.User": 1.0,
    "Throttling.Api": 1.0,
    "ServiceUnavailable": 5.0,
    "InternalError": 5.0,
    "isp.SYSTEM_ERROR": 5.0,
    "SignatureNonceUsed": 1.0,  # our nonce is random; a retry gets a fresh one
    "isv.DAY_LIMIT_CONTROL": 3600.0,  # the account's own daily cap, set in the console
    "isv.MONTH_LIMIT_CONTROL": 3600.0,
}

_ALIYUN_PERMANENT_HINTS = {
    "isv.AMOUNT_NOT_ENOUGH": "account out of credit",
    "isv.OUT_OF_SERVICE": "account out of credit (service stopped)",
    "isv.MOBILE_NUMBER_ILLEGAL": "a phone number was refused",
    "isv.SMS_TEMPLATE_ILLEGAL": "template code unknown or not approved",
    "isv.SMS_SIGNATURE_ILLEGAL": "sign name unknown or not approved",
    "isv.TEMPLATE_MISSING_PARAMETERS": "the template needs a variable we did not fill",
    "isv.PARAM_LENGTH_LIMIT": "a template variable is longer than the provider allows",
    "InvalidAccessKeyId.NotFound": "access key id unknown",
    "SignatureDoesNotMatch": "access key secret wrong",
    "InvalidTimeStamp.Expired": "the server clock is off by more than 15 minutes",
}


def _business_limit_retry(message: str) -> float:
    """isv.BUSINESS_LIMIT_CONTROL says which window was hit (分钟级/小时级/天级流控)."""
    if "分钟" in message:
        return 60.0
    return 3600.0  # hour or (rolling 24 h) day window: retrying sooner is pointless


def aliyun_verdict(status: int, data: dict[str, Any] | None, phones: list[str]) -> SentPart:
    """SentPart for an accepted request, else raise. Aliyun's answer is all-or-nothing for
    the request: per-number results only arrive later as receipts."""
    if data is None or "Code" not in data:
        if status >= 500 or status == 429:
            raise TransientError(f"aliyun: HTTP {status}")
        raise PermanentError(f"aliyun: unexpected answer (HTTP {status})")
    code = str(data.get("Code"))
    message = str(data.get("Message") or "")
    request_id = data.get("RequestId")
    if code == "OK":
        return SentPart(
            provider_message_id=data.get("BizId"),
            extra={"provider": ALIYUN, "request_id": request_id, "accepted": len(phones)},
        )
    text = f"aliyun {code}: {message}".strip()
    if code == "isv.BUSINESS_LIMIT_CONTROL":
        raise TransientError(text, retry_after=_business_limit_retry(message))
    if code in _ALIYUN_TRANSIENT or status >= 500:
        raise TransientError(text, retry_after=_ALIYUN_TRANSIENT.get(code))
    hint = _ALIYUN_PERMANENT_HINTS.get(code)
    raise PermanentError(f"{text} ({hint})" if hint else text)


# Tencent: request-level error codes (Response.Error) worth another try.
_TENCENT_TRANSIENT_PREFIXES = ("RequestLimitExceeded", "InternalError", "ResourceUnavailable")
_TENCENT_TRANSIENT = {
    "LimitExceeded.AppDailyLimit": 3600.0,
    "LimitExceeded.AppMainlandChinaDailyLimit": 3600.0,
    "LimitExceeded.DeliveryFrequencyLimit": 60.0,
}
_TENCENT_PERMANENT_REQUEST = ("InternalError.SigVerificationFail", "InternalError.OtherError")
_TENCENT_HINTS = {
    "AuthFailure.SignatureFailure": "secret key wrong",
    "AuthFailure.SecretIdNotFound": "secret id unknown",
    "AuthFailure.SignatureExpire": "the server clock is off by more than 5 minutes",
    "FailedOperation.InsufficientBalanceInSmsPackage": "account out of credit",
    "FailedOperation.SignatureIncorrectOrUnapproved": "sign name unknown or not approved",
    "FailedOperation.TemplateIncorrectOrUnapproved": "template unknown or not approved",
    "InvalidParameterValue.TemplateParameterLengthLimit": "a template variable is too long",
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter": "URLs are refused in variables",
}
# Per-number codes in SendStatusSet that clear by themselves (seconds until worth retrying).
_TENCENT_NUMBER_TRANSIENT = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
    "LimitExceeded.PhoneNumberDailyLimit": 3600.0,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": 3600.0,
    "InternalError.Timeout": 5.0,
}


def _tencent_request_error(error: dict[str, Any]) -> None:
    code = str(error.get("Code"))
    text = f"tencent {code}: {error.get('Message', '')}".strip()
    if code in _TENCENT_TRANSIENT:
        raise TransientError(text, retry_after=_TENCENT_TRANSIENT[code])
    if code.startswith(_TENCENT_TRANSIENT_PREFIXES) and code not in _TENCENT_PERMANENT_REQUEST:
        raise TransientError(text, retry_after=1.0 if code.startswith("Request") else 5.0)
    hint = _TENCENT_HINTS.get(code)
    raise PermanentError(f"{text} ({hint})" if hint else text)


def tencent_verdict(status: int, data: dict[str, Any] | None, phones: list[str]) -> SentPart:
    """One request, per-number results. Once any number is accepted the part counts as sent
    (never retried: Tencent does not deduplicate); the refused ones go into ``extra``."""
    response = data.get("Response") if isinstance(data, dict) else None
    if not isinstance(response, dict):
        if status >= 500 or status == 429:
            raise TransientError(f"tencent: HTTP {status}")
        raise PermanentError(f"tencent: unexpected answer (HTTP {status})")
    if "Error" in response:
        _tencent_request_error(response["Error"])
    statuses = response.get("SendStatusSet") or []
    index_of = {p: i for i, p in enumerate(phones)}
    accepted, fee = 0, 0
    failed: list[tuple[int, str, str, str]] = []  # index, masked, code, message
    for s in statuses:
        number = str(s.get("PhoneNumber", ""))
        if s.get("Code") == "Ok":
            accepted += 1
            fee += int(s.get("Fee") or 0)
        else:
            failed.append(
                (index_of.get(number, -1), mask(number), str(s.get("Code")), str(s.get("Message")))
            )
    request_id = response.get("RequestId")
    if accepted == 0:
        codes = sorted({f[2] for f in failed}) or ["no status returned"]
        text = f"tencent refused every number: {', '.join(codes)}"
        waits = [_TENCENT_NUMBER_TRANSIENT[c] for c in codes if c in _TENCENT_NUMBER_TRANSIENT]
        if waits:  # nothing was accepted, so another try cannot send anything twice
            raise TransientError(text, retry_after=max(waits))
        raise PermanentError(text)
    extra: dict[str, Any] = {
        "provider": TENCENT,
        "request_id": request_id,
        "accepted": accepted,
        "fee": fee,
    }
    if failed:
        extra["failed"] = [f"{m} {c}" for _, m, c, _ in failed]
        extra["failed_index"] = [i for i, *_ in failed]
        extra["note"] = (
            f"sms: {len(failed)} of {len(phones)} numbers refused by tencent "
            f"({', '.join(sorted({c for _, _, c, _ in failed}))}); the others were sent"
        )
    return SentPart(provider_message_id=request_id, extra=extra)


def aliyun_sent_with(data: dict[str, Any] | None, out_id: str) -> bool:
    """Does a QuerySendDetails answer hold a send carrying our ``OutId``?"""
    if not data or data.get("Code") != "OK":
        return False
    details = (data.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
    return any(str(d.get("OutId") or "") == out_id for d in details if isinstance(d, dict))
