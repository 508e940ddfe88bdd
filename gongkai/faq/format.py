"""The FAQ file (YAML): parsing with messages an editor can act on, and dumping that round-trips.

FAQ files are written by hand by county staff, so every error names the entry (by id when it has
one, else by position) and the field, instead of surfacing a YAML or Python traceback.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from gongkai.domain import safe_yaml

__all__ = [
    "FaqEntryData",
    "FaqEntryIn",
    "FaqFile",
    "FaqFormatError",
    "dump_faq_yaml",
    "parse_faq_yaml",
]

# `questions` is allowed so a FAQ file can carry its own labelled test questions.
_TOP_KEYS = {"synonyms", "entries", "questions"}
_ENTRY_KEYS = {"id", "question", "keywords", "answer", "answers", "domain", "regions"}
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_MAX_ID = 128  # FaqEntry.id column length
_MAX_WORD = 64  # FaqSynonym.word column length


@dataclass
class FaqEntryData:
    """One FAQ entry as data, independent of the database row that stores it."""

    id: str
    question: str
    keywords: list[str]
    answer: str
    answers: dict[str, str] = field(default_factory=dict)
    domain: str | None = None
    regions: list[str] = field(default_factory=list)


class FaqFormatError(ValueError):
    """Bad FAQ input; the message names the entry and field so the editor can fix it."""


def _where(index: int, raw: Any) -> str:
    if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"].strip():
        return f"entries[{index}] (id {raw['id'].strip()!r})"
    return f"entries[{index}]"


def _text(value: Any, where: str, name: str, *, required: bool) -> str:
    if value is None:
        if required:
            raise FaqFormatError(f"{where}: field '{name}' is missing")
        return ""
    if not isinstance(value, str):
        raise FaqFormatError(f"{where}: field '{name}' must be text, got {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise FaqFormatError(f"{where}: field '{name}' is empty")
    return value


def _text_list(value: Any, where: str, name: str, *, allow_numbers: bool = False) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]  # `keywords: 低保` is an obvious intent; accept it
    if not isinstance(value, list):
        raise FaqFormatError(f"{where}: field '{name}' must be a list, got {type(value).__name__}")
    out: list[str] = []
    for i, item in enumerate(value):
        if allow_numbers and isinstance(item, int) and not isinstance(item, bool):
            item = str(item)  # region codes written unquoted: 150627
        if not isinstance(item, str) or not item.strip():
            raise FaqFormatError(f"{where}: {name}[{i}] must be non-empty text, got {item!r}")
        item = item.strip()
        if item not in out:
            out.append(item)
    return out


def _entry(index: int, raw: Any, seen: dict[str, int]) -> FaqEntryData:
    where = _where(index, raw)
    if not isinstance(raw, dict):
        raise FaqFormatError(f"{where}: each entry must be a mapping with id, question, answer…")
    unknown = sorted(str(k) for k in raw if k not in _ENTRY_KEYS)
    if unknown:
        known = ", ".join(sorted(_ENTRY_KEYS))
        raise FaqFormatError(f"{where}: unknown field '{unknown[0]}' (known fields: {known})")
    entry_id = _text(raw.get("id"), where, "id", required=True)
    if len(entry_id) > _MAX_ID:
        raise FaqFormatError(f"{where}: field 'id' is longer than {_MAX_ID} characters")
    if entry_id in seen:
        raise FaqFormatError(
            f"{where}: duplicate id {entry_id!r} (first used by entries[{seen[entry_id]}])"
        )
    seen[entry_id] = index
    question = _text(raw.get("question"), where, "question", required=False)
    keywords = _text_list(raw.get("keywords"), where, "keywords", allow_numbers=True)
    if not keywords and not question:
        raise FaqFormatError(
            f"{where}: needs 'keywords' or 'question' to be matched on; both empty"
        )
    answer = _text(raw.get("answer"), where, "answer", required=True)
    answers_raw = raw.get("answers") or {}
    if not isinstance(answers_raw, dict):
        raise FaqFormatError(f"{where}: field 'answers' must map a language code to text")
    answers: dict[str, str] = {}
    for lang, text in answers_raw.items():
        if not isinstance(lang, str) or not _LANG.match(lang):
            raise FaqFormatError(f"{where}: answers: {lang!r} is not a language code like 'mn'")
        answers[lang] = _text(text, where, f"answers.{lang}", required=True)
    domain = _text(raw.get("domain"), where, "domain", required=False) or None
    regions = _text_list(raw.get("regions"), where, "regions", allow_numbers=True)
    return FaqEntryData(entry_id, question, keywords, answer, answers, domain, regions)


def _synonyms(raw: Any) -> dict[str, list[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise FaqFormatError("synonyms: must map a word to a list of words that mean the same")
    out: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for head, variants in raw.items():
        if isinstance(head, int) and not isinstance(head, bool):
            head = str(head)
        if not isinstance(head, str) or not head.strip():
            raise FaqFormatError(f"synonyms: key {head!r} must be non-empty text")
        head = head.strip()
        if len(head) > _MAX_WORD:
            raise FaqFormatError(f"synonyms.{head}: longer than {_MAX_WORD} characters")
        words = [w for w in _text_list(variants, f"synonyms.{head}", "synonyms") if w != head]
        for word in [head, *words]:
            if word in owner and owner[word] != head:
                raise FaqFormatError(
                    f"synonyms.{head}: {word!r} is already a synonym of {owner[word]!r}"
                )
            owner[word] = head
        out[head] = words
    return out


def _as_given(value: Any) -> Any:
    return value  # already normalised by FaqFile's checks; here only to describe the input


Words = Annotated[
    list[str],
    BeforeValidator(_as_given, json_schema_input_type=list[str | int] | str | None),
    Field(description="a list of words (a single word is accepted too)"),
]


class FaqEntryIn(BaseModel):
    """One entry of the FAQ file."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=_MAX_ID, description="unique in the file")
    question: str = Field(default="", description="matched on when keywords are empty")
    keywords: Words = Field(default_factory=list)
    answer: str = Field(min_length=1)
    answers: dict[str, str] = Field(
        default_factory=dict, description="the answer in other languages, by language code"
    )
    domain: str | None = None
    regions: Annotated[
        list[str],
        BeforeValidator(_as_given, json_schema_input_type=list[str | int] | None),
        Field(description="division codes; a more specific region's entry wins"),
    ] = Field(default_factory=list)


