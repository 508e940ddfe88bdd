"""Personal information that must never be published unmasked (domain rule 4, seed 001 §四(三)).

A 低保 list may name people, but a full ID-card or mobile number in a notice is a leak.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# 18 characters not embedded in a longer run of digits.
_ID_RE = re.compile(r"(?<![0-9])([1-9][0-9]{16}[0-9Xx])(?![0-9Xx])")
_MOBILE_RE = re.compile(
    r"(?<![0-9])(?:\+?86[- ]?)?(1[3-9][0-9])[- ]?([0-9]{4})[- ]?([0-9]{4})(?![0-9])"
)


def id_check_digit(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def is_valid_id_number(value: str) -> bool:
    if len(value) != 18 or not value[:17].isdigit():
        return False
    return id_check_digit(value[:17]) == value[17].upper()


@dataclass(frozen=True)
class Finding:
    kind: str  # "id_card" | "mobile"
    masked: str
    position: int
    end: int = 0  # where the number (with its +86 or separators) ends in the text


def find_personal_numbers(text: str) -> list[Finding]:
    """Unmasked mainland ID-card numbers (valid check digit) and mobile numbers in ``text``."""
    found: list[Finding] = []
    for m in _ID_RE.finditer(text):
        if is_valid_id_number(m.group(1)):
            v = m.group(1)
            found.append(Finding("id_card", v[:6] + "********" + v[-4:], m.start(), m.end()))
    id_spans = [(f.position, f.position + 18) for f in found]
    for m in _MOBILE_RE.finditer(text):
        if any(a <= m.start() < b for a, b in id_spans):
            continue
        digits = "".join(m.groups())
        found.append(Finding("mobile", digits[:3] + "****" + digits[-4:], m.start(), m.end()))
    return sorted(found, key=lambda f: f.position)


def mask_numbers(text: str) -> str:
    """``text`` with each personal number in it masked: for naming a place (a catalog key) in
    an error message without repeating the number the error is about."""
    out, last = [], 0
    for finding in find_personal_numbers(text):
        out += [text[last : finding.position], finding.masked]
        last = finding.end
    return "".join(out) + text[last:]


MOBILE_NUMBER = re.compile(r"^1[3-9][0-9]{9}$")


def normalize_mobile(value: str) -> str:
    """A mainland mobile number as 11 digits; ValueError when it is not one."""
    digits = re.sub(r"[\s-]", "", str(value))
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not MOBILE_NUMBER.match(digits):
        raise ValueError(f"not a mainland mobile number: {mask_any(digits)}")
    return digits


def mask_any(value: str) -> str:
    return value[:3] + "****" + value[-4:] if len(value) >= 8 else "****"
