"""The statutory clock of an application (条例 arts. 30–33) on the official 2026 calendar.

Every date is fixed. 2026: National Day Oct 1–7 off with Sunday Sep 20 and Saturday Oct 10
worked; Spring Festival Feb 15–23 off with Saturdays Feb 14 and Feb 28 worked. A clock that
counted weekdays only would end days earlier in every case below.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from gongkai.domain.request_clock import (
    ClockRefused,
    Correction,
    Extension,
    clock,
    local_day,
    receipt_day,
)
from gongkai.domain.workdays import WorkCalendar

try:
    chinese_calendar.is_workday(date(2026, 6, 1))
    COVERED = True
except NotImplementedError:
    COVERED = False
pytestmark = pytest.mark.skipif(not COVERED, reason="chinesecalendar does not cover 2026")

CAL = WorkCalendar()
SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_answer_due_20_working_days_after_receipt_across_national_day() -> None:
    c = clock(CAL, received=date(2026, 9, 25))  # a Friday, handed in at the office
    # Sep 28–30 (3), Oct 1–7 off, Oct 8, 9 (5), Saturday Oct 10 worked (6), … Oct 29 (20)
    assert c.due == date(2026, 10, 29)
    assert c.correction_request_due == date(2026, 10, 12)  # 7 working days, Oct 10 among them
    assert CAL.add_workdays(date(2026, 9, 25), 20)[0] == c.due  # the publishing calendar


def test_spring_festival_and_its_make_up_saturdays() -> None:
    c = clock(CAL, received=date(2026, 2, 13))
    # Saturday Feb 14 worked (1), Feb 15–23 off, Feb 24–27 (5), Saturday Feb 28 (6) … Mar 19
    assert c.due == date(2026, 3, 19)


def test_days_left_and_overdue_are_working_days() -> None:
    c = clock(CAL, received=date(2026, 9, 25))
    assert c.workdays_left(CAL, date(2026, 10, 27)) == 2
    assert c.workdays_left(CAL, date(2026, 10, 29)) == 0
    assert c.workdays_left(CAL, date(2026, 11, 3)) == -3  # Oct 30, Nov 2, Nov 3
    # the holiday does not count down: 17 left on Oct 1 and still 17 on Oct 7
    assert c.workdays_left(CAL, date(2026, 10, 1)) == c.workdays_left(CAL, date(2026, 10, 7)) == 17


def test_receipt_day_rule_per_channel() -> None:
    saturday, monday = date(2026, 10, 3), date(2026, 10, 8)
    # in person and registered mail: the day handed in / signed for, confirmation irrelevant
    assert receipt_day("in_person", handed_in=saturday, confirmed=None) == saturday
    assert receipt_day("post_signed", handed_in=saturday, confirmed=monday) == saturday
    # online, fax and ordinary letters: the day both sides confirmed — the later of the two
    for channel in ("web", "wechat", "telegram", "fax", "post_unsigned"):
        assert receipt_day(channel, handed_in=saturday, confirmed=None) is None
        assert receipt_day(channel, handed_in=saturday, confirmed=monday) == monday
    # a clerk who registered a letter before the applicant's confirmation: the later day
    assert receipt_day("web", handed_in=monday, confirmed=saturday) == monday


def test_receipt_day_is_the_countys_calendar_day() -> None:
    # 17:00 UTC on Sunday Sep 27 is 01:00 on Monday Sep 28 in Shanghai: Monday is the day of
    # receipt and itself not counted, so the answer is due a day later than the UTC date says
    moment = datetime(2026, 9, 27, 17, 0, tzinfo=UTC)
    assert local_day(moment, SHANGHAI) == date(2026, 9, 28)
    assert clock(CAL, received=local_day(moment, SHANGHAI)).due == date(2026, 10, 30)
    assert clock(CAL, received=moment.date()).due == date(2026, 10, 29)
    # received during the holiday: counting starts on Oct 8, the first working day after it
    assert clock(CAL, received=date(2026, 10, 3)).due == date(2026, 11, 3)


def test_no_clock_before_the_office_confirms() -> None:
    c = clock(CAL, received=None)
    assert c.due is None and c.workdays_left(CAL, date(2026, 10, 8)) is None


def _extended(approver: str, workdays: int, notified_on: date):  # type: ignore[no-untyped-def]
    ext = Extension(approver=approver, workdays=workdays, notified_on=notified_on)
    return clock(CAL, received=date(2026, 9, 25), extension=ext)


def test_extension_adds_at_most_20_working_days_with_a_named_approver() -> None:
    ext = Extension(approver="张主任", workdays=20, notified_on=date(2026, 10, 28))
    c = clock(CAL, received=date(2026, 9, 25), extension=ext)
    assert c.extended_to == c.due == date(2026, 11, 26)
    short = clock(
        CAL, received=date(2026, 9, 25), extension=Extension("张主任", 5, date(2026, 10, 28))
    )
    assert short.due == date(2026, 11, 5)
    with pytest.raises(ClockRefused, match="20"):
        clock(
            CAL, received=date(2026, 9, 25), extension=Extension("张主任", 21, date(2026, 10, 28))
        )
    with pytest.raises(ClockRefused, match="approver"):
        _extended(" ", 10, date(2026, 10, 28))
    late = clock(
        CAL, received=date(2026, 9, 25), extension=Extension("张主任", 5, date(2026, 11, 2))
    )
    assert any("after the due day" in w for w in late.warnings)


def test_correction_restarts_the_clock_from_the_corrected_application() -> None:
    asked = Correction(requested_on=date(2026, 10, 9), period_workdays=15)
    waiting = clock(CAL, received=date(2026, 9, 25), correction=asked, today=date(2026, 10, 20))
    assert waiting.waiting_for_correction and not waiting.abandoned
    assert waiting.correction_until == date(2026, 10, 29)
    assert waiting.workdays_left(CAL, date(2026, 10, 20)) is None  # the clock waits
    corrected = Correction(date(2026, 10, 9), 15, corrected_on=date(2026, 11, 2))
    c = clock(CAL, received=date(2026, 9, 25), correction=corrected, today=date(2026, 11, 3))
    assert c.starts == date(2026, 11, 2)
    assert c.due == date(2026, 11, 30)  # 20 working days after Nov 2, not after Sep 25
    assert not c.waiting_for_correction and not c.warnings


def test_an_application_never_corrected_is_abandoned_after_the_period() -> None:
    asked = Correction(requested_on=date(2026, 10, 9), period_workdays=15)
    on_last_day = clock(CAL, received=date(2026, 9, 25), correction=asked, today=date(2026, 10, 29))
    assert not on_last_day.abandoned
    after = clock(CAL, received=date(2026, 9, 25), correction=asked, today=date(2026, 10, 30))
    assert after.abandoned and not after.waiting_for_correction


def test_a_late_correction_request_is_recorded_with_a_warning() -> None:
    late = Correction(requested_on=date(2026, 10, 14))  # the 7th working day was Oct 12
    c = clock(CAL, received=date(2026, 9, 25), correction=late)
    assert any("2 working day(s) late" in w for w in c.warnings)
    with pytest.raises(ClockRefused):
        clock(CAL, received=date(2026, 9, 25), correction=Correction(date(2026, 9, 24)))
