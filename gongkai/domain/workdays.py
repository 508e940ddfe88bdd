"""Working days on the official calendar, with make-up days (调休).

``chinesecalendar`` covers the years the State Council has announced; past its coverage we fall
back to weekdays plus an admin-extendable holidays file, and warn, rather than crash.

Counting between two dates is arithmetic on weekdays plus a correction for each day the calendar
makes an exception of (a holiday on a weekday, a make-up Saturday), found by bisection: a span of
centuries costs the same as a week. Walking day by day through ``chinese_calendar.is_workday``
(which rescans its tables on every call) took 12 seconds for an item issued in year 1.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path

import chinese_calendar
from chinese_calendar import constants as official

from gongkai.domain import safe_yaml

log = logging.getLogger(__name__)

_OFFICIAL_HOLIDAYS = frozenset(official.holidays)
_OFFICIAL_WORKDAYS = frozenset(official.workdays)
_COVERED_YEARS = (min(_OFFICIAL_HOLIDAYS).year, max(_OFFICIAL_HOLIDAYS).year)


def _weekdays_through(day: date) -> int:
    """Monday-to-Friday days from 0001-01-01 (a Monday) up to and including ``day``."""
    weeks, rest = divmod(day.toordinal(), 7)
    return weeks * 5 + min(rest, 5)


@dataclass
class WorkCalendar:
    extra_holidays: set[date] = field(default_factory=set)
    extra_workdays: set[date] = field(default_factory=set)

    @classmethod
    def from_file(cls, path: Path | None) -> WorkCalendar:
        """A YAML file ``{holidays: [2027-01-01, …], workdays: [2027-02-07, …]}``."""
        if path is None or not path.exists():
            return cls()
        data = safe_yaml.load(path.read_text(encoding="utf-8")) or {}
        return cls(
            {date.fromisoformat(str(d)) for d in data.get("holidays", [])},
            {date.fromisoformat(str(d)) for d in data.get("workdays", [])},
        )

    def is_workday(self, day: date) -> tuple[bool, bool]:
        """(is a working day, known from the official calendar)."""
        if day in self.extra_holidays:
            return False, True
        if day in self.extra_workdays:
            return True, True
        if _COVERED_YEARS[0] <= day.year <= _COVERED_YEARS[1]:
            # chinese_calendar.is_workday's own rule, without its per-call table scan
            official_workday = day in _OFFICIAL_WORKDAYS or (
                day.weekday() < 5 and day not in _OFFICIAL_HOLIDAYS
            )
            return official_workday, True
        return day.weekday() < 5, False

    @cached_property
    def _exceptions(self) -> tuple[list[date], list[int]]:
        """Days whose status differs from "Monday to Friday", sorted, and the correction each
        makes to a plain weekday count (-1: a weekday off, +1: a weekend day worked)."""
        candidates = (
            _OFFICIAL_HOLIDAYS | _OFFICIAL_WORKDAYS | self.extra_holidays | self.extra_workdays
        )
        days: list[date] = []
        corrections: list[int] = []
        for day in sorted(candidates):
            workday = self.is_workday(day)[0]
            weekday = day.weekday() < 5
            if workday != weekday:
                days.append(day)
                corrections.append(1 if workday else -1)
        running = [0]
        for c in corrections:
            running.append(running[-1] + c)
        return days, running

    def add_workdays(self, start: date, days: int) -> tuple[date, list[str]]:
        """The date ``days`` working days after ``start``, and warnings for guessed days."""
        current = start
        remaining = days
        guessed = False
        while remaining > 0:
            current += timedelta(days=1)
            workday, known = self.is_workday(current)
            guessed = guessed or not known
            if workday:
                remaining -= 1
        warnings = []
        if guessed:
            warnings.append(
                f"working days after {start.isoformat()} are beyond the official holiday calendar "
                f"(chinesecalendar {chinese_calendar.__version__}); counted weekdays only — "
                "update chinesecalendar or add the year's holidays to the holidays file"
            )
            log.warning(warnings[-1])
        return current, warnings

    def workdays_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (negative when end < start)."""
        if end < start:
            return -self.workdays_between(end, start)
        days, running = self._exceptions
        corrections = running[bisect_right(days, end)] - running[bisect_right(days, start)]
        return _weekdays_through(end) - _weekdays_through(start) + corrections


PUBLISH_WITHIN_WORKDAYS = 20  # 印发实施后20个工作日内上网 (seed 002 item 4)
INTERPRET_WITHIN_WORKDAYS = 3  # 解读 at the latest 3 working days after the policy (seed 004)
