"""What an applicant hands in, checked the same way whichever door it came through (the public
form, the JSON API, a chat conversation, a clerk's registration in the console).

条例 art. 29 asks for the applicant's name and contact, a description of the information
specific enough to find it, and the form it should be provided in. Everything is bounded so one
request cannot hold the service up: one-line fields ≤ 200 characters, the description ≤ 5,000,
no control characters but line ends in the long texts.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from gongkai.domain.applications import ApplicantType, ReplyChannel
from gongkai.domain.bounds import MAX_SUMMARY, OneLine, control_problem
from gongkai.domain.pii import normalize_mobile

MAX_DESCRIPTION = MAX_SUMMARY


def _multi_line(value: str) -> str:
    problem = control_problem(value, multiline=True)
    if problem:
        raise ValueError(problem)
    return value


def _mobile(value: str) -> str:
    return normalize_mobile(value) if value else value


Description = Annotated[
    str, Field(min_length=1, max_length=MAX_DESCRIPTION), AfterValidator(_multi_line)
]
Purpose = Annotated[str, Field(max_length=MAX_DESCRIPTION), AfterValidator(_multi_line)]
Mobile = Annotated[str, Field(max_length=32), AfterValidator(_mobile)]


class ApplicationIn(BaseModel):
    """The body of ``POST /api/v1/applications`` and the fields of the form at ``/apply``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    applicant_type: ApplicantType = ApplicantType.natural_person
    name: OneLine = Field(min_length=1, description="applicant: a person's or organisation's")
    phone: Mobile = ""
    email: Annotated[OneLine, Field(pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$")] = ""
    address: OneLine = ""
    description: Description = Field(description="the information applied for")
    purpose: Purpose = ""
    reply_channel: ReplyChannel = ReplyChannel.online
    language: Annotated[str, Field(pattern=r"^(zh|mn)$")] = "zh"

    @model_validator(mode="after")
    def _reachable(self) -> ApplicationIn:
        """The answer must be able to reach the applicant the way they asked for."""
        if not (self.phone or self.email or self.address):
            raise ValueError(
                "须留联系方式（手机、邮箱或地址）/ a phone, email or address is needed"
            )
        if self.reply_channel == ReplyChannel.sms and not self.phone:
            raise ValueError("短信答复须留手机号 / an SMS reply needs a mobile number")
        if self.reply_channel == ReplyChannel.post and not self.address:
            raise ValueError("邮寄答复须留地址 / a reply by post needs an address")
        return self

    def contact(self) -> dict[str, str]:
        return {k: v for k, v in (("phone", self.phone), ("email", self.email),
                                  ("address", self.address)) if v}  # fmt: skip


def mask_name(name: str) -> str:
    """张三 → 张*, 欧阳小明 → 欧***; an organisation keeps its first two characters."""
    if len(name) <= 1:
        return "*"
    keep = 1 if len(name) <= 4 else 2
    return name[:keep] + "*" * min(len(name) - keep, 6)


def mask_contact(contact: dict[str, str]) -> str:
    parts = []
    if phone := contact.get("phone"):
        parts.append(phone[:3] + "****" + phone[-4:])
    if email := contact.get("email"):
        user, _, host = email.partition("@")
        parts.append(f"{user[:1]}***@{host}")
    if contact.get("address"):
        parts.append("（地址已存）")
    return " ".join(parts)
