"""The directory file (accounts, the region tree, targets) as pydantic models.

One model serves three readers: the import (``storage/directory.py``), the JSON Schema that
editors and CI check a county's file against (``gongkai schemas``), and the person who wrote the
file, who gets every problem at once, each naming its place the way items name theirs
(``regions[0].children[2].targets[1].robot_key: …``).

The shape rules live in the models; the rules that relate one part of the file to another (a
child's code under its parent's, a code used twice, a target's account) are in
``check_references``, since no schema can say them. Extra fields are kept where the import has
always kept them: on accounts (their configuration and secrets) and targets (their options).
Regions ignore fields they do not know, as they always have.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from gongkai.domain.bounds import MAX_INT64
from gongkai.domain.directory_errors import (
    ACCOUNT_CHANNELS,
    AccountMissing,
    DirectoryError,
    field_error,
)
from gongkai.domain.items import FieldError
from gongkai.domain.pii import normalize_mobile

CODE_LENGTHS = (2, 4, 6, 9, 12)


def _empty_when_none(value: Any) -> Any:
    """``children:`` with nothing after it is YAML's null; the file has always meant "none"."""
    return [] if value is None else value


def _empty_mapping_when_none(value: Any) -> Any:
    return {} if value is None else value


def _division_code(code: str) -> str:
    if not (code.isdigit() and len(code) in CODE_LENGTHS):
        raise ValueError(f"'{code}' is not a division code (2, 4, 6, 9 or 12 digits)")
    return code


def _robot_key(key: str) -> str:
    if not key:
        raise ValueError("empty (is the environment variable set?)")
    return key


_AES_KEY = re.compile(r"[A-Za-z0-9+/]{43}")  # base64 of 32 bytes (WeChat draws letters and digits)


def _aes_key(key: str | None) -> str | None:
    """WeChat's EncodingAESKey: 43 characters of base64 for a 32-byte AES key. Checked whole
    here, so that a mistyped key is an import error and not a failed callback later."""
    if key and len(key) != 43:
        raise ValueError("must be 43 characters")
    if key and _AES_KEY.fullmatch(key) is None:
        raise ValueError("must be letters, digits, '+' and '/' only (base64), as WeChat shows it")
    return key


def _some_phones(phones: list[str]) -> list[str]:
    if not phones:
        raise ValueError("at least one phone number")
    return phones


DivisionCode = Annotated[
    str,
    AfterValidator(_division_code),  # its own message, so the pattern is for the schema only
    Field(
        description="a division code (区划代码): 2, 4, 6, 9 or 12 digits; quote it in YAML",
        json_schema_extra={"pattern": r"^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12})$"},
    ),
]
Name = Annotated[str, Field(min_length=1)]
Required = Annotated[str, Field(min_length=1)]
RobotKey = Annotated[
    str,
    Field(min_length=1, description="the WeCom group robot's key (the webhook's key=…)"),
    BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v),
    AfterValidator(_robot_key),
]
Phone = Annotated[
    str,
    AfterValidator(normalize_mobile),
    Field(description="a mainland mobile number; spaces, dashes and +86 are allowed"),
]
Phones = Annotated[
    list[Phone],
    BeforeValidator(_empty_when_none, json_schema_input_type=list[Phone]),
    AfterValidator(_some_phones),
    Field(json_schema_extra={"minItems": 1}),
]
AesKey = Annotated[
    str | None,
    AfterValidator(_aes_key),
    Field(description="43 characters; empty or absent for plain mode"),
]


def _none_list(item: Any) -> Any:
    """A list that an empty YAML key (null) also gives, and whose schema says so."""
    return Annotated[
        list[item],  # type: ignore[valid-type]
        BeforeValidator(_empty_when_none, json_schema_input_type=list[item] | None),  # type: ignore[valid-type]
    ]


_LOOSE = ConfigDict(extra="allow", coerce_numbers_to_str=True)
"""YAML reads ``region: 150627`` and ``name: 123`` as numbers; the file has always meant text."""


# --- accounts ---------------------------------------------------------------------------------


