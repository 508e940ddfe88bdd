"""The 20- and 3-working-day deadlines follow the official calendar, make-up days included.

What these tests assume is pinned: every date is fixed (nothing reads today's date), and which
years chinesecalendar knows is asked of the installed package. The holiday facts need their
year covered (1.11.0 covers 2004-2026); the fallback test needs its year, 2027, uncovered,
and says so when a newer release covers it, instead of failing on the missing warning.
"""

from __future__ import annotations

from datetime import date

import chinese_calendar
import pytest

from gongkai.domain.workdays import WorkCalendar


def _covered(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def _needs(year: int) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not _covered(year),
        reason=f"chinesecalendar {chinese_calendar.__version__} does not cover {year}",
    )


@_needs(2025)
def test_national_day_holiday_and_its_make_up_day_2025() -> None:
    cal = WorkCalendar()
    # 2025: Oct 1-8 off; Sunday Sep 28 and Saturday Oct 11 are make-up working days.
    assert cal.is_workday(date(2025, 9, 28)) == (True, True)
    assert cal.is_workday(date(2025, 10, 3)) == (False, True)
    assert cal.is_workday(date(2025, 10, 11)) == (True, True)
    # Three working days after Friday Sep 26: Sun 28 (调休), Mon 29, Tue 30.
    assert cal.add_workdays(date(2025, 9, 26), 3) == (date(2025, 9, 30), [])
    # One more crosses the holiday and lands on Thursday Oct 9.
    assert cal.add_workdays(date(2025, 9, 26), 4)[0] == date(2025, 10, 9)


@_needs(2026)
def test_twenty_working_days_across_spring_festival_2026() -> None:
    cal = WorkCalendar()
    due, warnings = cal.add_workdays(date(2026, 2, 2), 20)
    assert warnings == []
    plain_weekdays_due = date(2026, 3, 2)  # what a weekday-only count would say
    assert due > plain_weekdays_due


@pytest.mark.skipif(
    _covered(2027),
    reason=f"chinesecalendar {chinese_calendar.__version__} covers 2027: "
    "move this test to the first year it does not cover",
)
def test_past_the_calendar_weekdays_are_used_with_a_warning() -> None:
    due, warnings = WorkCalendar().add_workdays(date(2027, 3, 1), 5)
    assert due == date(2027, 3, 8)
    assert warnings and "beyond the official holiday calendar" in warnings[0]


def test_admin_holidays_file_extends_the_calendar(tmp_path) -> None:
    f = tmp_path / "holidays.yaml"
    f.write_text("holidays: [2027-03-02]\nworkdays: [2027-03-06]\n")
    cal = WorkCalendar.from_file(f)
    assert cal.add_workdays(date(2027, 3, 1), 5)[0] == date(2027, 3, 8)  # -1 day +1 Saturday
    assert cal.is_workday(date(2027, 3, 6)) == (True, True)


@_needs(2025)
def test_workdays_between_counts_overdue_days() -> None:
    cal = WorkCalendar()
    assert cal.workdays_between(date(2025, 9, 30), date(2025, 10, 9)) == 1
    assert cal.workdays_between(date(2025, 10, 9), date(2025, 9, 30)) == -1
