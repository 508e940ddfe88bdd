"""Section 三 of the yearly report: 收到和处理政府信息公开申请情况, the table of
《中华人民共和国政府信息公开工作年度报告格式》 (国办公开办函〔2021〕30号), counted from
applications.

Rows: 一 new this year, 二 carried over from last year, 三 the results (（一）–（六） with
the reasons of 不予公开, 无法提供, 不予处理 and 其他处理, （七） the total), 四 carried over to
next year.
Columns: 自然人, the five kinds of 法人或其他组织, 总计.

How each application is counted in year Y (its day of receipt and the day it was closed —
answered, or abandoned for want of correction — on the county's calendar):

* new: received in Y;
* carried over from last year: received before Y and not closed before Y;
* results: closed in Y, by its outcome and reason (部分公开 only as such);
* carried over to next year: received by the end of Y and not closed by then.

So 二 + 一 = （七） + 四 always. An online application the office never confirmed has no day of
receipt and is in no row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from gongkai.domain.applications import (
    APPLICANT_LABELS,
    OUTCOME_LABELS,
    REASONS,
    ApplicantType,
    Outcome,
)

COLUMNS: tuple[ApplicantType, ...] = tuple(ApplicantType)
_NUMERALS = "一二三四五六七"


@dataclass(frozen=True)
class Counted:
    """What the table needs of one application."""

    applicant_type: str
    received_on: date | None
    closed_on: date | None
    outcome: str | None
    reason: str | None
    n: int = 1  # how many applications alike (the storage query counts them in groups)


@dataclass
class Row:
    key: str  # "new", "carried_in", "granted", "withheld.third_party", "total", …
    label: str
    level: int  # 0: 一–四, 1: （一）–（七）, 2: a reason
    counts: dict[str, int] | None = field(default_factory=dict)  # None: a heading row

    @property
    def total(self) -> int | None:
        return None if self.counts is None else sum(self.counts.values())


@dataclass
class AnnualTable:
    year: int
    rows: list[Row]

    def row(self, key: str) -> Row:
        return next(r for r in self.rows if r.key == key)

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["项目", *(APPLICANT_LABELS[c] for c in COLUMNS), "总计"])
        for r in self.rows:
            if r.counts is None:
                writer.writerow([r.label, *([""] * (len(COLUMNS) + 1))])
            else:
                writer.writerow([r.label, *(r.counts.get(c, 0) for c in COLUMNS), r.total])
        return out.getvalue()


def _empty() -> dict[str, int]:
    return {c.value: 0 for c in COLUMNS}


def annual_table(year: int, applications: Iterable[Counted]) -> AnnualTable:
    start, end = date(year, 1, 1), date(year, 12, 31)
    new, carried_in, carried_out, total = _empty(), _empty(), _empty(), _empty()
    results: dict[str, dict[str, int]] = {}
    for a in applications:
        if a.received_on is None or a.received_on > end:
            continue
        column = a.applicant_type if a.applicant_type in new else ApplicantType.other_org.value
        if a.received_on >= start:
            new[column] += a.n
        elif a.closed_on is None or a.closed_on >= start:
            carried_in[column] += a.n
        if a.closed_on is None or a.closed_on > end:
            carried_out[column] += a.n
        elif a.closed_on >= start and a.outcome:
            key = a.outcome if not REASONS[Outcome(a.outcome)] else f"{a.outcome}.{a.reason}"
            results.setdefault(key, _empty())[column] += a.n
            total[column] += a.n
    rows = [
        Row("new", "一、本年新收政府信息公开申请数量", 0, new),
        Row("carried_in", "二、上年结转政府信息公开申请数量", 0, carried_in),
        Row("results", "三、本年度办理结果", 0, None),
    ]
    for i, outcome in enumerate(Outcome):
        label = f"（{_NUMERALS[i]}）{OUTCOME_LABELS[outcome]}"
        if outcome == Outcome.partial:
            label += "（区分处理的，只计这一情形，不计其他情形）"
        reasons = REASONS[outcome]
        if not reasons:
            rows.append(Row(outcome.value, label, 1, results.get(outcome.value, _empty())))
            continue
        rows.append(Row(outcome.value, label, 1, None))
        for n, (code, text) in enumerate(reasons.items(), start=1):
            key = f"{outcome.value}.{code}"
            rows.append(Row(key, f"{n}.{text}", 2, results.get(key, _empty())))
    rows.append(Row("total", "（七）总计", 1, total))
    rows.append(Row("carried_out", "四、结转下年度继续办理", 0, carried_out))
    return AnnualTable(year, rows)
