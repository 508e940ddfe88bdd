"""How the directory file's problems are told: each by its place in the file, the way the
import always named them, in words a county's editor can act on (pydantic's own wording only
where nothing better is known).
"""

from __future__ import annotations

from typing import Any

from gongkai.domain.items import FieldError

ACCOUNT_CHANNELS = ("wechat_mp", "telegram", "sms", "village_group", "loudspeaker")
TARGET_CHANNELS = ("village_group", "sms", "loudspeaker", "telegram")
_ACCOUNT_LABELS = {"wechat_mp": "WeChat account", "telegram": "Telegram bot", "sms": "SMS account"}


class DirectoryError(ValueError):
    """A problem in the directory file; ``errors`` names each place (the message lists them)."""

    def __init__(self, errors: list[FieldError] | str) -> None:
        if isinstance(errors, str):
            errors = [FieldError(field="(file)", message=errors)]
            text = errors[0].message
        else:
            text = "; ".join(f"{e.field}: {e.message}" for e in errors)
        super().__init__(text)
        self.errors = errors


class AccountMissing(ValueError):
    """Raised on the target, reported on its ``account`` field."""


def _place(loc: tuple[int | str, ...]) -> str:
    """``regions[0].targets[1].robot_key``; the union's tag pydantic puts after a target's index
    (``…targets.1.village_group.robot_key``) is dropped, as the file has no such level."""
    out = ""
    previous: int | str | None = None
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif (
            isinstance(previous, int) and i >= 2 and loc[i - 2] == "targets"
        ) and part in TARGET_CHANNELS:
            pass
        else:
            out += f".{part}" if out else str(part)
        previous = part
    return out or "(file)"


def field_error(err: Any) -> FieldError:
    """One of pydantic's errors as the file's place and the import's words for it."""
    loc: tuple[int | str, ...] = tuple(err["loc"])
    kind = err["type"]
    field = _place(loc)
    message = str(err["msg"])
    if kind == "missing":
        message = _missing(loc, err.get("input"))
    elif kind == "extra_forbidden" and len(loc) == 1:
        message = "unknown top-level key; known: accounts, regions"
    elif kind == "extra_forbidden" and len(loc) == 2 and loc[0] == "accounts":
        message = f"unknown channel; known: {', '.join(sorted(ACCOUNT_CHANNELS))}"
    elif kind == "union_tag_invalid":
        field = f"{field}.channel"
        message = f"unknown channel '{err['ctx']['tag']}' for a target; known: " + ", ".join(
            TARGET_CHANNELS
        )
    elif kind == "union_tag_not_found":
        message = "a target needs a channel"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = _not_a_mapping(loc)
    elif kind == "string_too_short" and err.get("ctx", {}).get("min_length") == 1:
        message = (
            _missing(loc, err.get("input"))
            if loc[0] == "accounts"
            else "empty (is the environment variable set?)"
        )
    elif kind in ("int_parsing", "int_type") and loc[-1] == "chat_id":
        message = "must be a number"
    elif kind == "int_from_float" and loc[-1] == "chat_id":
        message = "must be a whole number"
    elif kind == "value_error" and isinstance(err.get("ctx", {}).get("error"), AccountMissing):
        field = f"{field}.account"
        message = str(err["ctx"]["error"])
    elif message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return FieldError(field=field, message=message)


def _not_a_mapping(loc: tuple[int | str, ...]) -> str:
    if len(loc) >= 2 and isinstance(loc[-1], int) and loc[-2] == "targets":
        return "a target needs a channel"
    if len(loc) >= 2 and isinstance(loc[-1], int) and loc[-2] in ("regions", "children"):
        return "a region needs code and name"
    if len(loc) == 3 and loc[0] == "accounts":
        return "every account needs a name"
    if loc == ("accounts",):
        return "expected a mapping of channel → list of accounts"
    return "expected a mapping"


def _missing(loc: tuple[int | str, ...], given: Any) -> str:
    name = loc[-1]
    if loc[0] == "accounts" and len(loc) == 4:
        channel = str(loc[1])
        if name == "name":
            return "every account needs a name"
        if (channel, name) == ("wechat_mp", "region"):
            return "the account's county code is required"
        if (channel, name) == ("sms", "provider"):
            return "required: must be aliyun or tencent"
        return f"required for a {_ACCOUNT_LABELS.get(channel, channel + ' account')}"
    if "targets" in loc:
        channel = given.get("channel") if isinstance(given, dict) else None
        if (channel, name) == ("sms", "account"):
            return "SMS targets name their SMS account"
        if (channel, name) == ("telegram", "account"):
            return "Telegram targets name their bot account"
        return f"a {channel} target needs {name}"
    if name in ("code", "name"):
        return "a region needs code and name"
    return "required"
