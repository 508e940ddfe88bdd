"""The statutory clock of an application for disclosure (《政府信息公开条例》 2019, arts. 30–33).

Everything here is a plain function of recorded facts (when the application arrived, when a
correction was asked for and came back, whether the answer was extended) and the official
calendar of working days, the same ``WorkCalendar`` that times publishing deadlines. Nothing
reads today's date unless it is given.

**The day of receipt** (art. 31), fixed by ``receipt_day``:

* in person (``in_person``): the day it was handed in;
* registered mail (``post_signed``): the day the office signed for it;
* an ordinary letter that needs no signature (``post_unsigned``), a fax, or any online channel
  (``web``, ``wechat``, ``telegram``): "the day both sides confirm it". The applicant confirms by
  submitting (the form shows what is sent and answers with a number); the office confirms when a
  clerk registers it (登记). The day of receipt is the later of the two calendar days in the
  county's time zone — an online application submitted on Saturday and registered on Monday
  was received on Monday; until the office confirms there is no day of receipt and no clock.

**Counting** follows the rule for periods: the day of receipt itself is not counted, so "within
20 working days" ends on the 20th working day after it (``WorkCalendar.add_workdays``). A
receipt on a Saturday or during the Spring Festival holiday counts from the next working day.

* The answer is due 20 working days after receipt (art. 33).
* One extension of at most 20 further working days, counted on from the original due day, with
  the consent of the person in charge (a named approver) and a notice to the applicant (art. 33).
* An unclear application gets one request for correction (补正) within 7 working days of receipt
  (art. 30); a later request is still recorded but flagged. The request names a period for the
  correction; the clock stops and starts afresh from the day the corrected application arrives
  (that day is then the day of receipt for the 20 working days). An applicant who lets the
  period pass without correcting it has abandoned the application (逾期不补正，视为放弃申请).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

from gongkai.domain.applications import ONLINE_CHANNELS, Channel
from gongkai.domain.workdays import WorkCalendar

ANSWER_WITHIN_WORKDAYS = 20  # art. 33: 自收到申请之日起20个工作日内予以答复
MAX_EXTENSION_WORKDAYS = 20  # art. 33: 延长的期限最长不得超过20个工作日
CORRECTION_REQUEST_WITHIN_WORKDAYS = 7  # art. 30: 7个工作日内一次性告知申请人作出补正
DEFAULT_CORRECTION_PERIOD_WORKDAYS = 15  # art. 30 asks for 合理的补正期限; a county may set its own

CONFIRMED_CHANNELS = ONLINE_CHANNELS | {Channel.post_unsigned, Channel.fax}


class ClockRefused(ValueError):
    """A step the law does not allow (a second extension, one longer than 20 working days, one
    without an approver or notice, a second correction request)."""


def local_day(moment: datetime, tz: tzinfo) -> date:
    return moment.astimezone(tz).date()


def receipt_day(
    channel: Channel | str,
    *,
    handed_in: date,
    confirmed: date | None,
) -> date | None:
    """The day of receipt (art. 31) or None while an application still awaits the office's
    confirmation.

    ``handed_in`` is the day the application reached the office: the visit, the signature on
    registered mail, or the applicant's online submission. ``confirmed`` is the day the office
    confirmed it (the 登记 step) — needed for online applications, ordinary letters and faxes,
    ignored for visits and registered mail.
    """
    channel = Channel(channel)
    if channel not in CONFIRMED_CHANNELS:
        return handed_in
    if confirmed is None:
        return None
    return max(handed_in, confirmed)


@dataclass(frozen=True)
class Extension:
    approver: str  # 政府信息公开工作机构负责人
    workdays: int
    notified_on: date  # the day the applicant was told
    reason: str = ""


@dataclass(frozen=True)
class Correction:
    requested_on: date
    period_workdays: int = DEFAULT_CORRECTION_PERIOD_WORKDAYS
    corrected_on: date | None = None  # the day the corrected application arrived


@dataclass
class Clock:
    """Where an application stands against the law on a given day."""

    received: date | None  # the day of receipt; None while awaiting confirmation
    starts: date | None  # the day counting starts from: receipt, or the corrected application's
    correction_request_due: date | None  # the last day to ask for a correction
    correction_until: date | None  # the applicant's last day to correct (when one was asked)
    due: date | None  # the answer's due day, extension included
    extended_to: date | None  # the due day after the extension, when there is one
    waiting_for_correction: bool
    abandoned: bool  # the correction period passed with no correction
    warnings: list[str] = field(default_factory=list)

    def workdays_left(self, calendar: WorkCalendar, today: date) -> int | None:
        """Working days from ``today`` to the due day: 0 on the due day, negative when overdue
        (−3: three working days overdue); None when no answer is due (no receipt yet, waiting
        for a correction, abandoned)."""
        if self.due is None or self.waiting_for_correction or self.abandoned:
            return None
        return calendar.workdays_between(today, self.due)


def clock(
    calendar: WorkCalendar,
    *,
    received: date | None,
    correction: Correction | None = None,
    extension: Extension | None = None,
    today: date | None = None,
) -> Clock:
    """The clock from the facts recorded so far. ``today`` decides only whether an uncorrected
    application has been abandoned; without it, it is not."""
    warnings: list[str] = []
    if received is None:
        return Clock(None, None, None, None, None, None, False, False, warnings)
    request_due, w = calendar.add_workdays(received, CORRECTION_REQUEST_WITHIN_WORKDAYS)
    warnings += w
    starts = received
    correction_until: date | None = None
    waiting = False
    abandoned = False
    if correction is not None:
        if correction.requested_on < received:
            raise ClockRefused("补正告知早于收到申请之日 / correction asked before receipt")
        if not 1 <= correction.period_workdays <= 60:
            raise ClockRefused("补正期限应为1–60个工作日 / correction period 1..60 working days")
        if correction.requested_on > request_due:
            late = calendar.workdays_between(request_due, correction.requested_on)
            warnings.append(
                f"补正告知晚于收到申请后{CORRECTION_REQUEST_WITHIN_WORKDAYS}个工作日"
                f"（{request_due.isoformat()}）{late}个工作日 / correction asked {late} working "
                "day(s) late"
            )
        correction_until, w = calendar.add_workdays(
            correction.requested_on, correction.period_workdays
        )
        warnings += w
        if correction.corrected_on is not None:
            if correction.corrected_on < correction.requested_on:
                raise ClockRefused("补正早于补正告知 / corrected before it was asked for")
            starts = correction.corrected_on
        else:
            waiting = True
            abandoned = today is not None and today > correction_until
    due, w = calendar.add_workdays(starts, ANSWER_WITHIN_WORKDAYS)
    warnings += w
    extended_to: date | None = None
    if extension is not None:
        if not extension.approver.strip():
            raise ClockRefused("延期须经负责人同意 / an extension needs a named approver")
        if not 1 <= extension.workdays <= MAX_EXTENSION_WORKDAYS:
            raise ClockRefused(
                f"延长期限为1–{MAX_EXTENSION_WORKDAYS}个工作日 / an extension is 1.."
                f"{MAX_EXTENSION_WORKDAYS} working days"
            )
        if extension.notified_on > due:
            warnings.append(
                f"延期告知晚于原答复期限（{due.isoformat()}）"
                " / extension notified after the due day"
            )
        extended_to, w = calendar.add_workdays(due, extension.workdays)
        warnings += w
        due = extended_to
    return Clock(
        received=received,
        starts=starts,
        correction_request_due=request_due,
        correction_until=correction_until,
        due=due,
        extended_to=extended_to,
        waiting_for_correction=waiting and not abandoned,
        abandoned=abandoned,
        warnings=warnings,
    )


def reminder_kind(workdays_left: int | None, remind_days: int) -> str | None:
    """Which reminder the handler is owed today: ``soon`` from ``remind_days`` working days
    before the due day, ``due`` on it (and after it, should the day have been missed); None
    when no answer is due or it is further off. Each is sent once per application and due day,
    so a missed day (the worker was down) is made good on the next check."""
    if workdays_left is None:
        return None
    if workdays_left <= 0:
        return "due"
    if workdays_left <= remind_days:
        return "soon"
    return None
