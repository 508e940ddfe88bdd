"""The item file, its validation, and the rules that refuse what may not be published.

Every refusal names its field so a publisher can fix the file without reading code; the same
errors reach the API (422 JSON), the CLI (plain text, non-zero exit) and the console form.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gongkai.domain import safe_yaml
from gongkai.domain.bounds import (
    MAX_CATALOG_EXTRA_KEYS,
    MAX_LIST,
    MAX_SUMMARY,
    MAX_TRANSLATIONS,
    Body,
    OneLine,
    Summary,
    Title,
    TranslatedTitle,
    WindowDate,
    WindowDatetime,
    control_problem,
)
from gongkai.domain.catalog import (
    DISCLOSURE_LABELS,
    DOMAIN_ALIASES,
    DOMAINS,
    OTHER_DOMAIN,
    PUSHABLE_DISCLOSURE,
)
from gongkai.domain.pii import find_personal_numbers, mask_numbers

MAX_FINDINGS_SHOWN = 10  # per field: a body full of numbers is one answer, not a 5 MB one


class FieldError(BaseModel):
    field: str
    message: str


class ItemRefused(Exception):
    """The item may not be ingested; ``errors`` names each bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors

    def as_json(self) -> dict[str, Any]:
        return {"error": "invalid item", "errors": [e.model_dump() for e in self.errors]}


class Catalog(BaseModel):
    """标准目录要素 (seeds 000, 002, 004); all optional."""

    model_config = ConfigDict(extra="allow")
    name: Summary | None = None
    content: Summary | None = None
    basis: Summary | None = None
    time_limit: Summary | None = None
    subject: Summary | None = None
    channels: Summary | None = None
    audience: Summary | None = None
    method: Summary | None = None

    @model_validator(mode="after")
    def _bounded_extras(self) -> Catalog:
        """Extra elements are kept as given, so they must be plain, small and finite: a value
        nested hundreds deep or a float of 1e400 would break the hash and the JSON column."""
        extras = self.model_extra or {}
        if len(extras) > MAX_CATALOG_EXTRA_KEYS:
            raise ValueError(f"最多 {MAX_CATALOG_EXTRA_KEYS} 个附加要素 / too many catalog fields")
        for key, value in extras.items():
            problem = _plain_value_problem(value)
            if len(key) > 64 or control_problem(key, multiline=False):
                problem = "要素名过长或含控制字符 / bad catalog field name"
            if problem:
                raise ValueError(f"{key}: {problem}")
        return self


class Translation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: TranslatedTitle | None = None
    summary: Summary | None = None
    body: Body | None = None


class WechatOptions(BaseModel):
    """Scarce WeChat pushes an item may ask for besides the article itself."""

    model_config = ConfigDict(extra="forbid")
    mass_send: bool = False  # 群发: notifies followers, spends the account's small quota
    # mass send to one follower tag instead of everyone (WeChat's tagid is an int32)
    tag_id: int | None = Field(default=None, ge=0, le=2**31 - 1)
    template_push: bool = False  # a template message to followers subscribed to the domain


