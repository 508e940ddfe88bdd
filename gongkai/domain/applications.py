"""Applications for disclosure (依申请公开): who may apply, how an application is answered, and
the names the yearly report counts them under (domain.md rule 10).

The applicant types and the outcomes with their reasons are exactly the rows and columns of
section 三 of 《中华人民共和国政府信息公开工作年度报告格式》 (国办公开办函〔2021〕30号): an
application's outcome is stored as one of these codes, so the yearly table is a count and never
a judgement made at report time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class ApplicantType(StrEnum):
    """The table's columns: 自然人, then 法人或其他组织 in five columns."""

    natural_person = "natural_person"
    enterprise = "enterprise"
    research = "research"
    social_welfare = "social_welfare"
    law_firm = "law_firm"
    other_org = "other_org"


APPLICANT_LABELS: dict[ApplicantType, str] = {
    ApplicantType.natural_person: "自然人",
    ApplicantType.enterprise: "商业企业",
    ApplicantType.research: "科研机构",
    ApplicantType.social_welfare: "社会公益组织",
    ApplicantType.law_firm: "法律服务机构",
    ApplicantType.other_org: "其他",
}


class Outcome(StrEnum):
    """The table's （一）–（六） under 三、本年度办理结果."""

    granted = "granted"
    partial = "partial"
    withheld = "withheld"
    unavailable = "unavailable"
    not_processed = "not_processed"
    other = "other"


OUTCOME_LABELS: dict[Outcome, str] = {
    Outcome.granted: "予以公开",
    Outcome.partial: "部分公开",
    Outcome.withheld: "不予公开",
    Outcome.unavailable: "无法提供",
    Outcome.not_processed: "不予处理",
    Outcome.other: "其他处理",
}

# Each outcome's reasons, in the table's order, code → the table's wording. 予以公开 and 部分公开
# have none (部分公开 is counted only as such: 区分处理的，只计这一情形，不计其他情形).
REASONS: dict[Outcome, dict[str, str]] = {
    Outcome.granted: {},
    Outcome.partial: {},
    Outcome.withheld: {
        "state_secret": "属于国家秘密",
        "law_forbids": "其他法律行政法规禁止公开",
        "three_safeties": "危及“三安全一稳定”",
        "third_party": "保护第三方合法权益",
        "internal_affairs": "属于三类内部事务信息",
        "process_info": "属于四类过程性信息",
        "enforcement_file": "属于行政执法案卷",
        "inquiry_matter": "属于行政查询事项",
    },
    Outcome.unavailable: {
        "not_held": "本机关不掌握相关政府信息",
        "needs_creation": "没有现成信息需要另行制作",
        "still_unclear": "补正后申请内容仍不明确",
    },
    Outcome.not_processed: {
        "petition": "信访举报投诉类申请",
        "repeat": "重复申请",
        "publication": "要求提供公开出版物",
        "mass_repeated": "无正当理由大量反复申请",
        "confirm_reissue": "要求行政机关确认或重新出具已获取信息",
    },
    Outcome.other: {
        "no_correction": "申请人无正当理由逾期不补正、行政机关不再处理其政府信息公开申请",
        "no_fee": "申请人逾期未按收费通知要求缴纳费用、行政机关不再处理其政府信息公开申请",
        "other": "其他",
    },
}


def outcome_problem(outcome: str, reason: str | None) -> str | None:
    """Why this outcome and reason cannot be recorded, or None: an outcome with reasons needs
    one of its own, one without takes none."""
    try:
        kind = Outcome(outcome)
    except ValueError:
        return f"未知的办理结果 / unknown outcome {outcome!r}"
    allowed = REASONS[kind]
    if allowed and reason not in allowed:
        return (
            f"“{OUTCOME_LABELS[kind]}”须注明理由 / needs one of its reasons: {', '.join(allowed)}"
        )
    if not allowed and reason:
        return f"“{OUTCOME_LABELS[kind]}”不带理由 / takes no reason"
    return None


class Channel(StrEnum):
    """Where an application came from; decides how its day of receipt is fixed
    (see ``request_clock.receipt_day``)."""

    web = "web"
    wechat = "wechat"
    telegram = "telegram"
    in_person = "in_person"
    post_signed = "post_signed"  # registered mail: the office signs for it
    post_unsigned = "post_unsigned"  # an ordinary letter: confirmed with the applicant
    fax = "fax"


ONLINE_CHANNELS = frozenset({Channel.web, Channel.wechat, Channel.telegram})
# registered by a clerk in the console, who confirms a letter or fax with the applicant that day
CONFIRMED_BY_CLERK = frozenset(set(Channel) - ONLINE_CHANNELS)


class ReplyChannel(StrEnum):
    """How the applicant wants the answer."""

    online = "online"  # read it at /apply/{number} with the lookup code
    sms = "sms"  # an SMS notice with the lookup link
    wechat = "wechat"
    telegram = "telegram"
    post = "post"  # printed and posted
    pickup = "pickup"  # collected at the office


class Status(StrEnum):
    """登记 → 审核 → 办理 → 答复 → 归档. 审核 is the step out of ``registered``: accepted for
    handling, or sent back for correction (补正), after which it is registered again."""

    submitted = "submitted"  # online, not yet confirmed by the office: no clock yet
    registered = "registered"  # 登记: received, the clock runs; awaiting 审核
    correcting = "correcting"  # 补正 asked; the clock waits for the corrected application
    handling = "handling"  # 办理
    answered = "answered"  # 答复
    archived = "archived"  # 归档
    abandoned = "abandoned"  # 逾期不补正，视为放弃


STATUS_LABELS: dict[Status, str] = {
    Status.submitted: "待确认",
    Status.registered: "已登记待审核",
    Status.correcting: "待补正",
    Status.handling: "办理中",
    Status.answered: "已答复",
    Status.archived: "已归档",
    Status.abandoned: "视为放弃",
}

OPEN_STATUSES = frozenset({Status.submitted, Status.registered, Status.correcting, Status.handling})

_NUMBER = re.compile(r"YSQ-(\d{4})-(\d{6})")


@dataclass(frozen=True)
class Number:
    """``YSQ-2026-000123``: the year of receipt and a sequence within it."""

    year: int
    sequence: int

    def __str__(self) -> str:
        return f"YSQ-{self.year:04d}-{self.sequence:06d}"

    @classmethod
    def parse(cls, text: str) -> Number | None:
        match = _NUMBER.fullmatch(text)
        if match is None:
            return None
        return cls(int(match.group(1)), int(match.group(2)))
