"""The window every date, number and text must fit before it reaches the database or a calendar.

One request with ``issued_at: 0001-01-01`` used to walk the calendar for seconds, and one with
``until=9999-12-31T23:59:59-14:00`` overflowed a conversion to UTC into a 500. Rather than guard
each handler, every input goes through these checks: the item model's field types, the query
parsers in ``gongkai.web.inputs`` and the YAML loader all share them, so "in range" means the same
thing at every edge.

The window is wide enough for any disclosure document the service will carry (the People's
Republic's own documents start in 1949) and narrow enough that date arithmetic on it can neither
overflow nor take long.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from pydantic import AfterValidator, Field

EARLIEST_DAY = date(1949, 1, 1)
LATEST_DAY = date(2100, 12, 31)
EARLIEST = datetime.combine(EARLIEST_DAY, time(0), tzinfo=UTC)
LATEST = datetime.combine(LATEST_DAY + timedelta(days=1), time(0), tzinfo=UTC)  # exclusive

# Row ids are 32-bit INTEGER columns on PostgreSQL (SQLite's are 64-bit): a larger id could only
# be refused by the database driver, as a 500.
MAX_ROW_ID = 2**31 - 1
MAX_INT64 = 2**63 - 1

WINDOW_TEXT = f"{EARLIEST_DAY.isoformat()} – {LATEST_DAY.isoformat()}"

# Text lengths: generous for real documents, finite for everything else.
MAX_TITLE = 300
MAX_TRANSLATED_TITLE = 1000  # Mongolian script takes several times the characters of Chinese
MAX_LINE = 200  # issuer, document number, approver and other one-line fields
MAX_SUMMARY = 5000
MAX_BODY = 200_000
MAX_LIST = 1000  # regions an item may name
MAX_CATALOG_EXTRA_KEYS = 32
MAX_TRANSLATIONS = 16

_MULTILINE_OK = frozenset("\n\r\t")


def day_problem(day: date) -> str | None:
    """Why ``day`` is refused, or None when it is inside the window."""
    if EARLIEST_DAY <= day <= LATEST_DAY:
        return None
    return f"日期应在 {WINDOW_TEXT} 之间 / date outside {WINDOW_TEXT}"


def moment_problem(moment: datetime) -> str | None:
    """Why an aware datetime is refused: outside the window once it is normalised to UTC.

    The local date is checked first so that converting year 1 or 9999 to UTC cannot overflow.
    """
    if not (EARLIEST_DAY - timedelta(days=1) <= moment.date() <= LATEST_DAY + timedelta(days=1)):
        return f"时间应在 {WINDOW_TEXT} 之间 / time outside {WINDOW_TEXT}"
    try:
        utc = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return f"时间应在 {WINDOW_TEXT} 之间 / time outside {WINDOW_TEXT}"
    if EARLIEST <= utc < LATEST:
        return None
    return f"时间（换算为 UTC 后）应在 {WINDOW_TEXT} 之间 / time outside {WINDOW_TEXT} in UTC"


def control_problem(text: str, *, multiline: bool) -> str | None:
    """Why ``text`` is refused for a C0 control character (a NUL breaks PostgreSQL text columns,
    the others break headers, CSV cells and the messages the channels send)."""
    for position, ch in enumerate(text):
        if ch < " " and not (multiline and ch in _MULTILINE_OK):
            return (
                f"含控制字符 U+{ord(ch):04X}（第{position + 1}个字符处）/ "
                f"control character U+{ord(ch):04X}"
            )
    return None


def _in_window(value: date) -> date:
    problem = day_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _moment_in_window(value: datetime) -> datetime:
    if value.tzinfo is not None:  # naive ones are refused by the model, naming the offset
        problem = moment_problem(value)
        if problem:
            raise ValueError(problem)
    elif day_problem(value.date()):
        raise ValueError(day_problem(value.date()))
    return value


def _one_line(value: str) -> str:
    problem = control_problem(value, multiline=False)
    if problem:
        raise ValueError(problem)
    return value


def _multi_line(value: str) -> str:
    problem = control_problem(value, multiline=True)
    if problem:
        raise ValueError(problem)
    return value


WindowDate = Annotated[
    date, Field(description=f"a day within {WINDOW_TEXT}"), AfterValidator(_in_window)
]
WindowDatetime = Annotated[
    datetime,
    Field(description=f"with a UTC offset; within {WINDOW_TEXT} in UTC"),
    AfterValidator(_moment_in_window),
]


OneLine = Annotated[str, Field(max_length=MAX_LINE), AfterValidator(_one_line)]
Title = Annotated[str, Field(min_length=1, max_length=MAX_TITLE), AfterValidator(_one_line)]
TranslatedTitle = Annotated[str, Field(max_length=MAX_TRANSLATED_TITLE), AfterValidator(_one_line)]
Summary = Annotated[str, Field(max_length=MAX_SUMMARY), AfterValidator(_multi_line)]
Body = Annotated[str, Field(max_length=MAX_BODY), AfterValidator(_multi_line)]
