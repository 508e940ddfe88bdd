"""Working days on the official calendar, with make-up days (调休).

``chinesecalendar`` covers the years the State Council has announced; past its coverage we fall
back to weekdays plus an admin-extendable holidays file, and warn, rather than crash.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import yaml

log = logging.getLogger(__name__)


@dataclass
class WorkCalendar:
    extra_holidays: set[date] = field(default_factory=set)
    extra_workdays: set[date] = field(default_factory=set)

    @classmethod
    def from_file(cls, path: Path | None) -> WorkCalendar:
        """A YAML file ``{holidays: [2027-01-01, …], workdays: [2027-02-07, …]}``."""
        if path is None or not path.exists():
            return cls()
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
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
        try:
            return chinese_calendar.is_workday(day), True
        except NotImplementedError:
            return day.weekday() < 5, False

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
        count = 0
        current = start
        while current < end:
            current += timedelta(days=1)
            if self.is_workday(current)[0]:
                count += 1
        return count


PUBLISH_WITHIN_WORKDAYS = 20  # 印发实施后20个工作日内上网 (seed 002 item 4)
INTERPRET_WITHIN_WORKDAYS = 3  # 解读 at the latest 3 working days after the policy (seed 004)
