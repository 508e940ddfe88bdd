"""The quarterly report's figures (domain rule 11: reporting to the level above each quarter).

A quarter's items are those first put online in it (recalled ones excluded: they were not
disclosure). Reach per channel is delivered ÷ planned, where planned is every delivery of those
items that was not cancelled — a recall is a decision, not a failure to reach people.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.console.console_queries import day_start
from gongkai.domain.bounds import EARLIEST_DAY, LATEST_DAY
from gongkai.storage.models import Delivery, DeliveryStatus, Item, ItemStatus, Question

_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)


@dataclass(frozen=True)
class Quarter:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Quarter | None:
        """None when malformed or outside the input window (9999Q4's next quarter would be in
        year 10000, which no date can hold)."""
        m = _QUARTER.match(text.strip())
        if not m or not EARLIEST_DAY.year <= int(m.group(1)) <= LATEST_DAY.year:
            return None
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def containing(cls, day: date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)

    @property
    def first_day(self) -> date:
        return date(self.year, 3 * self.number - 2, 1)

    @property
    def next(self) -> Quarter:
        return (
            Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)
        )

    @property
    def previous(self) -> Quarter:
        return (
            Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year, self.number - 1)
        )

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        return day_start(self.first_day, tz), day_start(self.next.first_day, tz)

    def __str__(self) -> str:
        return f"{self.year}Q{self.number}"

    @property
    def label(self) -> str:
        return f"{self.year}年第{'一二三四'[self.number - 1]}季度"


@dataclass
class Reach:
    channel: str
    planned: int = 0
    delivered: int = 0

    @property
    def rate(self) -> float | None:
        return self.delivered / self.planned if self.planned else None


@dataclass
class QuarterReport:
    quarter: Quarter
    items_total: int = 0
    by_domain: list[tuple[str, int]] = field(default_factory=list)
    by_kind: list[tuple[str, int]] = field(default_factory=list)
    items_by_channel: list[tuple[str, int]] = field(default_factory=list)
    reach: list[Reach] = field(default_factory=list)
    questions_answered: int = 0
    questions_unanswered: int = 0

    @property
    def questions_total(self) -> int:
        return self.questions_answered + self.questions_unanswered


async def quarter_report(session: AsyncSession, quarter: Quarter, tz: ZoneInfo) -> QuarterReport:
    start, end = quarter.bounds(tz)
    report = QuarterReport(quarter)
    in_quarter = (
        col(Item.published_at) >= start,
        col(Item.published_at) < end,
        Item.status != ItemStatus.recalled,
    )
    report.by_domain = [
        (d, n)
        for d, n in (
            await session.exec(
                select(Item.domain, func.count())
                .where(*in_quarter)
                .group_by(Item.domain)
                .order_by(func.count().desc(), Item.domain)
            )
        ).all()
    ]
    report.by_kind = [
        (k, n)
        for k, n in (
            await session.exec(
                select(Item.kind, func.count())
                .where(*in_quarter)
                .group_by(Item.kind)
                .order_by(Item.kind)
            )
        ).all()
    ]
    report.items_total = sum(n for _, n in report.by_domain)
    items = select(Item.id).where(*in_quarter)
    live = (col(Delivery.item_id).in_(items), Delivery.status != DeliveryStatus.cancelled)
    report.items_by_channel = [
        (c, n)
        for c, n in (
            await session.exec(
                select(Delivery.channel, func.count(func.distinct(Delivery.item_id)))
                .where(*live)
                .group_by(Delivery.channel)
                .order_by(Delivery.channel)
            )
        ).all()
    ]
    reach: dict[str, Reach] = {}
    for channel, status, n in (
        await session.exec(
            select(Delivery.channel, Delivery.status, func.count())
            .where(*live)
            .group_by(Delivery.channel, Delivery.status)
        )
    ).all():
        r = reach.setdefault(channel, Reach(channel))
        r.planned += n
        if status == DeliveryStatus.delivered:
            r.delivered += n
    report.reach = sorted(reach.values(), key=lambda r: r.channel)
    for answered, n in (
        await session.exec(
            select(Question.answered, func.count())
            .where(col(Question.asked_at) >= start, col(Question.asked_at) < end)
            .group_by(Question.answered)
        )
    ).all():
        if answered:
            report.questions_answered = n
        else:
            report.questions_unanswered = n
    return report


def report_csv(report: QuarterReport, channel_title) -> str:  # type: ignore[no-untyped-def]
    """One table, a section column first, so a spreadsheet can filter each part of the report."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["section", "name", "count", "delivered", "planned", "reach_rate"])
    q = str(report.quarter)
    w.writerow(["quarter", q, report.items_total, "", "", ""])
    for kind, n in report.by_kind:
        w.writerow(["items_by_kind", kind, n, "", "", ""])
    for domain, n in report.by_domain:
        w.writerow(["items_by_domain", domain, n, "", "", ""])
    for channel, n in report.items_by_channel:
        w.writerow(["items_by_channel", f"{channel} {channel_title(channel)}", n, "", "", ""])
    for r in report.reach:
        w.writerow(
            [
                "reach_by_channel",
                f"{r.channel} {channel_title(r.channel)}",
                "",
                r.delivered,
                r.planned,
                "" if r.rate is None else f"{r.rate:.4f}",
            ]
        )
    w.writerow(["questions", "answered", report.questions_answered, "", "", ""])
    w.writerow(["questions", "unanswered", report.questions_unanswered, "", "", ""])
    return buf.getvalue()
