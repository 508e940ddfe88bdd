"""Every refusal rule of the contract names its field (API 422 and CLI alike)."""

from __future__ import annotations

import pytest

from gongkai.domain.items import ItemRefused, check_publishable, parse_item
from gongkai.domain.pii import find_personal_numbers, id_check_digit, is_valid_id_number
from tests.support import item

CHANNELS = ["web", "wechat_mp", "village_group", "sms", "loudspeaker", "telegram"]
VALID_ID = "11010519491231002X"  # the check digit of the national standard's example


def refused_fields(data: dict) -> set[str]:
    with pytest.raises(ItemRefused) as exc:
        check_publishable(parse_item(data), CHANNELS)
    return {e.field for e in exc.value.errors}


def test_the_sample_item_is_accepted() -> None:
    check_publishable(parse_item(item()), CHANNELS)


@pytest.mark.parametrize("disclosure", ["on_request", "not_public"])
def test_items_that_may_not_be_pushed_are_refused(disclosure: str) -> None:
    assert refused_fields(item(disclosure=disclosure)) == {"disclosure"}


def test_redacted_item_needs_its_redacted_text() -> None:
    assert refused_fields(item(disclosure="public_redacted")) == {"redacted_body"}
    check_publishable(
        parse_item(item(disclosure="public_redacted", redacted_body="删减后正文")), CHANNELS
    )


def test_approval_and_secrecy_review_are_required() -> None:
    assert refused_fields(item(approved_by=None, approved_at=None, secrecy_reviewed=False)) == {
        "approved_by",
        "approved_at",
        "secrecy_reviewed",
    }


def test_id_card_check_digit() -> None:
    assert id_check_digit(VALID_ID[:17]) == "X"
    assert is_valid_id_number(VALID_ID)
    assert not is_valid_id_number(VALID_ID[:17] + "1")


def test_unmasked_id_card_number_in_body_is_refused_and_masked_in_the_message() -> None:
    with pytest.raises(ItemRefused) as exc:
        check_publishable(parse_item(item(body=f"低保对象张三，身份证{VALID_ID}。")), CHANNELS)
    (error,) = exc.value.errors
    assert error.field == "body"
    assert VALID_ID not in error.message and "110105********002X" in error.message


def test_an_18_digit_number_with_a_wrong_check_digit_is_not_an_id_card() -> None:
    assert find_personal_numbers("项目编号110105194912310021") == []


def test_masked_numbers_pass() -> None:
    check_publishable(parse_item(item(body="张三 110105********002X 电话138****0000")), CHANNELS)


@pytest.mark.parametrize("field", ["title", "summary", "body"])
def test_unmasked_mobile_number_is_refused(field: str) -> None:
    assert refused_fields(item(**{field: "联系人李四 13812345678"})) == {field}


def test_mobile_number_in_a_translation_names_the_translation() -> None:
    data = item(translations={"mn": {"title": "ᠮᠡᠳᠡᠭᠳᠡᠯ", "body": "13812345678"}})
    assert refused_fields(data) == {"translations.mn.body"}


MOBILE = "13812345678"
# Every place a personal number could hide, and the field the refusal must name.
PII_PLACES: list[tuple[str, dict, str]] = [
    ("id", {"id": f"gk-{MOBILE}"}, "id"),
    ("doc_number", {"doc_number": f"伊政发〔2026〕{VALID_ID}号"}, "doc_number"),
    ("issuer", {"issuer": f"水务局 李四 {MOBILE}"}, "issuer"),
    ("approved_by", {"approved_by": f"王某 {MOBILE}"}, "approved_by"),
    ("interprets", {"kind": "interpretation", "interprets": f"p-{MOBILE}"}, "interprets"),
    ("redacted_body", {"disclosure": "public_redacted", "redacted_body": MOBILE}, "redacted_body"),
    ("catalog name", {"catalog": {"name": f"联系 {MOBILE}"}}, "catalog.name"),
    ("catalog extra", {"catalog": {"联系人": f"张三 {VALID_ID}"}}, "catalog.联系人"),
    ("catalog number", {"catalog": {"联系电话": int(MOBILE)}}, "catalog.联系电话"),
    ("catalog list", {"catalog": {"联系人": ["张三", f"{MOBILE}"]}}, "catalog.联系人[1]"),
    ("catalog key", {"catalog": {MOBILE: "李四"}}, "catalog.138****5678"),
    ("translation title", {"translations": {"mn": {"title": MOBILE}}}, "translations.mn.title"),
    ("translation summary", {"translations": {"ug": {"summary": MOBILE}}},
     "translations.ug.summary"),
    ("any language", {"translations": {"bo": {"body": VALID_ID}}}, "translations.bo.body"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "field"), [p[1:] for p in PII_PLACES], ids=[p[0] for p in PII_PLACES]
)
def test_a_personal_number_anywhere_in_the_item_is_refused_naming_the_field(
    data: dict, field: str
) -> None:
    with pytest.raises(ItemRefused) as exc:
        check_publishable(parse_item(item(**data)), CHANNELS)
    assert [e.field for e in exc.value.errors] == [field]
    (error,) = exc.value.errors
    assert MOBILE not in error.message and VALID_ID not in error.message
    assert "138****5678" in error.message or "110105********002X" in error.message


def test_the_original_behind_a_redaction_may_hold_what_was_redacted() -> None:
    data = item(disclosure="public_redacted", body=f"低保对象张三 {VALID_ID}", redacted_body="张三")
    check_publishable(parse_item(data), CHANNELS)


def test_landline_hotlines_are_not_mobile_numbers() -> None:
    check_publishable(parse_item(item(body="咨询电话：0477-8612345，热线12345。")), CHANNELS)


def test_domain_must_be_a_pilot_domain_or_other() -> None:
    with pytest.raises(ItemRefused) as exc:
        parse_item(item(domain="娱乐新闻"))
    assert [e.field for e in exc.value.errors] == ["domain"]
    assert parse_item(item(domain="其他")).domain == "其他"
    assert parse_item(item(domain="城乡规划")).domain == "国土空间规划"


def test_interpretation_names_its_policy() -> None:
    assert refused_fields(item(kind="interpretation")) == {"interprets"}


def test_unknown_channel_and_fields_are_named() -> None:
    assert refused_fields(item(channels=["web", "fax"])) == {"channels"}
    with pytest.raises(ItemRefused) as exc:
        parse_item(item(colour="red", regions=["15x"]))
    assert {e.field for e in exc.value.errors} == {"colour", "regions"}


def test_missing_fields_are_each_named() -> None:
    with pytest.raises(ItemRefused) as exc:
        parse_item({"id": "x"})
    fields = {e.field for e in exc.value.errors}
    assert {"kind", "title", "issued_at", "disclosure", "domain", "regions"} <= fields


def test_times_need_an_offset() -> None:
    with pytest.raises(ItemRefused) as exc:
        parse_item(item(approved_at="2026-11-20T09:30:00"))
    assert [e.field for e in exc.value.errors] == ["approved_at"]


def test_content_hash_ignores_defaults_so_new_optional_fields_keep_resends_idempotent() -> None:
    plain = parse_item(item())
    explicit = parse_item(item(urgent=False, wechat=None, publish_at=None, redacted_body=None))
    assert plain.content_hash() == explicit.content_hash()
    assert plain.content_hash() != parse_item(item(urgent=True)).content_hash()
