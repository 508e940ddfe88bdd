"""The shared bounds below the HTTP layer: the YAML loader's budget, the JSON depth check, the
date window, redirect targets, and working-day arithmetic over any span in constant time."""

from __future__ import annotations

import random
import time
from datetime import UTC, date, datetime, timedelta

import pytest
import yaml

from gongkai.domain import safe_yaml
from gongkai.domain.bounds import moment_problem
from gongkai.domain.items import ItemRefused, load_item_file
from gongkai.domain.workdays import WorkCalendar
from gongkai.web.inputs import BodyRefused, QueryRefused, int_param, local_target, parse_json
from tests.console.test_admin_hostile import BILLION_LAUGHS


def test_yaml_aliases_within_the_budget_still_work() -> None:
    data = safe_yaml.load("base: &b {languages: [mn, zh]}\na: *b\nc: {<<: *b, code: '1'}\n")
    assert data["a"] == {"languages": ["mn", "zh"]}
    assert data["c"] == {"languages": ["mn", "zh"], "code": "1"}


@pytest.mark.parametrize(
    "text",
    [
        "regions:\n  - {code: '150627', name: 旗, targets: [{channel: sms, phones: [1]}]}\n",
        "a: &x [1, 2.5, true, null, ~, 2026-11-23, 2026-11-23T09:00:00+08:00, 0x1f, 0o17]\nb: *x\n",
        "? [1, 2]\n: x\n",  # a sequence as a key: PyYAML refuses it
        "!!set {a, b}\n",
        "o: !!omap [{a: 1}, {b: 2}]\nbin: !!binary aGVsbG8=\n",
        "m: {<<: [{a: 1}, {b: 2}], c: 3}\n",
        "t: !custom 1\n",
        "k: {1: one, 2.5: two, null: three, yes: four}\n",
        "bad: !!binary '***'\n",
        "s: !!str {a: 1}\n",
    ],
)
def test_yaml_reads_as_pyyaml_reads_it(text: str) -> None:
    """The loader's one-pass way for plain files gives what PyYAML's safe loader gives, and
    refuses what it refuses, in its words."""
    try:
        expected = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        with pytest.raises(yaml.YAMLError) as caught:
            safe_yaml.load(text)
        assert str(caught.value) == str(exc)
        return
    got = safe_yaml.load(text)
    assert got == expected and repr(got) == repr(expected)  # same types, same order
    if isinstance(got, dict) and "b" in got and "a" in got and isinstance(got["a"], list):
        assert got["a"] is got["b"]  # an alias is the same object, as in PyYAML


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (BILLION_LAUGHS, "aliases are expanded"),
        ("a: &a [x, *a]\n", "refers to the node that contains it"),
        ("[" * 100 + "]" * 100, "levels deep"),
        ("[" * 100_000, "nesting depth"),
        ("d: 2026-02-30\n", "invalid value"),
    ],
)
def test_yaml_that_would_explode_is_refused_quickly(text: str, says: str) -> None:
    started = time.process_time()  # this process's CPU: a busy machine does not count
    with pytest.raises(yaml.YAMLError, match=says):
        safe_yaml.load(text)
    assert time.process_time() - started < 1


def test_an_item_file_bomb_is_refused_naming_the_file() -> None:
    with pytest.raises(ItemRefused) as caught:
        load_item_file(BILLION_LAUGHS)
    assert caught.value.errors[0].field == "(file)"


def test_json_depth_is_judged_before_parsing() -> None:
    assert parse_json(b"[" * 32 + b"]" * 32) is not None
    alternating = b'{"a": [' * 17 + b"1" + b"]}" * 17  # 34 levels, lists and objects
    assert parse_json(b'{"a": [' * 16 + b"1" + b"]}" * 16) is not None  # 32 levels
    for raw in (b"[" * 33 + b"]" * 33, b'{"a":' * 40 + b"1" + b"}" * 40, alternating):
        with pytest.raises(BodyRefused, match="nested more than 32"):
            parse_json(raw)
    # brackets inside strings are text, not nesting
    assert parse_json(b'{"body": "' + b"[" * 1000 + b'\\"["}')["body"].startswith("[[[")


def test_integers_are_judged_before_int() -> None:
    with pytest.raises(QueryRefused, match=r"within 1\.\.10"):
        int_param({"n": "9" * 100_000}, "n", default=None, lo=1, hi=10)
    with pytest.raises(QueryRefused, match="whole number"):
        int_param({"n": "١٢"}, "n", default=None, lo=1, hi=10)  # Arabic-Indic digits
    assert int_param({"n": " 7 "}, "n", default=None, lo=1, hi=10) == 7


def test_the_window_holds_in_utc() -> None:
    plus14 = datetime.fromisoformat("2100-12-31T23:00:00-14:00")
    assert moment_problem(plus14) is not None  # 2101-01-01 13:00 in UTC
    assert moment_problem(datetime(2100, 12, 31, 23, 59, tzinfo=UTC)) is None
    assert moment_problem(datetime.fromisoformat("0001-01-01T00:00:00+14:00")) is not None
    assert moment_problem(datetime.fromisoformat("9999-12-31T23:59:59-14:00")) is not None


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/admin/items?page=2", "/admin/items?page=2"),
        ("/admin/items?q=低保", "/admin/items?q=%E4%BD%8E%E4%BF%9D"),
        ("/admin/x\r\nSet-Cookie: a=b", "/admin/"),
        ("/admin/x\x00", "/admin/"),
        ("//evil/admin/", "/admin/"),
        ("https://evil/admin/", "/admin/"),
        ("/admin/\\evil", "/admin/"),
        ("/p/elsewhere", "/admin/"),
        (None, "/admin/"),
    ],
)
def test_redirect_targets_stay_in_the_console(target: object, expected: str) -> None:
    assert local_target(target, "/admin/") == expected


def test_workdays_between_matches_a_day_by_day_count() -> None:
    cal = WorkCalendar({date(2027, 3, 2)}, {date(2027, 3, 6)})
    rng = random.Random(7)
    for _ in range(500):
        start = date(2003, 1, 1) + timedelta(days=rng.randrange(9500))
        end = start + timedelta(days=rng.randrange(-200, 200))
        walked = 0
        lo, hi = min(start, end), max(start, end)
        day = lo
        while day < hi:
            day += timedelta(days=1)
            walked += cal.is_workday(day)[0]
        assert cal.workdays_between(start, end) == (walked if end >= start else -walked)


def test_workdays_between_any_span_is_instant() -> None:
    started = time.monotonic()
    assert WorkCalendar().workdays_between(date(1, 1, 1), date(9999, 12, 31)) > 2_500_000
    assert time.monotonic() - started < 0.1


def test_a_text_full_of_numbers_is_refused_in_a_few_messages() -> None:
    from gongkai.channels import registry
    from gongkai.domain.items import check_publishable, parse_item
    from tests.support import item

    with pytest.raises(ItemRefused) as caught:
        check_publishable(parse_item(item(body="电话13800001234，" * 5000)), registry.CHANNEL_NAMES)
    body_errors = [e for e in caught.value.errors if e.field == "body"]
    assert len(body_errors) == 11
    assert "4990 more unmasked numbers" in body_errors[-1].message