class AccountBase(BaseModel):
    """Any account: a name, optionally the county it serves; every other field is kept as its
    configuration (fields named like secrets are sealed)."""

    model_config = _LOOSE
    name: Name
    region: DivisionCode | None = None
    provider: str | None = None


class WechatAccount(AccountBase):
    """A WeChat official account (公众号)."""

    app_id: Required
    app_secret: Required
    token: Required
    encoding_aes_key: AesKey = None
    region: DivisionCode = Field(description="the county the account speaks for")
    encryption_mode: str | None = Field(
        default=None, description="plain | compatible | safe (safe when encoding_aes_key is set)"
    )
    reply_budget: float | None = Field(
        default=None, description="seconds to answer in before the customer-service API (3)"
    )
    account_type: str | None = Field(default=None, description="subscription | service")
    template_id: str | None = None
    cover_image: str | None = None


class TelegramAccount(AccountBase):
    """A Telegram bot."""

    token: Required
    webhook_secret: str | None = None


class SmsAccount(AccountBase):
    """An SMS provider account with its approved sign and template."""

    provider: Literal["aliyun", "tencent"]
    access_key_id: str | None = None
    access_key_secret: str | None = None
    secret_id: str | None = None
    secret_key: str | None = None
    sdk_app_id: str | None = None
    tencent_region: str | None = None
    sign_name: str | None = None
    template_code: str | None = None
    template_text: str | None = Field(
        default=None, description="the approved template's text, with ${name} variables"
    )
    template_codes: dict[str, str] | None = Field(default=None, description="per language")
    template_texts: dict[str, str] | None = Field(default=None, description="per language")
    variable_max_len: int | None = None
    link_form: Literal["url", "code"] | None = Field(
        default=None,
        description=(
            "what ${link} holds: url, the whole short link {public_url}/s/{code} (Aliyun's "
            "default), or code, only the code after {public_url}/s/ written in the approved "
            "template (Tencent's default: Tencent refuses URLs in variables)"
        ),
    )


class Accounts(BaseModel):
    """The accounts, per channel."""

    model_config = ConfigDict(extra="forbid")
    wechat_mp: _none_list(WechatAccount) = Field(default_factory=list)  # type: ignore[valid-type]
    telegram: _none_list(TelegramAccount) = Field(default_factory=list)  # type: ignore[valid-type]
    sms: _none_list(SmsAccount) = Field(default_factory=list)  # type: ignore[valid-type]
    village_group: _none_list(AccountBase) = Field(default_factory=list)  # type: ignore[valid-type]
    loudspeaker: _none_list(AccountBase) = Field(default_factory=list)  # type: ignore[valid-type]

    def by_channel(self) -> dict[str, list[AccountBase]]:
        return {channel: list(getattr(self, channel)) for channel in ACCOUNT_CHANNELS}


# --- targets ----------------------------------------------------------------------------------

ADDRESS_FIELDS = ("channel", "account", "robot_key", "phones", "chat_id")
"""Never options: they are the address (sealed) or say which account sends."""


class TargetBase(BaseModel):
    """Where one region receives one channel; extra fields are the target's options."""

    model_config = _LOOSE
    account: Name | None = None

    def options(self) -> dict[str, Any]:
        data = self.model_dump(exclude_unset=True)
        return {k: v for k, v in data.items() if k not in ADDRESS_FIELDS}


class VillageGroupTarget(TargetBase):
    """The village's WeChat group, through its WeCom group robot."""

    channel: Literal["village_group"]
    robot_key: RobotKey


class LoudspeakerTarget(TargetBase):
    """The village committee: its WeCom robot, or (with ``phones``) SMS through ``account``."""

    channel: Literal["loudspeaker"]
    robot_key: RobotKey | None = None
    phones: Phones | None = None

    @model_validator(mode="after")
    def _an_address(self) -> LoudspeakerTarget:
        """The robot wins when both are given, as it always has; by SMS it needs the account."""
        if self.robot_key is None and self.phones is None:
            raise ValueError("a loudspeaker target needs robot_key or phones")
        if self.robot_key is None and not self.account:
            raise AccountMissing("SMS targets name their SMS account")
        return self


