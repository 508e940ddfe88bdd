"""An item's statutory deadlines (domain.md rules on timeliness), in working days.

A government item must be published within 20 working days of its issue; a policy's
interpretation within 3 working days of the policy's publication. Missing either is not a
refusal — the item still goes out — but a warning that the console's deadlines board shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from gongkai.domain.workdays import INTERPRET_WITHIN_WORKDAYS, PUBLISH_WITHIN_WORKDAYS, WorkCalendar


@dataclass
class Deadlines:
    publish_due: date
    interpretation_due: date | None  # a policy's: when its interpretation is due
    warnings: list[str] = field(default_factory=list)


def deadlines(
    calendar: WorkCalendar,
    *,
    kind: str,
    issued_at: date,
    published_on: date,
    policy_interpretation_due: date | None = None,
) -> Deadlines:
    """Deadlines for an item published on ``published_on``; ``policy_interpretation_due`` is
    given for an interpretation, from the policy it interprets."""
    warnings: list[str] = []
    publish_due, w = calendar.add_workdays(issued_at, PUBLISH_WITHIN_WORKDAYS)
    warnings += w
    interpretation_due: date | None = None
    if kind == "policy":
        interpretation_due, w = calendar.add_workdays(published_on, INTERPRET_WITHIN_WORKDAYS)
        warnings += w
    if published_on > publish_due:
        warnings.append(
            f"published {calendar.workdays_between(publish_due, published_on)} working day(s) "
            f"after the {PUBLISH_WITHIN_WORKDAYS}-working-day deadline ({publish_due.isoformat()})"
        )
    if policy_interpretation_due and published_on > policy_interpretation_due:
        warnings.append(
            f"interpretation published after its policy's {INTERPRET_WITHIN_WORKDAYS}-working-day"
            f" deadline ({policy_interpretation_due.isoformat()})"
        )
    return Deadlines(publish_due, interpretation_due, warnings)