class ItemIn(BaseModel):
    """The item file (YAML or JSON) and the JSON body of ``POST /api/v1/items``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    kind: Literal["policy", "interpretation", "notice"]
    title: Title
    doc_number: OneLine | None = None
    issuer: OneLine | None = None
    issued_at: WindowDate
    approved_by: OneLine | None = None
    approved_at: WindowDatetime | None = None
    secrecy_reviewed: bool = False
    disclosure: Literal["public", "public_redacted", "on_request", "not_public"]
    domain: OneLine
    regions: list[OneLine] = Field(min_length=1, max_length=MAX_LIST)
    channels: list[OneLine] | None = Field(default=None, max_length=32)
    urgent: bool = False
    publish_at: WindowDatetime | None = None
    interprets: OneLine | None = None
    summary: Summary = ""
    body: Body = ""
    redacted_body: Body | None = None
    catalog: Catalog = Field(default_factory=Catalog)
    translations: dict[str, Translation] = Field(default_factory=dict, max_length=MAX_TRANSLATIONS)
    wechat: WechatOptions | None = None

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = DOMAIN_ALIASES.get(value, value)
        if value not in DOMAINS and value != OTHER_DOMAIN:
            raise ValueError(f"'{value}' 不是26个试点领域之一，也不是“其他” / not a pilot domain")
        return value

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        for code in value:
            if not (code.isdigit() and len(code) in (2, 4, 6, 9, 12)):
                raise ValueError(f"'{code}' 不是区划代码 / not a division code (6, 9 or 12 digits)")
        return value

    @field_validator("translations")
    @classmethod
    def _languages(cls, value: dict[str, Translation]) -> dict[str, Translation]:
        for lang in value:
            if not (2 <= len(lang) <= 8 and lang.replace("-", "").isalpha()):
                raise ValueError(f"'{lang}' 不是语言代码 / not a language code")
        return value

    @field_validator("approved_at", "publish_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError(
                "需要带时区的时间，例如 2026-11-20T09:30:00+08:00 / needs a UTC offset"
            )
        return value

    def content_hash(self) -> str:
        """Defaults are left out, so a field added in a later release does not change the hash
        of an item sent before it (re-sending it stays idempotent)."""
        data = self.model_dump(mode="json", exclude_defaults=True)
        return hashlib.sha256(
            json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
        ).hexdigest()


def _plain_value_problem(value: Any, depth: int = 0) -> str | None:
    """Why an extra catalog value is refused: only text, numbers, booleans, null and short
    lists of those, as a catalog element is shown, never interpreted."""
    if value is None or isinstance(value, bool | int):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63 - 1:
            return "数值超出范围 / number out of range"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "数值超出范围 / number out of range"
    if isinstance(value, str):
        if len(value) > MAX_SUMMARY:
            return f"超过 {MAX_SUMMARY} 个字符 / longer than {MAX_SUMMARY} characters"
        return control_problem(value, multiline=True)
    if isinstance(value, list) and depth == 0:
        if len(value) > 100:
            return "列表过长 / list too long"
        for element in value:
            problem = _plain_value_problem(element, depth + 1)
            if problem:
                return problem
        return None
    return "只能是文字、数字或它们的列表 / only text, numbers or a list of them"


def check_publishable(item: ItemIn, known_channels: list[str]) -> None:
    """The rules no publisher may bypass (domain.md rules 3, 4 and the disclosure attribute)."""
    errors: list[FieldError] = []

    def refuse(field: str, message: str) -> None:
        errors.append(FieldError(field=field, message=message))

    if item.disclosure not in PUSHABLE_DISCLOSURE:
        refuse(
            "disclosure",
            f"“{DISCLOSURE_LABELS[item.disclosure]}”的文件不能主动推送 / "
            f"{item.disclosure} items are never pushed",
        )
    if item.disclosure == "public_redacted" and not (item.redacted_body or "").strip():
        refuse(
            "redacted_body",
            "删减后公开的文件必须提供删减后的正文 / a redacted item needs its redacted text",
        )
    if not (item.approved_by or "").strip():
        refuse("approved_by", "未记录审核人，不能发布 / approval is required")
    if item.approved_at is None:
        refuse("approved_at", "未记录审核时间 / approval time is required")
    if not item.secrecy_reviewed:
        refuse("secrecy_reviewed", "未经保密审查，不能发布 / the secrecy review is required")
    if item.kind == "interpretation" and not item.interprets:
        refuse("interprets", "政策解读必须指明所解读的政策 / an interpretation names its policy")
    if item.kind != "interpretation" and item.interprets:
        refuse("interprets", "只有政策解读可以填写 interprets / only interpretations interpret")
    if not (item.body.strip() or item.summary.strip()):
        refuse("body", "正文和摘要不能都为空 / body and summary are both empty")
    for channel in item.channels or []:
        if channel not in known_channels:
            refuse(
                "channels",
                f"未知渠道 '{channel}' / unknown channel; known: {', '.join(known_channels)}",
            )

    for field, text, in_key in published_texts(item):
        findings = find_personal_numbers(text)
        for finding in findings[:MAX_FINDINGS_SHOWN]:
            what = "身份证号" if finding.kind == "id_card" else "手机号"
            where = "键名" if in_key else ""
            refuse(
                field,
                f"{where}含未脱敏的{what} {finding.masked}（第{finding.position + 1}个字符处）/ "
                f"unmasked {finding.kind.replace('_', ' ')} number"
                + (" in the key" if in_key else ""),
            )
        if len(findings) > MAX_FINDINGS_SHOWN:
            more = len(findings) - MAX_FINDINGS_SHOWN
            refuse(field, f"另有 {more} 处未脱敏的号码 / {more} more unmasked numbers")
    if errors:
        raise ItemRefused(errors)


def published_texts(item: ItemIn) -> Iterator[tuple[str, str, bool]]:
    """(field, text, whether it is a key) for every piece of text in the item.

    Every field, not a list of the ones that are "content": an issuer, a document number, a
    catalog entry and the id itself (it is in every link) reach the public as surely as the
    body, and a list of fields goes stale when a field is added. The exception is the body of
    a ``public_redacted`` item, the original behind the redaction, which is never published.
    Catalog values may be numbers (YAML reads ``联系电话: 13812345678`` as one).
    """
    data = item.model_dump(mode="python", exclude={"wechat"})
    if item.disclosure == "public_redacted":
        data.pop("body", None)
    for name, value in data.items():
        yield from _texts(name, value, numbers=name == "catalog")


def _texts(field: str, value: Any, *, numbers: bool) -> Iterator[tuple[str, str, bool]]:
    if isinstance(value, str):
        yield field, value, False
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        if numbers:
            yield field, str(value), False
    elif isinstance(value, dict):
        for key, inner in value.items():
            path = f"{field}.{mask_numbers(str(key))}"
            yield path, str(key), True
            yield from _texts(path, inner, numbers=numbers)
    elif isinstance(value, list | tuple):
        for i, inner in enumerate(value):
            yield from _texts(f"{field}[{i}]", inner, numbers=numbers)


def parse_item(data: Any) -> ItemIn:
    """Validate raw data (a dict from YAML or JSON) into an item, or raise ItemRefused."""
    if not isinstance(data, dict):
        raise ItemRefused([FieldError(field="(file)", message="应为一个映射 / expected a mapping")])
    try:
        return ItemIn.model_validate(data)
    except ValidationError as exc:
        raise ItemRefused(pydantic_errors(exc)) from None


def load_item_file(text: str) -> ItemIn:
    try:
        data = safe_yaml.load(text, max_depth=32, max_nodes=100_000)  # JSON is YAML too
    except yaml.YAMLError as exc:
        raise ItemRefused(
            [FieldError(field="(file)", message=f"无法解析 / cannot parse: {exc}")]
        ) from None
    return parse_item(data)


def pydantic_errors(exc: ValidationError, whole: str = "(item)") -> list[FieldError]:
    """pydantic's errors as the field list every door answers with; ``whole`` names an error
    about the document as a whole."""
    out = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or whole
        msg = err["msg"]
        if err["type"] == "missing":
            msg = "必填 / required"
        elif err["type"] == "extra_forbidden":
            msg = "未知字段 / unknown field"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        out.append(FieldError(field=field, message=msg))
    return out