class FaqFile(BaseModel):
    """The FAQ file: ``gongkai faq import FILE`` / ``gongkai faq export``.

    The checks are the hand-written ones above, run before the fields are read, so every message
    names the entry (by id) and field the way FAQ editors already know; the fields describe the
    result and give the JSON Schema.
    """

    model_config = ConfigDict(
        extra="forbid",
    )
    synonyms: dict[str, Words] = Field(
        default_factory=dict, description="a head word → words that mean the same"
    )
    entries: list[FaqEntryIn]
    questions: Any = Field(
        default=None, description="labelled test questions the file may carry; not imported"
    )

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise FaqFormatError("the FAQ file must be a mapping with 'synonyms' and 'entries'")
        unknown = sorted(str(k) for k in data if k not in _TOP_KEYS)
        if unknown:
            raise FaqFormatError(
                f"unknown top-level key '{unknown[0]}' (expected synonyms, entries)"
            )
        raw_entries = data.get("entries")
        if raw_entries is None:
            raise FaqFormatError("'entries' is missing")
        if not isinstance(raw_entries, list):
            raise FaqFormatError("'entries' must be a list of entries")
        seen: dict[str, int] = {}
        entries = [asdict(_entry(i, raw, seen)) for i, raw in enumerate(raw_entries)]
        return {
            "entries": entries,
            "synonyms": _synonyms(data.get("synonyms")),
            "questions": data.get("questions"),
        }

    def entry_data(self) -> list[FaqEntryData]:
        return [FaqEntryData(**e.model_dump()) for e in self.entries]


def parse_faq_yaml(text: str) -> tuple[list[FaqEntryData], dict[str, list[str]]]:
    """Parse a FAQ file into entries (file order kept) and synonyms (head word → variants)."""
    try:
        data = safe_yaml.load(text)  # untrusted: aliases within a budget
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise FaqFormatError(f"not valid YAML{at}: {problem}") from None
    if data is None:
        raise FaqFormatError("the FAQ file is empty; expected 'entries:'")
    try:
        faq = FaqFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise FaqFormatError(_message(first)) from None
    return faq.entry_data(), {head: list(words) for head, words in faq.synonyms.items()}


def _message(error: Any) -> str:
    """The hand-written check's own message; pydantic's only if a field refused the checked
    data (which would be a bug in the checks)."""
    original = error.get("ctx", {}).get("error")
    if isinstance(original, FaqFormatError):
        return str(original)
    place = ".".join(str(p) for p in error["loc"])
    return f"{place}: {error['msg']}" if place else str(error["msg"])


class _FaqDumper(yaml.SafeDumper):
    """Keeps short word lists on one line and long answers as readable blocks."""


def _str_repr(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


class _Flow(list):
    pass


def _flow_repr(dumper: yaml.SafeDumper, value: _Flow) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", list(value), flow_style=True)


_FaqDumper.add_representer(str, _str_repr)
_FaqDumper.add_representer(_Flow, _flow_repr)


def dump_faq_yaml(entries: list[FaqEntryData], synonyms: dict[str, list[str]]) -> str:
    """Write entries and synonyms in the file format; `parse_faq_yaml` reads back the same data."""
    out_entries: list[dict[str, Any]] = []
    for e in entries:
        item: dict[str, Any] = {"id": e.id, "question": e.question, "keywords": _Flow(e.keywords)}
        item["answer"] = e.answer
        if e.domain:
            item["domain"] = e.domain
        if e.regions:
            item["regions"] = _Flow(e.regions)
        if e.answers:
            item["answers"] = dict(e.answers)
        out_entries.append(item)
    doc: dict[str, Any] = {}
    if synonyms:
        doc["synonyms"] = {head: _Flow(words) for head, words in synonyms.items()}
    doc["entries"] = out_entries
    return yaml.dump(
        doc, Dumper=_FaqDumper, allow_unicode=True, sort_keys=False, width=100, indent=2
    )
