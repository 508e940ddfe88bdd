"""Directory import: accounts, the region tree and the targets in it (format in the contract).

Idempotent: importing the same file twice changes nothing. Secrets and phone numbers are sealed
before they touch the database and only ever shown masked.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.domain import safe_yaml
from gongkai.domain.catalog import CHANNEL_NAMES
from gongkai.domain.pii import normalize_mobile
from gongkai.storage.crypto import Sealer, mask_phone, mask_secret
from gongkai.storage.models import Account, Region, Target

SECRET_FIELDS = {
    "app_secret",
    "token",
    "encoding_aes_key",
    "access_key_secret",
    "secret_key",
    "webhook_secret",
    "robot_key",
    "password",
}
_ENV_RE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")  # upper case only: SMS templates use ${title}
ACCOUNT_CHANNELS = {"wechat_mp", "telegram", "sms", "village_group", "loudspeaker"}


class DirectoryError(ValueError):
    """A problem in the directory file; the message names where."""


@dataclass
class ImportReport:
    regions: int = 0
    accounts: int = 0
    targets_added: int = 0
    targets_updated: int = 0
    targets_unchanged: int = 0
    warnings: list[str] = field(default_factory=list)


def expand_env(text: str, environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    missing: list[str] = []

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in env:
            missing.append(name)
            return ""
        return env[name]

    out = _ENV_RE.sub(sub, text)
    if missing:
        raise DirectoryError(
            "environment variables not set: "
            + ", ".join(sorted(set(missing)))
            + " (the directory file refers to them as ${NAME})"
        )
    return out


def parse_directory(text: str, environ: dict[str, str] | None = None) -> dict[str, Any]:
    try:
        data = safe_yaml.load(expand_env(text, environ)) or {}  # aliases within a budget
    except yaml.YAMLError as exc:
        raise DirectoryError(f"cannot parse the directory file: {exc}") from None
    if not isinstance(data, dict):
        raise DirectoryError("the directory file must be a mapping with accounts and regions")
    unknown = set(data) - {"accounts", "regions"}
    if unknown:
        raise DirectoryError(f"unknown top-level keys: {', '.join(sorted(unknown))}")
    return data


def _split_secrets(fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    public = {k: v for k, v in fields.items() if k not in SECRET_FIELDS}
    secret = {k: v for k, v in fields.items() if k in SECRET_FIELDS}
    return public, secret


async def import_directory(
    session: AsyncSession, data: dict[str, Any], sealer: Sealer
) -> ImportReport:
    report = ImportReport()
    accounts = data.get("accounts") or {}
    if not isinstance(accounts, dict):
        raise DirectoryError("accounts: expected a mapping of channel → list of accounts")
    account_names: dict[str, set[str]] = {}
    wechat_targets: list[tuple[str, str]] = []
    for channel, entries in accounts.items():
        if channel not in ACCOUNT_CHANNELS:
            raise DirectoryError(
                f"accounts.{channel}: unknown channel; known: {', '.join(sorted(ACCOUNT_CHANNELS))}"
            )
        for i, entry in enumerate(entries or []):
            where = f"accounts.{channel}[{i}]"
            if not isinstance(entry, dict) or not entry.get("name"):
                raise DirectoryError(f"{where}: every account needs a name")
            name = str(entry["name"])
            region = entry.get("region")
            if region is not None:
                region = str(region)
                _check_code(region, f"{where}.region")
            public, secret = _split_secrets({k: v for k, v in entry.items() if k != "name"})
            if channel == "wechat_mp":
                for need in ("app_id", "app_secret", "token"):
                    if not entry.get(need):
                        raise DirectoryError(f"{where}.{need}: required for a WeChat account")
                aes = entry.get("encoding_aes_key")
                if aes and len(str(aes)) != 43:
                    raise DirectoryError(f"{where}.encoding_aes_key: must be 43 characters")
                if not region:
                    raise DirectoryError(f"{where}.region: the account's county code is required")
                wechat_targets.append((name, region))
            if channel == "telegram" and not entry.get("token"):
                raise DirectoryError(f"{where}.token: required for a Telegram bot")
            if channel == "sms" and entry.get("provider") not in ("aliyun", "tencent"):
                raise DirectoryError(f"{where}.provider: must be aliyun or tencent")
            account_names.setdefault(channel, set()).add(name)
            existing = (
                await session.exec(
                    select(Account).where(Account.channel == channel, Account.name == name)
                )
            ).first()
            acc = existing or Account(channel=channel, name=name)
            acc.provider = entry.get("provider")
            acc.region_code = region
            acc.config = public
            acc.secrets_sealed = sealer.seal(secret)
            acc.secrets_masked = {k: mask_secret(str(v)) for k, v in secret.items()}
            session.add(acc)
            report.accounts += 1

    seen_codes: set[str] = set()
    for i, node in enumerate(data.get("regions") or []):
        await _import_region(
            session, node, None, f"regions[{i}]", sealer, report, account_names, seen_codes
        )
    await session.flush()

    for name, region in wechat_targets:
        if region not in seen_codes and await session.get(Region, region) is None:
            raise DirectoryError(f"accounts.wechat_mp '{name}': region {region} is not in regions")
        await _upsert_target(
            session, sealer, report, region, "wechat_mp", name, {}, "official account " + name, {}
        )
    await session.commit()
    return report


def _check_code(code: str, where: str, parent: str | None = None) -> None:
    if not (code.isdigit() and len(code) in (2, 4, 6, 9, 12)):
        raise DirectoryError(f"{where}: '{code}' is not a division code (2, 4, 6, 9 or 12 digits)")
    if parent is not None and not (code.startswith(parent) and len(code) > len(parent)):
        raise DirectoryError(f"{where}: '{code}' does not lie under its parent '{parent}'")


async def _import_region(
    session: AsyncSession,
    node: Any,
    parent: Region | None,
    where: str,
    sealer: Sealer,
    report: ImportReport,
    account_names: dict[str, set[str]],
    seen: set[str],
) -> None:
    if not isinstance(node, dict) or "code" not in node or not node.get("name"):
        raise DirectoryError(f"{where}: a region needs code and name")
    code = str(node["code"])
    _check_code(code, f"{where}.code", parent.code if parent else None)
    if code in seen:
        raise DirectoryError(f"{where}.code: '{code}' appears twice")
    seen.add(code)
    region = await session.get(Region, code) or Region(code=code, name=node["name"], path="")
    region.name = str(node["name"])
    region.parent_code = parent.code if parent else None
    region.path = (parent.path if parent else "/") + code + "/"
    region.level = (parent.level + 1) if parent else 0
    region.names = {str(k): str(v) for k, v in (node.get("names") or {}).items()}
    region.languages = [str(x) for x in (node.get("languages") or [])]
    session.add(region)
    report.regions += 1
    for j, t in enumerate(node.get("targets") or []):
        await _import_target(
            session, sealer, report, region, t, f"{where}.targets[{j}]", account_names
        )
    for j, child in enumerate(node.get("children") or []):
        await _import_region(
            session, child, region, f"{where}.children[{j}]", sealer, report, account_names, seen
        )


async def _import_target(
    session: AsyncSession,
    sealer: Sealer,
    report: ImportReport,
    region: Region,
    t: Any,
    where: str,
    account_names: dict[str, set[str]],
) -> None:
    if not isinstance(t, dict) or "channel" not in t:
        raise DirectoryError(f"{where}: a target needs a channel")
    channel = t["channel"]
    if channel not in CHANNEL_NAMES or channel in ("web", "wechat_mp"):
        raise DirectoryError(
            f"{where}.channel: unknown channel '{channel}' for a target; known: "
            "village_group, sms, loudspeaker, telegram"
        )
    account = t.get("account")
    if account is not None and account not in account_names.get(
        "sms" if (channel == "loudspeaker" and "phones" in t) else channel, set()
    ):
        raise DirectoryError(f"{where}.account: no {channel} account named '{account}'")
    options = {
        k: v
        for k, v in t.items()
        if k not in ("channel", "account", "robot_key", "phones", "chat_id")
    }
    if channel in ("village_group", "loudspeaker") and "robot_key" in t:
        key = str(t["robot_key"]).strip()
        if not key:
            raise DirectoryError(f"{where}.robot_key: empty (is the environment variable set?)")
        address: dict[str, Any] = {"robot_key": key}
        masked = "robot " + mask_secret(key)
    elif channel in ("sms", "loudspeaker") and "phones" in t:
        if not account:
            raise DirectoryError(f"{where}.account: SMS targets name their SMS account")
        phones = []
        for k, p in enumerate(t.get("phones") or []):
            try:
                phones.append(normalize_mobile(str(p)))
            except ValueError as exc:
                raise DirectoryError(f"{where}.phones[{k}]: {exc}") from None
        if not phones:
            raise DirectoryError(f"{where}.phones: at least one phone number")
        address = {"phones": phones}
        masked = ", ".join(mask_phone(p) for p in phones[:3]) + (
            f" (+{len(phones) - 3})" if len(phones) > 3 else ""
        )
    elif channel == "telegram" and "chat_id" in t:
        if not account:
            raise DirectoryError(f"{where}.account: Telegram targets name their bot account")
        try:
            chat_id = int(t["chat_id"])
        except (TypeError, ValueError):
            raise DirectoryError(f"{where}.chat_id: must be a number") from None
        address = {"chat_id": chat_id}
        masked = f"chat {chat_id}"
    else:
        need = {
            "village_group": "robot_key",
            "loudspeaker": "robot_key or phones",
            "sms": "phones",
            "telegram": "chat_id",
        }[channel]
        raise DirectoryError(f"{where}: a {channel} target needs {need}")
    await _upsert_target(
        session, sealer, report, region.code, channel, account, address, masked, options
    )


async def _upsert_target(
    session: AsyncSession,
    sealer: Sealer,
    report: ImportReport,
    region_code: str,
    channel: str,
    account: str | None,
    address: dict[str, Any],
    masked: str,
    options: dict[str, Any],
) -> None:
    lookup = sealer.lookup_key(
        channel, region_code, account or "", json.dumps(address, sort_keys=True)
    )
    existing = (await session.exec(select(Target).where(Target.lookup == lookup))).first()
    if existing is not None:
        if existing.options != options or existing.address_masked != masked:
            existing.options = options
            existing.address_masked = masked
            session.add(existing)
            report.targets_updated += 1
        else:
            report.targets_unchanged += 1
        return
    session.add(
        Target(
            region_code=region_code,
            channel=channel,
            account_name=account,
            address_sealed=sealer.seal(address),
            address_masked=masked,
            lookup=lookup,
            options=options,
        )
    )
    report.targets_added += 1
