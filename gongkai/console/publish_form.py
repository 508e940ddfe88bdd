"""The publish form ⇄ the item file's data.

The form builds exactly the dict an item file or the API's JSON body would hold, so the one
validator (``parse_item`` + ``check_publishable`` + ingest's directory checks) judges all three
alike. An uploaded file fills the form; what the form has no input for (other languages,
extra catalog fields, unknown keys) rides along in a hidden JSON field, so nothing in the file is
silently dropped — and an unknown key is still refused by name, as the API would.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from multidict import MultiMapping

from gongkai.domain.items import FieldError
from gongkai.web.inputs import BodyRefused, parse_json

TEXT_FIELDS = (
    "id",
    "kind",
    "title",
    "doc_number",
    "issuer",
    "issued_at",
    "approved_by",
    "disclosure",
    "domain",
    "interprets",
    "summary",
    "body",
    "redacted_body",
)
TIME_FIELDS = ("approved_at", "publish_at")
BOOL_FIELDS = ("secrecy_reviewed", "urgent")
LIST_FIELDS = ("regions", "channels")
CATALOG_KEYS = (
    "name",
    "content",
    "basis",
    "time_limit",
    "subject",
    "channels",
    "audience",
    "method",
)
CATALOG_LABELS = {
    "name": "名称",
    "content": "内容",
    "basis": "依据",
    "time_limit": "时限",
    "subject": "主体",
    "channels": "渠道",
    "audience": "公开对象",
    "method": "方式",
}
FORM_LANGUAGES = ("mn", "ug")
TR_KEYS = ("title", "summary", "body")
MANAGED = {*TEXT_FIELDS, *TIME_FIELDS, *BOOL_FIELDS, *LIST_FIELDS, "catalog", "translations"}


@dataclass
class FormValues:
    """What the form shows: text per input name, selections, and the leftovers as JSON."""

    text: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    checked: set[str] = field(default_factory=set)
    extra_json: str = ""

    def get(self, name: str) -> str:
        return self.text.get(name, "")


def _clean(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def local_to_iso(value: str, tz: ZoneInfo) -> str:
    """A ``datetime-local`` value is wall-clock time in the service's zone; give it the offset."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value  # the validator names the field and says what it wants
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.isoformat()


def iso_to_local(value: Any, tz: ZoneInfo) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            try:
                value = value.astimezone(tz)
            except (OverflowError, ValueError):  # year 1 or 9999: the validator names it
                return value.isoformat()
        return value.strftime("%Y-%m-%dT%H:%M")
    return "" if value is None else str(value)


def form_to_data(form: MultiMapping[Any], tz: ZoneInfo) -> dict[str, Any]:
    def text(name: str) -> str:
        value = form.get(name)
        return _clean(value) if isinstance(value, str) else ""

    data: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        if text(name):
            data[name] = text(name)
    for name in TIME_FIELDS:
        if text(name):
            data[name] = local_to_iso(text(name), tz)
    for name in BOOL_FIELDS:
        data[name] = name in form
    for name in LIST_FIELDS:
        chosen = [v.strip() for v in form.getall(name, []) if isinstance(v, str) and v.strip()]
        if chosen:
            data[name] = chosen
    catalog = {k: text(f"catalog.{k}") for k in CATALOG_KEYS if text(f"catalog.{k}")}
    translations: dict[str, dict[str, str]] = {}
    for lang in FORM_LANGUAGES:
        tr = {k: text(f"tr.{lang}.{k}") for k in TR_KEYS if text(f"tr.{lang}.{k}")}
        if tr:
            translations[lang] = tr
    extra = _extra(text("extra_json"))
    catalog = {**extra.pop("catalog", {}), **catalog}
    translations = {**extra.pop("translations", {}), **translations}
    if catalog:
        data["catalog"] = catalog
    if translations:
        data["translations"] = translations
    for key, value in extra.items():
        data.setdefault(key, value)
    return data


def _extra(raw: str) -> dict[str, Any]:
    """The hidden field comes back from the browser, so it is read as untrusted JSON."""
    try:
        value = parse_json(raw.encode("utf-8", "replace")) if raw else {}
    except BodyRefused:
        return {}
    return value if isinstance(value, dict) else {}


def data_to_form(data: dict[str, Any], tz: ZoneInfo) -> FormValues:
    values = FormValues()
    extra: dict[str, Any] = {}
    for key, value in data.items():
        if key not in MANAGED:
            extra[key] = value
    for name in TEXT_FIELDS:
        value = data.get(name)
        if value is not None:
            values.text[name] = value.isoformat() if isinstance(value, date) else str(value)
    for name in TIME_FIELDS:
        if data.get(name) is not None:
            values.text[name] = iso_to_local(data[name], tz)
    for name in BOOL_FIELDS:
        if data.get(name) is True:
            values.checked.add(name)
    for name in LIST_FIELDS:
        value = data.get(name)
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            values.lists[name] = [str(v) for v in value]
        elif value is not None:
            extra[name] = value
    catalog = data.get("catalog")
    if isinstance(catalog, dict):
        for key, value in catalog.items():
            if key in CATALOG_KEYS and isinstance(value, str):
                values.text[f"catalog.{key}"] = value
            else:
                extra.setdefault("catalog", {})[key] = value
    elif catalog is not None:
        extra["catalog"] = catalog
    translations = data.get("translations")
    if isinstance(translations, dict):
        for lang, tr in translations.items():
            if lang in FORM_LANGUAGES and isinstance(tr, dict) and set(tr) <= set(TR_KEYS):
                for key, value in tr.items():
                    values.text[f"tr.{lang}.{key}"] = "" if value is None else str(value)
            else:
                extra.setdefault("translations", {})[lang] = tr
    elif translations is not None:
        extra["translations"] = translations
    values.extra_json = json.dumps(extra, ensure_ascii=False, default=str) if extra else ""
    return values


_INDEX = re.compile(r"\[\d+\]$")


def input_for(error_field: str) -> str:
    """The form input an error belongs next to (``regions[0]`` → ``regions``)."""
    if error_field == "(file)":
        return error_field
    parts = _INDEX.sub("", error_field).split(".")
    head = parts[0]
    if head in LIST_FIELDS:
        return head
    if head == "translations" and len(parts) >= 3 and parts[1] in FORM_LANGUAGES:
        return f"tr.{parts[1]}.{parts[2]}"
    if head == "catalog" and len(parts) >= 2 and parts[1] in CATALOG_KEYS:
        return f"catalog.{parts[1]}"
    if head in MANAGED - {"catalog", "translations"}:
        return head
    return "(form)"


def errors_by_input(errors: list[FieldError]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in errors:
        out.setdefault(input_for(e.field), []).append(e.message)
    return out


def field_id(name: str) -> str:
    special = {"(file)": "f-item_file", "(form)": "publish-form"}
    return special.get(name) or "f-" + name.replace(".", "-")


def error_links(errors: list[FieldError]) -> list[tuple[str, str, str]]:
    """(field, message, the id of the input to jump to) for the summary above the form."""
    return [(e.field, e.message, field_id(input_for(e.field))) for e in errors]