class SmsTarget(TargetBase):
    """Text messages to a list of numbers through an SMS account."""

    channel: Literal["sms"]
    account: Name
    phones: Phones


class TelegramTarget(TargetBase):
    """A Telegram chat, through a bot account."""

    channel: Literal["telegram"]
    account: Name
    chat_id: int = Field(ge=-MAX_INT64, le=MAX_INT64)


TargetEntry = Annotated[
    VillageGroupTarget | LoudspeakerTarget | SmsTarget | TelegramTarget,
    Field(discriminator="channel"),
]


# --- regions ----------------------------------------------------------------------------------


class RegionNode(BaseModel):
    """A division of the region tree: a county, a town, a village; children lie under it."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)
    code: DivisionCode
    name: Name
    names: Annotated[
        dict[str, str],
        BeforeValidator(_empty_mapping_when_none, json_schema_input_type=dict[str, str] | None),
        Field(description="the name in other languages, by language code"),
    ] = Field(default_factory=dict)
    languages: Annotated[
        _none_list(str), Field(description="the languages its targets want, in order")
    ] = Field(default_factory=list)
    children: _none_list(RegionNode) = Field(default_factory=list)  # type: ignore[valid-type]
    targets: _none_list(TargetEntry) = Field(default_factory=list)  # type: ignore[valid-type]


class DirectoryFile(BaseModel):
    """The directory file: ``gongkai directory import FILE``. ``${NAME}`` (upper case) is read
    from the environment before the file is parsed."""

    model_config = ConfigDict(
        extra="forbid",
    )
    accounts: Annotated[
        Accounts,
        BeforeValidator(_empty_mapping_when_none, json_schema_input_type=Accounts | None),
    ] = Field(default_factory=Accounts)
    regions: _none_list(RegionNode) = Field(default_factory=list)  # type: ignore[valid-type]

    def walk(self) -> list[tuple[str, RegionNode, RegionNode | None]]:
        """(place, region, parent) for every region, parents first, in file order."""
        out: list[tuple[str, RegionNode, RegionNode | None]] = []

        def visit(node: RegionNode, where: str, parent: RegionNode | None) -> None:
            out.append((where, node, parent))
            for j, child in enumerate(node.children):
                visit(child, f"{where}.children[{j}]", node)

        for i, node in enumerate(self.regions):
            visit(node, f"regions[{i}]", None)
        return out


# --- validation -------------------------------------------------------------------------------


def validate_directory(data: Any) -> DirectoryFile:
    """The parsed file as a model, or DirectoryError naming every bad place."""
    if not isinstance(data, dict):
        raise DirectoryError("the directory file must be a mapping with accounts and regions")
    try:
        directory = DirectoryFile.model_validate(data)
    except ValidationError as exc:
        raise DirectoryError([field_error(e) for e in exc.errors()]) from None
    errors = check_references(directory)
    if errors:
        raise DirectoryError(errors)
    return directory


def check_references(directory: DirectoryFile) -> list[FieldError]:
    """The rules between parts of the file: a child's code extends its parent's, no code is
    used twice, a target's account is one of the file's accounts of its channel."""
    errors: list[FieldError] = []
    names = {ch: {a.name for a in accs} for ch, accs in directory.accounts.by_channel().items()}
    seen: set[str] = set()
    for where, node, parent in directory.walk():
        code = node.code
        if parent is not None and not (code.startswith(parent.code) and code != parent.code):
            errors.append(
                FieldError(
                    field=f"{where}.code",
                    message=f"'{code}' does not lie under its parent '{parent.code}'",
                )
            )
        if code in seen:
            errors.append(FieldError(field=f"{where}.code", message=f"'{code}' appears twice"))
        seen.add(code)
        for j, target in enumerate(node.targets):
            if target.account is None:
                continue
            by_sms = isinstance(target, LoudspeakerTarget) and target.robot_key is None
            channel = "sms" if by_sms else target.channel
            if target.account not in names.get(channel, set()):
                errors.append(
                    FieldError(
                        field=f"{where}.targets[{j}].account",
                        message=f"no {channel} account named '{target.account}'",
                    )
                )
    return errors
