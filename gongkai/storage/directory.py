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
from gongkai.domain.directory_file import (
    ACCOUNT_CHANNELS,
    DirectoryError,
    DirectoryFile,
    LoudspeakerTarget,
    RegionNode,
    SmsTarget,
    TargetEntry,
    TelegramTarget,
    VillageGroupTarget,
    WechatAccount,
    validate_directory,
)
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
__all__ = [
    "ACCOUNT_CHANNELS",
    "SECRET_FIELDS",
    "DirectoryError",
    "ImportReport",
    "expand_env",
    "import_directory",
    "parse_directory",
]


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
    validate_directory(data)  # refused here, before a database is opened
    return data


def _split_secrets(fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    public = {k: v for k, v in fields.items() if k not in SECRET_FIELDS}
    secret = {k: v for k, v in fields.items() if k in SECRET_FIELDS}
    return public, secret


async def import_directory(
    session: AsyncSession, data: DirectoryFile | dict[str, Any], sealer: Sealer
) -> ImportReport:
    """Write the file's accounts, regions and targets; ``data`` is the parsed file (as
    ``parse_directory`` returns it) or its model."""
    directory = data if isinstance(data, DirectoryFile) else validate_directory(data)
    report = ImportReport()
    wechat_targets: list[tuple[str, str]] = []
    for channel, entries in directory.accounts.by_channel().items():
        for entry in entries:
            if isinstance(entry, WechatAccount):
                wechat_targets.append((entry.name, entry.region))
            fields = entry.model_dump(exclude_unset=True)
            public, secret = _split_secrets({k: v for k, v in fields.items() if k != "name"})
            existing = (
                await session.exec(
                    select(Account).where(Account.channel == channel, Account.name == entry.name)
                )
            ).first()
            acc = existing or Account(channel=channel, name=entry.name)
            acc.provider = entry.provider
            acc.region_code = entry.region
            acc.config = public
            acc.secrets_sealed = sealer.seal(secret)
            acc.secrets_masked = {k: mask_secret(str(v)) for k, v in secret.items()}
            session.add(acc)
            report.accounts += 1

    regions: dict[str, Region] = {}
    for _where, node, parent in directory.walk():
        region = await _import_region(session, node, regions[parent.code] if parent else None)
        regions[node.code] = region
        report.regions += 1
        for target in node.targets:
            await _import_target(session, sealer, report, region, target)
    await session.flush()

    for name, code in wechat_targets:
        if code not in regions and await session.get(Region, code) is None:
            raise DirectoryError(f"accounts.wechat_mp '{name}': region {code} is not in regions")
        await _upsert_target(
            session, sealer, report, code, "wechat_mp", name, {}, "official account " + name, {}
        )
    await session.commit()
    return report


async def _import_region(session: AsyncSession, node: RegionNode, parent: Region | None) -> Region:
    region = await session.get(Region, node.code) or Region(code=node.code, name=node.name, path="")
    region.name = node.name
    region.parent_code = parent.code if parent else None
    region.path = (parent.path if parent else "/") + node.code + "/"
    region.level = (parent.level + 1) if parent else 0
    region.names = dict(node.names)
    region.languages = list(node.languages)
    session.add(region)
    return region


async def _import_target(
    session: AsyncSession, sealer: Sealer, report: ImportReport, region: Region, t: TargetEntry
) -> None:
    address: dict[str, Any]
    if isinstance(t, VillageGroupTarget | LoudspeakerTarget) and t.robot_key is not None:
        address = {"robot_key": t.robot_key}
        masked = "robot " + mask_secret(t.robot_key)
    elif isinstance(t, SmsTarget | LoudspeakerTarget) and t.phones is not None:
        address = {"phones": t.phones}
        masked = ", ".join(mask_phone(p) for p in t.phones[:3]) + (
            f" (+{len(t.phones) - 3})" if len(t.phones) > 3 else ""
        )
    elif isinstance(t, TelegramTarget):
        address = {"chat_id": t.chat_id}
        masked = f"chat {t.chat_id}"
    else:  # the model refuses a target without its address
        raise AssertionError(f"a {t.channel} target without an address")
    await _upsert_target(
        session, sealer, report, region.code, t.channel, t.account, address, masked, t.options()
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
